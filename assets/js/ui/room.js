// One open room: its header, the message log (infinite scroll upward that keeps the reading
// position, live messages, grouping, day separators, the "new messages" divider, jump to
// latest, read receipts), the typing line, the member panel and the composer.
//
// Must not: keep chat state of its own beyond what is on screen (drafts, reply/edit mode).

import { api } from "../api.js";
import { MAX_MESSAGE_CHARS } from "../chat.js";
import { h, icon, richText } from "../dom.js";
import { dayLabel, fullTime, relativeTime, sameDay } from "../format.js";
import { currentLocale, errorText, t } from "../i18n.js";
import { layout, seenBy } from "../timeline.js";
import { confirmDialog, initials, userPicker } from "./dialogs.js";

const LOAD_OLDER_WHEN_PX = 400;   // start fetching older history this close to the top
const AT_BOTTOM_PX = 48;
const MAX_PAGES_TO_DIVIDER = 6;   // how far back we fetch to show the first unread message

export class RoomView {
  constructor(chat, main, { onMenu, mobile }) {
    this.chat = chat;
    this.main = main;
    this.onMenu = onMenu;
    this.mobile = mobile;
    this.roomId = null;
    this.drafts = new Map();
    this.quotes = new Map();       // "roomId:seq" -> message, for replies to unloaded messages
    this.rowCache = new Map();
    this.membersOpen = !mobile.matches;
    this.onChange = (event) => this.changed(event.detail);
    chat.addEventListener("change", this.onChange);
    this.clock = setInterval(() => this.refreshTimes(), 30_000);
  }

  destroy() {
    this.chat.removeEventListener("change", this.onChange);
    clearInterval(this.clock);
  }

  // ---- opening -----------------------------------------------------------------------------

  open(roomId) {
    if (this.roomId && this.composer) this.drafts.set(this.roomId, this.composer.value);
    if (this.roomId && this.roomId !== roomId) this.chat.typingStopped(this.roomId);
    this.roomId = roomId;
    this.chat.activeRoomId = roomId;
    this.rowCache = new Map();
    this.replyTo = null;
    this.editing = null;
    this.unseen = 0;
    const room = this.chat.rooms.get(roomId);
    if (!room) {
      this.main.replaceChildren(
        this.header(null),
        h("div", { class: "empty-room" }, h("p", {}, t("room.empty"))));
      return;
    }
    // The divider stays where the user stopped reading when they opened the room.
    this.dividerAfter = (room.unread ?? 0) > 0 ? room.lastReadSeq ?? 0 : null;
    this.build(room);
    this.load(room).catch((error) => this.showLoadError(error));
  }

  /** A public room the user has not joined: its name and a Join button. */
  preview(room) {
    this.roomId = null;
    this.chat.activeRoomId = null;
    const error = h("p", { class: "field-error", role: "alert" });
    this.main.replaceChildren(
      this.header(null, room),
      h("div", { class: "empty-room" },
        h("h2", {}, `# ${room.name}`),
        room.topic && h("p", { class: "muted" }, room.topic),
        room.visibility === "public" && h("button", {
          type: "button", class: "primary",
          onclick: async () => {
            try {
              await this.chat.joinRoom(room.id);
              this.open(room.id);
            } catch (e) {
              error.textContent = errorText(e);
            }
          },
        }, t("browse.join")),
        error));
  }

  async load(room) {
    const timeline = this.chat.timeline(room.id);
    if (timeline.size === 0 || timeline.size < 30) await this.chat.loadOlder(room.id);
    for (let pages = 0; pages < MAX_PAGES_TO_DIVIDER && this.roomId === room.id; pages++) {
      const oldest = timeline.oldestSeq();
      if (this.dividerAfter === null || timeline.reachedStart || oldest === null || oldest <= this.dividerAfter + 1) break;
      await this.chat.loadOlder(room.id);
    }
    if (this.roomId !== room.id) return;
    this.render({ initial: true });
    this.chat.loadMembers(room.id).catch(() => {});
    await this.fillViewport();
  }

  /** Keeps loading older pages until the log can scroll, so infinite scroll can start. */
  async fillViewport() {
    const roomId = this.roomId;
    const timeline = this.chat.timeline(roomId);
    while (this.roomId === roomId && !timeline.reachedStart && this.log.scrollHeight <= this.log.clientHeight + LOAD_OLDER_WHEN_PX) {
      if (await this.chat.loadOlder(roomId) === 0) break;
    }
  }

  showLoadError(error) {
    this.loader.textContent = errorText(error);
  }

  visible() {
    this.markReadIfSeen();
  }

  // ---- building the room's DOM --------------------------------------------------------------

  header(room, previewRoom) {
    const menuButton = h("button", { type: "button", class: "icon-button menu-button", "aria-label": t("menu.openMenu"), "aria-controls": "sidebar", onclick: this.onMenu }, icon("menu"));
    if (!room) {
      return h("header", { class: "room-head" }, menuButton,
        h("h1", { class: "room-title" }, previewRoom ? `# ${previewRoom.name}` : "parley"));
    }
    const direct = room.kind === "direct";
    this.titleStatus = direct ? h("span", { class: `presence ${this.chat.status(room.peer?.id)}`, role: "img", "aria-label": t(`status.${this.chat.status(room.peer?.id)}`) }) : null;
    this.titleText = h("span", {}, room.name);
    this.topic = h("p", { class: "room-topic" }, direct ? t(`status.${this.chat.status(room.peer?.id)}`) : room.topic ?? "");
    this.membersButton = h("button", {
      type: "button", class: "chip members-toggle", "aria-controls": "members-panel",
      "aria-expanded": String(this.membersOpen), onclick: () => this.toggleMembers(),
    });
    this.updateHeader(room);
    return h("header", { class: "room-head" },
      menuButton,
      h("div", { class: "room-heading" },
        h("h1", { class: "room-title" }, this.titleStatus ?? h("span", { class: "hash", "aria-hidden": "true" }, icon(room.visibility === "private" ? "lock" : "hash")), this.titleText),
        this.topic),
      this.membersButton);
  }

  updateHeader(room) {
    if (!this.titleText) return;
    this.titleText.textContent = room.name;
    const direct = room.kind === "direct";
    if (direct && this.titleStatus) {
      const status = this.chat.status(room.peer?.id);
      this.titleStatus.className = `presence ${status}`;
      this.titleStatus.setAttribute("aria-label", t(`status.${status}`));
      this.topic.textContent = t(`status.${status}`);
    } else {
      this.topic.textContent = room.topic ?? "";
    }
    this.membersButton.textContent = t("room.membersCount", { count: room.memberCount ?? 0 });
    this.membersButton.title = this.membersOpen ? t("room.hideMembers") : t("room.showMembers");
    this.membersButton.setAttribute("aria-expanded", String(this.membersOpen));
  }

  build(room) {
    this.loader = h("div", { class: "log-edge muted small", role: "status" });
    this.rows = h("div", { class: "rows" });
    this.log = h("div", {
      class: "log", role: "log", tabindex: "0", "aria-label": t("room.messages", { room: room.name }),
      onscroll: () => this.onScroll(),
    }, this.loader, this.rows);
    this.log.addEventListener("keydown", (event) => this.onLogKey(event));
    this.jump = h("button", { type: "button", class: "jump", hidden: true, onclick: () => this.scrollToBottom(true) });
    this.typingLine = h("div", { class: "typing-line", "aria-live": "polite" });
    this.membersPanel = h("aside", { class: "members-panel", id: "members-panel", "aria-label": t("room.members"), hidden: !this.membersOpen });
    this.composerForm = this.buildComposer(room);
    this.addBox = null; // the add-member search box survives member list redraws
    this.main.replaceChildren(
      this.header(room),
      h("div", { class: "room-body" },
        h("div", { class: "conversation" },
          h("div", { class: "log-wrap" }, this.log, this.jump),
          this.typingLine,
          this.composerForm),
        this.membersPanel));
    this.renderMembers();
  }

  toggleMembers(open = !this.membersOpen) {
    this.membersOpen = open;
    this.membersPanel.hidden = !open;
    const room = this.chat.rooms.get(this.roomId);
    if (room) this.updateHeader(room);
    if (open) this.membersPanel.querySelector("button, input")?.focus();
    else this.membersButton.focus();
  }

  // ---- reacting to chat changes -------------------------------------------------------------

  changed(detail) {
    const { kind, roomId } = detail;
    const room = this.chat.rooms.get(this.roomId);
    if (!room || !this.log) return;
    if ((kind === "timeline" || kind === "loading") && roomId === this.roomId) {
      this.render(detail);
    } else if (kind === "users") {
      this.render({});
      this.renderMembers();
    } else if (kind === "members" && roomId === this.roomId) {
      this.renderMembers();
      this.render({});
    } else if (kind === "presence") {
      this.renderMembers();
      this.updateHeader(room);
    } else if ((kind === "room" && roomId === this.roomId) || kind === "rooms") {
      this.updateHeader(room);
    } else if (kind === "typing" && roomId === this.roomId) {
      this.renderTyping();
    }
  }

  // ---- the message log ----------------------------------------------------------------------

  atBottom() {
    return this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight <= AT_BOTTOM_PX;
  }

  scrollToBottom(focusComposer = false) {
    this.log.scrollTop = this.log.scrollHeight;
    this.unseen = 0;
    this.updateJump();
    if (focusComposer) this.composer.focus();
  }

  onScroll() {
    if (this.log.scrollTop < LOAD_OLDER_WHEN_PX) {
      this.chat.loadOlder(this.roomId).catch((error) => this.showLoadError(error));
    }
    if (this.atBottom()) this.unseen = 0;
    this.updateJump();
    this.markReadIfSeen();
  }

  /**
   * Keyboard reading: from the log, Up/Down move between messages (a focused message shows its
   * actions, which Tab then reaches), Home/End jump to the ends, Escape returns to the composer.
   */
  onLogKey(event) {
    const keys = ["ArrowUp", "ArrowDown", "Home", "End", "Escape"];
    if (!keys.includes(event.key) || event.target.closest("button, a, input, textarea")) return;
    const articles = [...this.rows.querySelectorAll("article.msg")];
    if (articles.length === 0) return;
    if (event.key === "Escape") {
      this.composer.focus();
      event.preventDefault();
      return;
    }
    const current = articles.indexOf(event.target.closest("article.msg"));
    let next;
    if (event.key === "Home") next = 0;
    else if (event.key === "End") next = articles.length - 1;
    else if (current < 0) next = articles.length - 1;
    else next = Math.max(0, Math.min(articles.length - 1, current + (event.key === "ArrowUp" ? -1 : 1)));
    event.preventDefault();
    articles[next].focus();
    articles[next].scrollIntoView({ block: "nearest" });
  }

  updateJump() {
    const far = this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight > this.log.clientHeight / 2;
    this.jump.hidden = !far && this.unseen === 0;
    this.jump.textContent = this.unseen > 0 ? `${t("room.newBelow", { count: this.unseen })} ↓` : `${t("room.jumpToLatest")} ↓`;
  }

  markReadIfSeen() {
    if (!this.roomId || document.hidden || !this.log || !this.atBottom()) return;
    const newest = this.chat.timeline(this.roomId).newestSeq();
    this.chat.markRead(this.roomId, newest);
  }

  render({ older = false, isNew = false, own = false, initial = false } = {}) {
    const roomId = this.roomId;
    const room = this.chat.rooms.get(roomId);
    if (!room) return;
    const timeline = this.chat.timeline(roomId);
    const wasAtBottom = this.atBottom();
    const fromBottom = this.log.scrollHeight - this.log.scrollTop;

    this.loader.textContent = timeline.reachedStart
      ? (timeline.size === 0 ? t("room.emptyHistory", { room: room.name }) : t("room.beginning", { room: room.name }))
      : this.chat.loadingOlder.has(roomId) ? t("room.loadingOlder") : "";

    const messages = timeline.sorted();
    const lastMine = [...messages].reverse().find((m) => m.senderId === this.chat.me.id && !m.deleted);
    const rows = layout(messages, {
      dividerAfterSeq: this.dividerAfter,
      pending: this.chat.pending(roomId),
      sameDay,
    });
    this.reconcile(rows, lastMine?.seq ?? null);

    if (initial) {
      const divider = this.rows.querySelector(".divider");
      if (divider && divider.offsetTop > this.log.clientHeight / 2) this.log.scrollTop = divider.offsetTop - 60;
      else this.log.scrollTop = this.log.scrollHeight;
    } else if (older) {
      this.log.scrollTop = this.log.scrollHeight - fromBottom;
    } else if (wasAtBottom || own) {
      this.log.scrollTop = this.log.scrollHeight;
    } else if (isNew) {
      this.unseen += 1;
    }
    this.updateJump();
    this.markReadIfSeen();
  }

  reconcile(rows, lastMineSeq) {
    const fresh = new Map();
    let cursor = this.rows.firstChild;
    for (const row of rows) {
      const signature = this.signature(row, lastMineSeq);
      let cached = this.rowCache.get(row.key);
      if (!cached || cached.signature !== signature) {
        const element = this.drawRow(row, lastMineSeq);
        if (cached) cached.element.replaceWith(element);
        if (cached && cursor === cached.element) cursor = element;
        cached = { element, signature };
      }
      fresh.set(row.key, cached);
      if (cached.element === cursor) cursor = cursor.nextSibling;
      else this.rows.insertBefore(cached.element, cursor);
    }
    while (cursor) {
      const next = cursor.nextSibling;
      cursor.remove();
      cursor = next;
    }
    this.rowCache = fresh;
  }

  signature(row, lastMineSeq) {
    if (row.kind !== "message") return row.kind + (row.at ?? "");
    const m = row.message;
    const quote = m.replyTo ? this.quoteFor(m.replyTo) : null;
    const seen = m.seq !== undefined && m.seq === lastMineSeq ? this.seenText(m.seq) : "";
    return [m.editedAt, m.deleted, row.continued, m.state, m.error?.code, seen,
      this.chat.userName(m.senderId), quote ? `${quote.seq}:${quote.editedAt}:${quote.deleted}` : "",
      this.editing === m.seq, this.canModerate()].join("|");
  }

  drawRow(row, lastMineSeq) {
    const now = Date.now();
    const locale = currentLocale();
    if (row.kind === "day") {
      return h("div", { class: "day", role: "separator" }, h("span", {}, dayLabel(row.at, now, locale)));
    }
    if (row.kind === "divider") {
      return h("div", { class: "divider", role: "separator", "aria-label": t("room.newMessages") }, h("span", {}, t("room.newMessages")));
    }
    const m = row.message;
    const mine = m.senderId === this.chat.me.id;
    const pending = m.seq === undefined;
    const name = mine ? this.chat.me.displayName : this.chat.userName(m.senderId);
    const time = h("time", {
      datetime: m.createdAt, title: fullTime(m.createdAt, locale), dataset: { at: m.createdAt },
    }, relativeTime(m.createdAt, now, locale));
    const classes = ["msg", row.continued && "continued", mine && "mine", pending && `pending ${m.state}`,
      m.deleted && "deleted", this.editing === m.seq && "editing"].filter(Boolean).join(" ");
    const body = h("div", { class: "msg-body" },
      !row.continued && h("div", { class: "msg-head" }, h("span", { class: "author" }, name), " ", time),
      m.replyTo && this.drawQuote(m.replyTo),
      m.deleted
        ? h("p", { class: "msg-text tombstone" }, t("message.deleted"))
        : h("p", { class: "msg-text" }, richText(m.content, { me: this.chat.me.username }),
          m.editedAt && h("span", { class: "edited", title: fullTime(m.editedAt, locale) }, ` ${t("message.edited")}`)),
      pending && this.drawPendingState(m),
      !pending && m.seq === lastMineSeq && this.seenText(m.seq) && h("p", { class: "seen muted small" }, this.seenText(m.seq)));
    const element = h("article", {
      class: classes, id: pending ? `p-${m.clientId}` : `m-${m.seq}`, tabindex: "-1",
      dataset: pending ? { clientId: m.clientId } : { seq: String(m.seq), sender: String(m.senderId) },
      "aria-label": `${name}: ${m.deleted ? t("message.deleted") : m.content.slice(0, 200)}`,
    },
    row.continued
      ? h("span", { class: "gutter-time", "aria-hidden": "true" }, time)
      : h("span", { class: "avatar", "aria-hidden": "true" }, initials(name)),
    body,
    !pending && !m.deleted && this.drawActions(m, mine));
    return element;
  }

  drawPendingState(entry) {
    if (entry.state === "failed") {
      return h("p", { class: "send-state failed", role: "alert" },
        `${t("message.failed")} ${errorText(entry.error)} `,
        h("button", { type: "button", class: "link", onclick: () => this.chat.retry(this.roomId, entry.clientId) }, t("message.retry")),
        " · ",
        h("button", { type: "button", class: "link", onclick: () => this.chat.discard(this.roomId, entry.clientId) }, t("message.discard")));
    }
    return h("p", { class: "send-state muted small" }, t("message.pending"));
  }

  drawActions(message, mine) {
    const actions = h("div", { class: "msg-actions", role: "group", "aria-label": t("message.actions") },
      h("button", { type: "button", class: "action", onclick: () => this.startReply(message) }, t("message.reply")),
      mine && h("button", { type: "button", class: "action", onclick: () => this.startEdit(message) }, t("message.edit")),
      (mine || this.canModerate()) && h("button", { type: "button", class: "action danger-text", onclick: () => this.confirmDelete(message) }, t("message.delete")));
    return actions;
  }

  canModerate() {
    const room = this.chat.rooms.get(this.roomId);
    return Boolean(this.chat.me.isAdmin || room?.role === "owner" || room?.role === "admin");
  }

  quoteFor(seq) {
    const key = `${this.roomId}:${seq}`;
    const loaded = this.chat.timeline(this.roomId).get(seq) ?? this.quotes.get(key);
    if (!loaded && !this.quotes.has(key)) {
      this.quotes.set(key, null);
      const roomId = this.roomId;
      api.message(roomId, seq).then((message) => {
        this.quotes.set(key, message);
        if (this.roomId === roomId) this.render({});
      }, () => {});
    }
    return loaded ?? null;
  }

  drawQuote(seq) {
    const original = this.quoteFor(seq);
    const name = original ? this.chat.userName(original.senderId) : t("message.replyUnknown");
    const text = !original ? "" : original.deleted ? t("message.deleted") : original.content.slice(0, 160);
    return h("button", { type: "button", class: "quote", onclick: () => this.highlight(seq) },
      h("span", { class: "quote-author" }, h("span", { class: "visually-hidden" }, `${t("message.inReplyTo")} `), name),
      h("span", { class: "quote-text" }, text));
  }

  highlight(seq) {
    const element = this.rows.querySelector(`#m-${seq}`);
    if (!element) return;
    element.scrollIntoView({ block: "center" });
    element.classList.add("flash");
    element.focus({ preventScroll: true });
    setTimeout(() => element.classList.remove("flash"), 1600);
  }

  seenText(seq) {
    const members = this.chat.members.get(this.roomId);
    if (!members) return "";
    const readers = seenBy(members, seq, this.chat.me.id).map((member) => member.user.displayName);
    if (readers.length === 0) return "";
    if (readers.length <= 3) return t("message.seenBy", { names: readers.join(", ") });
    return t("message.seenByMany", { names: readers.slice(0, 3).join(", "), count: readers.length - 3 });
  }

  refreshTimes() {
    if (!this.rows) return;
    const now = Date.now();
    const locale = currentLocale();
    for (const time of this.rows.querySelectorAll("time[data-at]")) {
      time.textContent = relativeTime(time.dataset.at, now, locale);
    }
  }

  renderTyping() {
    const names = this.chat.typists(this.roomId).map((id) => this.chat.userName(id));
    let text = "";
    if (names.length === 1) text = t("typing.one", { a: names[0] });
    else if (names.length === 2) text = t("typing.two", { a: names[0], b: names[1] });
    else if (names.length > 2) text = t("typing.many", { count: names.length });
    this.typingLine.textContent = text;
  }

  // ---- composer -----------------------------------------------------------------------------

  buildComposer(room) {
    this.context = h("div", { class: "composer-context", hidden: true });
    this.composerError = h("p", { class: "field-error", role: "alert" });
    this.composer = h("textarea", {
      id: "composer", rows: 1, maxlength: MAX_MESSAGE_CHARS * 2,
      "aria-label": t("composer.label", { room: room.name }),
      placeholder: t("composer.placeholder", { room: room.kind === "direct" ? room.name : `#${room.name}` }),
      "aria-describedby": "composer-hint",
    });
    this.composer.value = this.drafts.get(room.id) ?? "";
    const send = h("button", { type: "submit", class: "primary send", "aria-label": t("composer.send") }, t("composer.send"));
    const form = h("form", { class: "composer" },
      this.context,
      h("div", { class: "composer-row" }, this.composer, send),
      this.composerError,
      h("p", { class: "composer-hint muted small", id: "composer-hint" }, t("composer.hint")));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.composer.addEventListener("keydown", (event) => this.onComposerKey(event));
    this.composer.addEventListener("input", () => {
      this.autosize();
      this.composerError.textContent = "";
      if (this.composer.value.trim() && !this.editing) this.chat.typingActive(this.roomId);
      else this.chat.typingStopped(this.roomId);
    });
    this.composer.addEventListener("blur", () => this.chat.typingStopped(this.roomId));
    queueMicrotask(() => {
      this.autosize();
      if (!this.mobile.matches) this.composer.focus();
    });
    return form;
  }

  autosize() {
    this.composer.style.height = "auto";
    this.composer.style.height = `${Math.min(this.composer.scrollHeight, 220)}px`;
  }

  onComposerKey(event) {
    if (event.isComposing || event.keyCode === 229) return; // an IME is building a character
    if (event.key === "Enter" && !event.shiftKey && !event.altKey) {
      event.preventDefault();
      this.submit();
    } else if (event.key === "ArrowUp" && this.composer.value === "" && !this.editing) {
      const mine = this.chat.timeline(this.roomId).sorted().reverse()
        .find((m) => m.senderId === this.chat.me.id && !m.deleted);
      if (mine) {
        event.preventDefault();
        this.startEdit(mine);
      }
    } else if (event.key === "Escape" && (this.editing || this.replyTo)) {
      event.preventDefault();
      this.cancelContext();
    }
  }

  async submit() {
    const content = this.composer.value.replace(/\s+$/, "");
    if (!content.trim()) return;
    if ([...content].length > MAX_MESSAGE_CHARS) {
      this.composerError.textContent = t("composer.tooLong", { max: MAX_MESSAGE_CHARS });
      return;
    }
    const roomId = this.roomId;
    if (this.editing) {
      const seq = this.editing;
      try {
        await this.chat.edit(roomId, seq, content);
        this.cancelContext();
      } catch (error) {
        this.composerError.textContent = errorText(error);
      }
      return;
    }
    this.chat.send(roomId, content, this.replyTo?.seq ?? null);
    this.composer.value = "";
    this.drafts.delete(roomId);
    this.cancelContext();
    this.autosize();
    this.scrollToBottom();
  }

  startReply(message) {
    this.editing = null;
    this.replyTo = message;
    this.showContext(t("composer.replyingTo", { name: this.chat.userName(message.senderId) }), message.content);
    this.composer.focus();
  }

  startEdit(message) {
    this.replyTo = null;
    this.editing = message.seq;
    this.savedDraft = this.composer.value;
    this.composer.value = message.content;
    this.autosize();
    this.showContext(t("composer.editing"), null);
    this.composer.focus();
    this.composer.setSelectionRange(this.composer.value.length, this.composer.value.length);
    this.render({});
  }

  showContext(label, quote) {
    this.context.hidden = false;
    this.context.replaceChildren(
      h("span", { class: "context-label" }, h("strong", {}, label), quote && h("span", { class: "muted" }, ` ${quote.slice(0, 100)}`)),
      h("button", { type: "button", class: "link", onclick: () => this.cancelContext() }, t("composer.cancel")));
  }

  cancelContext() {
    const wasEditing = this.editing;
    this.replyTo = null;
    this.editing = null;
    this.context.hidden = true;
    this.context.replaceChildren();
    if (wasEditing) {
      this.composer.value = this.savedDraft ?? "";
      this.savedDraft = null;
      this.autosize();
      this.render({});
    }
    this.composer.focus();
  }

  async confirmDelete(message) {
    const ok = await confirmDialog(t("message.delete"), t("message.deleteConfirm"), t("message.delete"), { danger: true });
    if (!ok) return;
    try {
      await this.chat.remove(this.roomId, message.seq);
    } catch (error) {
      this.composerError.textContent = errorText(error);
    }
  }

  // ---- members -------------------------------------------------------------------------------

  renderMembers() {
    if (!this.membersPanel) return;
    const room = this.chat.rooms.get(this.roomId);
    if (!room) return;
    const members = this.chat.members.get(this.roomId);
    const order = { online: 0, away: 1, offline: 2 };
    const sorted = [...(members ?? [])].sort((a, b) =>
      order[this.chat.status(a.user.id)] - order[this.chat.status(b.user.id)]
      || a.user.displayName.localeCompare(b.user.displayName));
    const canAdd = room.kind !== "direct"
      && (room.visibility === "public" || room.role === "owner" || room.role === "admin" || this.chat.me.isAdmin);
    this.membersPanel.replaceChildren(
      h("div", { class: "panel-head" },
        h("h2", {}, t("room.members")),
        h("button", { type: "button", class: "icon-button", "aria-label": t("room.hideMembers"), onclick: () => this.toggleMembers(false) }, icon("close"))),
      h("ul", { class: "member-list" }, sorted.map((member) => {
        const status = this.chat.status(member.user.id);
        return h("li", { class: "member" },
          h("span", { class: "avatar small", "aria-hidden": "true" }, initials(member.user.displayName), h("span", { class: `presence ${status}` })),
          h("span", { class: "member-name" }, member.user.displayName,
            h("span", { class: "muted small" }, ` @${member.user.username}`)),
          h("span", { class: "visually-hidden" }, `, ${t(`status.${status}`)}`),
          member.role !== "member" && h("span", { class: "role small" }, member.role));
      })),
      canAdd && (this.addBox ??= this.addMemberBox(room)),
      room.kind !== "direct" && h("button", { type: "button", class: "secondary wide leave", onclick: () => this.leave(room) }, t("room.leave")));
  }

  addMemberBox(room) {
    const picker = userPicker({
      label: t("room.addMember"),
      placeholder: t("room.addMemberPlaceholder"),
      exclude: (user) => (this.chat.members.get(room.id) ?? []).some((member) => member.user.id === user.id),
      onPick: async (user, error) => {
        try {
          await this.chat.addMember(room.id, user.id);
        } catch (e) {
          error.textContent = errorText(e);
        }
      },
    });
    picker.querySelector("input").removeAttribute("autofocus");
    return picker;
  }

  async leave(room) {
    const ok = await confirmDialog(t("room.leave"), t("room.leaveConfirm", { room: room.name }), t("room.leave"), { danger: true });
    if (!ok) return;
    try {
      await this.chat.leaveRoom(room.id);
      location.hash = "#/";
    } catch (error) {
      this.composerError.textContent = errorText(error);
    }
  }
}
