// The member panel of the open room: members sorted by presence then name, with presence dots
// and roles, the add-member search (kept across redraws so typing in it survives), and
// leaving the room.
//
// Must not: draw anything outside its <aside>; change chat state except through Chat
// (addMember, leaveRoom, searchUsers via the picker).

import { h, icon } from "../../dom.js";
import { initials } from "../../format.js";
import { errorText, t } from "../../i18n.js";
import { confirmDialog, userPicker } from "../dialogs.js";

const STATUS_ORDER = { online: 0, away: 1, offline: 2 };

export class MembersPanel {
  /** `view`: `close()` (the panel's own close button) and `showError(text)` (under the composer). */
  constructor(chat, view) {
    this.chat = chat;
    this.view = view;
    this.roomId = null;
    this.element = null;
    this.addBox = null;
  }

  /** The panel of `room` (which is this.roomId), hidden unless `open`. */
  build(room, open) {
    this.element = h("aside", { class: "members-panel", id: "members-panel", "aria-label": t("room.members"), hidden: !open });
    this.addBox = null; // the add-member search box survives member list redraws
    return this.element;
  }

  render() {
    if (!this.element) return;
    const chat = this.chat;
    const room = chat.rooms.get(this.roomId);
    if (!room) return;
    const members = chat.members.get(this.roomId);
    const sorted = [...(members ?? [])].sort((a, b) =>
      STATUS_ORDER[chat.status(a.user.id)] - STATUS_ORDER[chat.status(b.user.id)]
      || a.user.displayName.localeCompare(b.user.displayName));
    const canAdd = room.kind !== "direct"
      && (room.visibility === "public" || room.role === "owner" || room.role === "admin" || chat.me.isAdmin);
    this.element.replaceChildren(
      h("div", { class: "panel-head" },
        h("h2", {}, t("room.members")),
        h("button", { type: "button", class: "icon-button", "aria-label": t("room.hideMembers"), onclick: () => this.view.close() }, icon("close"))),
      h("ul", { class: "member-list" }, sorted.map((member) => {
        const status = chat.status(member.user.id);
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
      chat: this.chat,
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
      this.view.showError(errorText(error));
    }
  }
}
