// The message log of the open room: loading history (older pages until the first unread
// message and until the log can scroll, then infinite scroll upward that keeps the reading
// position), drawing the rows through a cache keyed by row (one element per seq, or clientId
// while pending, rebuilt only when its rowKey changes), the "new messages" divider, jump to
// latest, marking the room read when the bottom is seen, refreshing relative times, and
// keyboard reading (Up/Down/Home/End between messages, Escape back to the composer).
//
// Must not: draw a row itself (message.js does, from row-model.js's model); change chat state
// except through Chat (loadOlder, markRead, retry, discard); touch the composer or the member
// panel (it calls the handlers RoomView gives it).

import { h } from "../../dom.js";
import { relativeTime, sameDay } from "../../format.js";
import { currentLocale, errorText, t } from "../../i18n.js";
import { layout } from "../../timeline.js";
import { drawRow } from "./message.js";
import { rowKey, rowModel } from "./row-model.js";

const LOAD_OLDER_WHEN_PX = 400;   // start fetching older history this close to the top
const AT_BOTTOM_PX = 48;
const MAX_PAGES_TO_DIVIDER = 6;   // how far back we fetch to show the first unread message
const FLASH_MS = 1600;

export class MessageLog {
  /**
   * `view` gives what the log needs from around it: `editingSeq()` (the composer's edit),
   * `focusComposer()`, and the message actions `reply(message)`, `edit(message)`,
   * `remove(message)`.
   */
  constructor(chat, view) {
    this.chat = chat;
    this.view = view;
    this.roomId = null;
    this.element = null;
    this.rowCache = new Map();     // row key -> { element, key: rowKey(model) }
    this.unseen = 0;
    this.dividerAfter = null;
    const message = (seq) => this.chat.timeline(this.roomId).get(seq);
    this.on = {
      reply: (seq) => message(seq) && view.reply(message(seq)),
      edit: (seq) => message(seq) && view.edit(message(seq)),
      remove: (seq) => message(seq) && view.remove(message(seq)),
      quote: (seq) => this.highlight(seq),
      retry: (clientId) => this.chat.retry(this.roomId, clientId),
      discard: (clientId) => this.chat.discard(this.roomId, clientId),
    };
  }

  /** Forgets the rows of the room shown before. */
  reset() {
    this.rowCache = new Map();
    this.unseen = 0;
  }

  /** The log of `room` (which is this.roomId): the scrolling list and its jump button. */
  build(room) {
    // The divider stays where the user stopped reading when they opened the room.
    this.dividerAfter = (room.unread ?? 0) > 0 ? room.lastReadSeq ?? 0 : null;
    this.loader = h("div", { class: "log-edge muted small", role: "status" });
    this.rows = h("div", { class: "rows" });
    this.element = h("div", {
      class: "log", role: "log", tabindex: "0", "aria-label": t("room.messages", { room: room.name }),
      onscroll: () => this.onScroll(),
    }, this.loader, this.rows);
    this.element.addEventListener("keydown", (event) => this.onKey(event));
    this.jump = h("button", { type: "button", class: "jump", hidden: true, onclick: () => this.scrollToBottom(true) });
    return h("div", { class: "log-wrap" }, this.element, this.jump);
  }

  // ---- loading history -----------------------------------------------------------------------

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
    while (this.roomId === roomId && !timeline.reachedStart && this.element.scrollHeight <= this.element.clientHeight + LOAD_OLDER_WHEN_PX) {
      if (await this.chat.loadOlder(roomId) === 0) break;
    }
  }

  showLoadError(error) {
    this.loader.textContent = errorText(error);
  }

  // ---- scrolling ----------------------------------------------------------------------------

  atBottom() {
    const log = this.element;
    return log.scrollHeight - log.scrollTop - log.clientHeight <= AT_BOTTOM_PX;
  }

  scrollToBottom(focusComposer = false) {
    this.element.scrollTop = this.element.scrollHeight;
    this.unseen = 0;
    this.updateJump();
    if (focusComposer) this.view.focusComposer();
  }

  onScroll() {
    if (this.element.scrollTop < LOAD_OLDER_WHEN_PX) {
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
  onKey(event) {
    const keys = ["ArrowUp", "ArrowDown", "Home", "End", "Escape"];
    if (!keys.includes(event.key) || event.target.closest("button, a, input, textarea")) return;
    const articles = [...this.rows.querySelectorAll("article.msg")];
    if (articles.length === 0) return;
    if (event.key === "Escape") {
      this.view.focusComposer();
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
    const log = this.element;
    const far = log.scrollHeight - log.scrollTop - log.clientHeight > log.clientHeight / 2;
    this.jump.hidden = !far && this.unseen === 0;
    this.jump.textContent = this.unseen > 0 ? `${t("room.newBelow", { count: this.unseen })} ↓` : `${t("room.jumpToLatest")} ↓`;
  }

  markReadIfSeen() {
    if (!this.roomId || document.hidden || !this.element || !this.atBottom()) return;
    const newest = this.chat.timeline(this.roomId).newestSeq();
    this.chat.markRead(this.roomId, newest);
  }

  /** Scrolls to the message `seq` and flashes it (a click on a reply's quote). */
  highlight(seq) {
    const element = this.rows.querySelector(`#m-${seq}`);
    if (!element) return;
    element.scrollIntoView({ block: "center" });
    element.classList.add("flash");
    element.focus({ preventScroll: true });
    setTimeout(() => element.classList.remove("flash"), FLASH_MS);
  }

  // ---- drawing ------------------------------------------------------------------------------

  /**
   * Redraws what changed and places the scroll: the first unread (or the bottom) when the room
   * opens, the same message when an older page arrived above, the bottom when the reader was
   * there or sent the message; otherwise counts the new message for the jump button.
   */
  render({ older = false, isNew = false, own = false, initial = false } = {}) {
    const roomId = this.roomId;
    const room = this.chat.rooms.get(roomId);
    if (!room) return;
    const log = this.element;
    const timeline = this.chat.timeline(roomId);
    const wasAtBottom = this.atBottom();
    const fromBottom = log.scrollHeight - log.scrollTop;

    this.loader.textContent = timeline.reachedStart
      ? (timeline.size === 0 ? t("room.emptyHistory", { room: room.name }) : t("room.beginning", { room: room.name }))
      : this.chat.loadingOlder.has(roomId) ? t("room.loadingOlder") : "";

    const messages = timeline.sorted();
    const rows = layout(messages, {
      dividerAfterSeq: this.dividerAfter,
      pending: this.chat.pending(roomId),
      sameDay,
    });
    this.reconcile(rows, this.context(room, messages));

    if (initial) {
      const divider = this.rows.querySelector(".divider");
      if (divider && divider.offsetTop > log.clientHeight / 2) log.scrollTop = divider.offsetTop - 60;
      else log.scrollTop = log.scrollHeight;
    } else if (older) {
      log.scrollTop = log.scrollHeight - fromBottom;
    } else if (wasAtBottom || own) {
      log.scrollTop = log.scrollHeight;
    } else if (isNew) {
      this.unseen += 1;
    }
    this.updateJump();
    this.markReadIfSeen();
  }

  /** The reader's context for rowModel (see row-model.js). */
  context(room, messages) {
    const chat = this.chat;
    const me = chat.me;
    const lastMine = [...messages].reverse().find((m) => m.senderId === me.id && !m.deleted);
    return {
      me: { id: me.id, username: me.username, displayName: me.displayName },
      userName: (userId) => chat.userName(userId),
      quote: (seq) => chat.quoted(room.id, seq),
      members: chat.members.get(room.id) ?? null,
      lastMineSeq: lastMine?.seq ?? null,
      editingSeq: this.view.editingSeq(),
      canModerate: Boolean(me.isAdmin || room.role === "owner" || room.role === "admin"),
      now: Date.now(),
      locale: currentLocale(),
    };
  }

  /** Puts one element per row in order, reusing every cached row whose rowKey is unchanged. */
  reconcile(rows, ctx) {
    const fresh = new Map();
    let cursor = this.rows.firstChild;
    for (const row of rows) {
      const model = rowModel(row, ctx);
      const key = rowKey(model);
      let cached = this.rowCache.get(row.key);
      if (!cached || cached.key !== key) {
        const element = drawRow(model, this.on, ctx.now);
        if (cached) cached.element.replaceWith(element);
        if (cached && cursor === cached.element) cursor = element;
        cached = { element, key };
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

  /** Every 30 s: "just now" becomes "1 min ago" without redrawing rows. */
  refreshTimes() {
    if (!this.rows) return;
    const now = Date.now();
    const locale = currentLocale();
    for (const time of this.rows.querySelectorAll("time[data-at]")) {
      time.textContent = relativeTime(time.dataset.at, now, locale);
    }
  }
}
