// The signed-in screen around the room: the sidebar (rooms and direct messages with unread
// counts and previews, the account menu), the connection banner, the mobile drawer, routing
// by `#/room/<id>`, presence (away when idle or hidden), notifications and the tab title.
//
// Must not: draw the inside of a room (room/) or talk to the server except through Chat.

import { Chat } from "../chat.js";
import { h, icon } from "../dom.js";
import { initials } from "../format.js";
import { t } from "../i18n.js";
import { Realtime } from "../realtime.js";
import { browseRoomsDialog, createRoomDialog, inviteDialog, newDmDialog } from "./dialogs.js";
import { RoomView } from "./room/index.js";

const AWAY_AFTER_MS = 5 * 60_000;
const MOBILE = "(max-width: 767.98px)";

export function startChat(root, { me, server, onSignedOut }) {
  const realtime = new Realtime({ url: location.origin });
  const chat = new Chat({ me, realtime });
  const mobile = matchMedia(MOBILE);

  const banner = h("div", { class: "banner", role: "status", "aria-live": "polite", hidden: true });
  const roomList = h("ul", { class: "room-list", "aria-labelledby": "rooms-heading" });
  const dmList = h("ul", { class: "room-list", "aria-labelledby": "dms-heading" });
  const menu = accountMenu();
  const sidebar = h("nav", { class: "sidebar", id: "sidebar", "aria-label": t("sidebar.label") },
    h("div", { class: "sidebar-head" },
      h("a", { class: "brand", href: "#/" }, h("img", { src: "/favicon.svg", alt: "", width: 24, height: 24 }), h("span", {}, server.name || "parley")),
      menu.element),
    h("div", { class: "sidebar-scroll" },
      section("rooms-heading", t("sidebar.rooms"), [
        h("button", { type: "button", class: "icon-button", "aria-label": t("sidebar.browseRooms"), title: t("sidebar.browseRooms"), onclick: () => browseRoomsDialog(chat).then(go) }, icon("search")),
        h("button", { type: "button", class: "icon-button", "aria-label": t("sidebar.createRoom"), title: t("sidebar.createRoom"), onclick: () => createRoomDialog(chat).then(go) }, icon("plus")),
      ], roomList),
      section("dms-heading", t("sidebar.dms"), [
        h("button", { type: "button", class: "icon-button", "aria-label": t("sidebar.newDm"), title: t("sidebar.newDm"), onclick: () => newDmDialog(chat).then(go) }, icon("plus")),
      ], dmList)));
  const scrim = h("div", { class: "scrim", "aria-hidden": "true", onclick: () => setDrawer(false) });
  const main = h("main", { class: "main", id: "main" });
  const shell = h("div", { class: "shell" }, sidebar, scrim, h("div", { class: "main-column" }, banner, main));
  root.replaceChildren(shell);

  const roomView = new RoomView(chat, main, { onMenu: () => setDrawer(true), mobile });

  function section(id, title, actions, list) {
    return h("section", { class: "sidebar-section" },
      h("div", { class: "section-head" }, h("h2", { id }, title), h("div", { class: "section-actions" }, actions)),
      list);
  }

  function go(room) {
    if (room) location.hash = `#/room/${room.id}`;
  }

  function setDrawer(open) {
    shell.classList.toggle("drawer-open", open);
    sidebar.inert = mobile.matches && !open;
    main.inert = mobile.matches && open;
    if (open) sidebar.querySelector("a[aria-current], a.room-link, button")?.focus();
  }
  mobile.addEventListener("change", () => setDrawer(false));

  // ---- sidebar ------------------------------------------------------------------------------

  const links = new Map();
  function renderRooms() {
    const { groups, directs } = chat.sortedRooms();
    const fill = (list, rooms, emptyText) => {
      if (rooms.length === 0) {
        list.replaceChildren(h("li", { class: "muted small empty" }, emptyText));
        return;
      }
      const items = rooms.map((room) => {
        let link = links.get(room.id);
        if (!link) {
          link = h("a", { class: "room-link", href: `#/room/${room.id}`, onclick: () => setDrawer(false) });
          links.set(room.id, link);
        }
        fillLink(link, room);
        return link.parentElement?.tagName === "LI" ? link.parentElement : h("li", {}, link);
      });
      list.replaceChildren(...items);
    };
    fill(roomList, groups, t("sidebar.noRooms"));
    fill(dmList, directs, t("sidebar.noDms"));
    for (const id of [...links.keys()]) if (!chat.rooms.has(id)) links.delete(id);
    updateTitle();
  }

  function fillLink(link, room) {
    const active = chat.activeRoomId === room.id;
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
    const unread = room.unread ?? 0;
    link.classList.toggle("has-unread", unread > 0);
    const last = room.lastMessage;
    let preview = "";
    if (last) {
      const who = last.senderId === chat.me.id ? t("sidebar.you") : chat.userName(last.senderId);
      const text = last.deleted ? t("sidebar.deleted") : last.content.replace(/\s+/g, " ").slice(0, 120);
      preview = room.kind === "direct" && last.senderId !== chat.me.id ? text : `${who}: ${text}`;
    }
    const marker = room.kind === "direct"
      ? h("span", { class: `presence ${chat.status(room.peer?.id)}`, role: "img", "aria-label": t(`status.${chat.status(room.peer?.id)}`) })
      : h("span", { class: "hash", "aria-hidden": "true" }, icon(room.visibility === "private" ? "lock" : "hash"));
    link.replaceChildren(...[
      marker,
      h("span", { class: "room-text" },
        h("span", { class: "room-name" }, room.name),
        preview && h("span", { class: "room-preview" }, preview)),
      unread > 0 && h("span", { class: "badge", "aria-label": t("sidebar.unread", { count: unread }) }, unread >= 1000 ? "999+" : String(unread)),
    ].filter(Boolean));
  }

  // ---- account menu ------------------------------------------------------------------------

  function accountMenu() {
    const summary = h("summary", { class: "me" });
    const notifyButton = h("button", { type: "button", class: "menu-item" });
    const items = h("div", { class: "menu-items" },
      me.isAdmin && h("button", { type: "button", class: "menu-item", onclick: () => { close(); inviteDialog(chat); } }, t("menu.invite")),
      notifyButton,
      h("button", { type: "button", class: "menu-item", onclick: signOut }, t("menu.signOut")));
    const element = h("details", { class: "account-menu" }, summary, items);
    const close = () => element.removeAttribute("open");
    element.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        close();
        summary.focus();
      }
    });
    document.addEventListener("click", (event) => {
      if (!element.contains(event.target)) close();
    });
    // Updated in place: replacing the nodes under a pointer would swallow the click that
    // opens the menu (the first click also flips presence back to online, which re-renders).
    const dot = h("span", { class: "presence" });
    const initialsText = document.createTextNode("");
    const avatar = h("span", { class: "avatar small", "aria-hidden": "true" }, initialsText, dot);
    const name = h("span", { class: "me-name" });
    const hidden = h("span", { class: "visually-hidden" });
    summary.append(avatar, name, hidden);
    const render = () => {
      const status = chat.status(me.id);
      initialsText.data = initials(me.displayName);
      dot.className = `presence ${status}`;
      name.textContent = me.displayName;
      hidden.textContent = `, ${t(`status.${status}`)}, ${t("menu.label")}`;
      const permission = globalThis.Notification?.permission;
      notifyButton.hidden = !globalThis.Notification;
      notifyButton.disabled = permission !== "default";
      notifyButton.textContent = permission === "granted" ? t("menu.notificationsOn")
        : permission === "denied" ? t("menu.notificationsBlocked") : t("menu.notifications");
    };
    notifyButton.addEventListener("click", async () => {
      await Notification.requestPermission();
      render();
    });
    return { element, render };
  }

  async function signOut() {
    realtime.close();
    await chat.signOut().catch(() => {});
    teardown();
    onSignedOut();
  }

  // ---- connection banner, title, notifications ------------------------------------------------

  function renderBanner(state) {
    const text = state === "connected" ? "" : state === "connecting" ? t("conn.connecting")
      : state === "reconnecting" ? (navigator.onLine === false ? t("conn.offline") : t("conn.reconnecting")) : t("conn.offline");
    banner.hidden = !text;
    banner.dataset.state = state;
    banner.textContent = text;
  }

  function updateTitle() {
    const unread = chat.totalUnread();
    const room = chat.rooms.get(chat.activeRoomId);
    const name = room ? `${room.kind === "direct" ? "" : "#"}${room.name} · parley` : "parley";
    document.title = unread > 0 ? `(${unread > 999 ? "999+" : unread}) ${name}` : name;
  }

  function notify({ roomId, message, direct }) {
    if (!document.hidden || globalThis.Notification?.permission !== "granted") return;
    const room = chat.rooms.get(roomId);
    const author = chat.userName(message.senderId);
    const title = direct ? author : t("notify.mention", { name: author, room: room?.name ?? "" });
    const notification = new Notification(title, { body: message.content.slice(0, 200), tag: `room-${roomId}` });
    notification.onclick = () => {
      window.focus();
      location.hash = `#/room/${roomId}`;
      notification.close();
    };
  }

  // ---- presence: away after 5 idle minutes or while the tab is hidden --------------------------

  let idleTimer;
  const active = () => {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => chat.setPresence("away"), AWAY_AFTER_MS);
    if (!document.hidden) chat.setPresence("online");
  };
  const onVisibility = () => {
    if (document.hidden) chat.setPresence("away");
    else {
      active();
      roomView.visible();
    }
  };
  const activityEvents = ["pointerdown", "keydown", "wheel", "touchstart"];
  for (const name of activityEvents) addEventListener(name, active, { passive: true });
  document.addEventListener("visibilitychange", onVisibility);
  addEventListener("online", () => renderBanner(realtime.state));
  addEventListener("offline", () => renderBanner(realtime.state));
  active();

  // ---- routing -----------------------------------------------------------------------------

  function route() {
    const match = /^#\/room\/(\d+)$/.exec(location.hash);
    const roomId = match ? Number(match[1]) : null;
    if (roomId && chat.rooms.has(roomId)) {
      roomView.open(roomId);
      setDrawer(false);
    } else if (roomId) {
      // Not a member (or not yet loaded): a public room can be looked at and joined.
      chat.lookupRoom(roomId).then((room) => roomView.preview(room), () => roomView.open(null));
    } else {
      const first = chat.sortedRooms();
      const fallback = first.groups[0] ?? first.directs[0];
      if (fallback && !mobile.matches) {
        history.replaceState(null, "", `#/room/${fallback.id}`);
        roomView.open(fallback.id);
      } else {
        roomView.open(null);
        if (mobile.matches) setDrawer(true);
      }
    }
    renderRooms();
    updateTitle();
  }
  addEventListener("hashchange", route);

  const onChange = (event) => {
    const { kind } = event.detail;
    if (kind === "rooms" || kind === "presence" || kind === "users") renderRooms();
    if (kind === "presence" || kind === "users") menu.render();
    if (kind === "connection") renderBanner(event.detail.state);
    if (kind === "notify") notify(event.detail);
    if (kind === "room-gone") location.hash = "#/";
    const unauthenticated = kind === "connect_error" && event.detail.error?.data?.code === "unauthenticated";
    if (unauthenticated || kind === "session_ended") {
      teardown();
      onSignedOut();
    }
  };
  chat.addEventListener("change", onChange);

  function teardown() {
    realtime.close();
    chat.removeEventListener("change", onChange);
    removeEventListener("hashchange", route);
    document.removeEventListener("visibilitychange", onVisibility);
    for (const name of activityEvents) removeEventListener(name, active);
    clearTimeout(idleTimer);
    roomView.destroy();
  }

  menu.render();
  renderBanner(realtime.state);
  chat.loadRooms().then(route, () => route());
  return { chat, realtime };
}
