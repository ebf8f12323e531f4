// The composer of the open room and the typing line above it: Enter sends, Shift+Enter makes a
// new line, nothing fires while an IME is composing; a draft per room; reply and edit mode
// (Up arrow on an empty composer edits the user's last message, Escape cancels); the length
// limit; telling the room the user is typing; showing who else is.
//
// Must not: draw or scroll the message log (it calls the handlers RoomView gives it); change
// chat state except through Chat (send, edit, typingActive, typingStopped).

import { MAX_MESSAGE_CHARS } from "../../chat.js";
import { h } from "../../dom.js";
import { errorText, t } from "../../i18n.js";

const MAX_HEIGHT_PX = 220;
const QUOTE_PREVIEW_CHARS = 100;

export class Composer {
  /**
   * `view`: `mobile` (a MediaQueryList: no autofocus on phones), `sent()` after a message
   * went out, `editingChanged()` when edit mode starts or ends (the log marks the row).
   */
  constructor(chat, view) {
    this.chat = chat;
    this.view = view;
    this.roomId = null;
    this.drafts = new Map();       // roomId -> unsent text
    this.textarea = null;
    this.replyTo = null;           // the message being answered
    this.editing = null;           // the seq being edited
    this.savedDraft = null;        // the draft put aside while editing
  }

  /** Leaves reply and edit mode (another room opens). */
  reset() {
    this.replyTo = null;
    this.editing = null;
  }

  /** Keeps the text written in `roomId` for when it opens again. */
  saveDraft(roomId) {
    if (this.textarea) this.drafts.set(roomId, this.textarea.value);
  }

  focus() {
    this.textarea.focus();
  }

  showError(text) {
    this.error.textContent = text;
  }

  /** The typing line and the composer form of `room` (which is this.roomId). */
  build(room) {
    this.typingLine = h("div", { class: "typing-line", "aria-live": "polite" });
    this.context = h("div", { class: "composer-context", hidden: true });
    this.error = h("p", { class: "field-error", role: "alert" });
    const textarea = this.textarea = h("textarea", {
      id: "composer", rows: 1, maxlength: MAX_MESSAGE_CHARS * 2,
      "aria-label": t("composer.label", { room: room.name }),
      placeholder: t("composer.placeholder", { room: room.kind === "direct" ? room.name : `#${room.name}` }),
      "aria-describedby": "composer-hint",
    });
    textarea.value = this.drafts.get(room.id) ?? "";
    const send = h("button", { type: "submit", class: "primary send", "aria-label": t("composer.send") }, t("composer.send"));
    const form = h("form", { class: "composer" },
      this.context,
      h("div", { class: "composer-row" }, textarea, send),
      this.error,
      h("p", { class: "composer-hint muted small", id: "composer-hint" }, t("composer.hint")));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    textarea.addEventListener("keydown", (event) => this.onKey(event));
    textarea.addEventListener("input", () => {
      this.autosize();
      this.error.textContent = "";
      if (textarea.value.trim() && !this.editing) this.chat.typingActive(this.roomId);
      else this.chat.typingStopped(this.roomId);
    });
    textarea.addEventListener("blur", () => this.chat.typingStopped(this.roomId));
    queueMicrotask(() => {
      this.autosize();
      if (!this.view.mobile.matches) textarea.focus();
    });
    return [this.typingLine, form];
  }

  autosize() {
    this.textarea.style.height = "auto";
    this.textarea.style.height = `${Math.min(this.textarea.scrollHeight, MAX_HEIGHT_PX)}px`;
  }

  onKey(event) {
    if (event.isComposing || event.keyCode === 229) return; // an IME is building a character
    if (event.key === "Enter" && !event.shiftKey && !event.altKey) {
      event.preventDefault();
      this.submit();
    } else if (event.key === "ArrowUp" && this.textarea.value === "" && !this.editing) {
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
    const content = this.textarea.value.replace(/\s+$/, "");
    if (!content.trim()) return;
    if ([...content].length > MAX_MESSAGE_CHARS) {
      this.error.textContent = t("composer.tooLong", { max: MAX_MESSAGE_CHARS });
      return;
    }
    const roomId = this.roomId;
    if (this.editing) {
      const seq = this.editing;
      try {
        await this.chat.edit(roomId, seq, content);
        this.cancelContext();
      } catch (error) {
        this.error.textContent = errorText(error);
      }
      return;
    }
    this.chat.send(roomId, content, this.replyTo?.seq ?? null);
    this.textarea.value = "";
    this.drafts.delete(roomId);
    this.cancelContext();
    this.autosize();
    this.view.sent();
  }

  startReply(message) {
    this.editing = null;
    this.replyTo = message;
    this.showContext(t("composer.replyingTo", { name: this.chat.userName(message.senderId) }), message.content);
    this.textarea.focus();
  }

  startEdit(message) {
    this.replyTo = null;
    this.editing = message.seq;
    this.savedDraft = this.textarea.value;
    this.textarea.value = message.content;
    this.autosize();
    this.showContext(t("composer.editing"), null);
    this.textarea.focus();
    this.textarea.setSelectionRange(this.textarea.value.length, this.textarea.value.length);
    this.view.editingChanged();
  }

  showContext(label, quote) {
    this.context.hidden = false;
    this.context.replaceChildren(
      h("span", { class: "context-label" }, h("strong", {}, label), quote && h("span", { class: "muted" }, ` ${quote.slice(0, QUOTE_PREVIEW_CHARS)}`)),
      h("button", { type: "button", class: "link", onclick: () => this.cancelContext() }, t("composer.cancel")));
  }

  cancelContext() {
    const wasEditing = this.editing;
    this.replyTo = null;
    this.editing = null;
    this.context.hidden = true;
    this.context.replaceChildren();
    if (wasEditing) {
      this.textarea.value = this.savedDraft ?? "";
      this.savedDraft = null;
      this.autosize();
      this.view.editingChanged();
    }
    this.textarea.focus();
  }

  /** "Bob is typing…", "Bob and Cy are typing…", "3 people are typing…". */
  renderTyping() {
    const names = this.chat.typists(this.roomId).map((id) => this.chat.userName(id));
    let text = "";
    if (names.length === 1) text = t("typing.one", { a: names[0] });
    else if (names.length === 2) text = t("typing.two", { a: names[0], b: names[1] });
    else if (names.length > 2) text = t("typing.many", { count: names.length });
    this.typingLine.textContent = text;
  }
}
