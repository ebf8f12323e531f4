// One open room (or a public room's preview with a Join button): the room header with its
// title, topic or presence and the members toggle, and the wiring of its three parts, the
// message log (log.js), the composer and typing line (composer.js) and the member panel
// (members.js). It routes Chat's "change" events to the part they concern and owns the one
// action that spans them: deleting a message after confirming.
//
// Must not: keep chat state of its own beyond what is on screen (drafts, reply/edit mode live
// in the composer); talk to the server except through Chat; draw message rows (message.js).

import { h, icon } from "../../dom.js";
import { errorText, t } from "../../i18n.js";
import { confirmDialog } from "../dialogs.js";
import { Composer } from "./composer.js";
import { MessageLog } from "./log.js";
import { MembersPanel } from "./members.js";

const TIMES_REFRESH_MS = 30_000;

export class RoomView {
  constructor(chat, main, { onMenu, mobile }) {
    this.chat = chat;
    this.main = main;
    this.onMenu = onMenu;
    this.mobile = mobile;
    this.roomId = null;
    this.built = false;
    this.membersOpen = !mobile.matches;
    this.log = new MessageLog(chat, {
      editingSeq: () => this.composer.editing,
      focusComposer: () => this.composer.focus(),
      reply: (message) => this.composer.startReply(message),
      edit: (message) => this.composer.startEdit(message),
      remove: (message) => this.confirmDelete(message),
    });
    this.composer = new Composer(chat, {
      mobile,
      sent: () => this.log.scrollToBottom(),
      editingChanged: () => this.log.render({}),
    });
    this.members = new MembersPanel(chat, {
      close: () => this.toggleMembers(false),
      showError: (text) => this.composer.showError(text),
    });
    this.onChange = (event) => this.changed(event.detail);
    chat.addEventListener("change", this.onChange);
    this.clock = setInterval(() => this.log.refreshTimes(), TIMES_REFRESH_MS);
  }

  destroy() {
    this.chat.removeEventListener("change", this.onChange);
    clearInterval(this.clock);
  }

  /** The room every part is about; null while nothing (or only a preview) is open. */
  setRoom(roomId) {
    this.roomId = roomId;
    this.chat.activeRoomId = roomId;
    this.log.roomId = roomId;
    this.composer.roomId = roomId;
    this.members.roomId = roomId;
  }

  // ---- opening -----------------------------------------------------------------------------

  open(roomId) {
    if (this.roomId) this.composer.saveDraft(this.roomId);
    if (this.roomId && this.roomId !== roomId) this.chat.typingStopped(this.roomId);
    this.setRoom(roomId);
    this.log.reset();
    this.composer.reset();
    const room = this.chat.rooms.get(roomId);
    if (!room) {
      this.main.replaceChildren(
        this.header(null),
        h("div", { class: "empty-room" }, h("p", {}, t("room.empty"))));
      return;
    }
    this.build(room);
    this.log.load(room).catch((error) => this.log.showLoadError(error));
  }

  /** A public room the user has not joined: its name and a Join button. */
  preview(room) {
    this.setRoom(null);
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

  /** The tab became visible again: the reader may now see messages that arrived meanwhile. */
  visible() {
    this.log.markReadIfSeen();
  }

  // ---- the room's DOM ------------------------------------------------------------------------

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
    const log = this.log.build(room);
    const composer = this.composer.build(room);
    const members = this.members.build(room, this.membersOpen);
    this.main.replaceChildren(
      this.header(room),
      h("div", { class: "room-body" },
        h("div", { class: "conversation" }, log, composer),
        members));
    this.built = true;
    this.members.render();
  }

  toggleMembers(open = !this.membersOpen) {
    this.membersOpen = open;
    this.members.element.hidden = !open;
    const room = this.chat.rooms.get(this.roomId);
    if (room) this.updateHeader(room);
    if (open) this.members.element.querySelector("button, input")?.focus();
    else this.membersButton.focus();
  }

  async confirmDelete(message) {
    const ok = await confirmDialog(t("message.delete"), t("message.deleteConfirm"), t("message.delete"), { danger: true });
    if (!ok) return;
    try {
      await this.chat.remove(this.roomId, message.seq);
    } catch (error) {
      this.composer.showError(errorText(error));
    }
  }

  // ---- reacting to chat changes -------------------------------------------------------------

  changed(detail) {
    const { kind, roomId } = detail;
    const room = this.chat.rooms.get(this.roomId);
    if (!room || !this.built) return;
    if ((kind === "timeline" || kind === "loading") && roomId === this.roomId) {
      this.log.render(detail);
    } else if (kind === "quote" && roomId === this.roomId) {
      this.log.render({});
    } else if (kind === "users") {
      this.log.render({});
      this.members.render();
    } else if (kind === "members" && roomId === this.roomId) {
      this.members.render();
      this.log.render({});
    } else if (kind === "presence") {
      this.members.render();
      this.updateHeader(room);
    } else if ((kind === "room" && roomId === this.roomId) || kind === "rooms") {
      this.updateHeader(room);
    } else if (kind === "typing" && roomId === this.roomId) {
      this.composer.renderTyping();
    }
  }
}
