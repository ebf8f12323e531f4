// The signed-in user's chat state and everything that keeps it true: rooms with unread counts,
// each room's timeline, members and read markers, presence, and users. It listens to the
// realtime connection and tells the screens what changed through "change" events
// ({ kind, roomId?, userId? }). It is the screens' one way to the server: every request the
// signed-in client makes goes through a method here. Its helpers, used by it alone: applying
// the server's realtime events (chat/events.js), the outbox of unacknowledged messages
// (chat/outbox.js), typing both ways (chat/typing.js) and catching up after a reconnect
// (chat/sync.js).
//
// Must not: touch the DOM. Screens read this state and call its methods.

import { api } from "./api.js";
import { Outbox } from "./chat/outbox.js";
import { listen } from "./chat/events.js";
import { catchUp, catchUpRoom } from "./chat/sync.js";
import { Typing } from "./chat/typing.js";
import { mentions } from "./dom.js";
import { Timeline } from "./timeline.js";

export const MAX_MESSAGE_CHARS = 8_000;

export class Chat extends EventTarget {
  constructor({ me, realtime }) {
    super();
    this.me = me;
    this.realtime = realtime;
    this.users = new Map([[me.id, me]]);
    this.rooms = new Map();
    this.timelines = new Map();
    this.members = new Map();
    this.quotes = new Map();         // "roomId:seq" -> message (null while fetching or unknown)
    this.loadingOlder = new Set();
    this.activeRoomId = null;
    this.userFetches = new Map();
    this.typing = new Typing({ me, realtime, changed: (roomId) => this.changed("typing", { roomId }) });
    this.outbox = new Outbox({
      realtime,
      delivered: (message) => this.onMessage(message, true),
      changed: (roomId) => this.changed("timeline", { roomId }),
    });
    listen(this);
  }

  changed(kind, detail = {}) {
    this.dispatchEvent(new CustomEvent("change", { detail: { kind, ...detail } }));
  }

  // ---- loading ------------------------------------------------------------------------------

  async loadRooms() {
    const rooms = await api.rooms();
    const seen = new Set();
    for (const room of rooms) {
      seen.add(room.id);
      this.rooms.set(room.id, room);
      if (room.peer) this.rememberUser(room.peer);
    }
    for (const id of [...this.rooms.keys()]) if (!seen.has(id)) this.forgetRoom(id);
    this.changed("rooms");
  }

  /** Rooms by latest activity, split into group rooms and direct messages. */
  sortedRooms() {
    const activity = (room) => Date.parse(room.lastMessage?.createdAt ?? room.createdAt);
    const rooms = [...this.rooms.values()].sort((a, b) => activity(b) - activity(a) || b.id - a.id);
    return {
      groups: rooms.filter((room) => room.kind !== "direct"),
      directs: rooms.filter((room) => room.kind === "direct"),
    };
  }

  totalUnread() {
    let total = 0;
    for (const room of this.rooms.values()) total += room.unread ?? 0;
    return total;
  }

  timeline(roomId) {
    if (!this.timelines.has(roomId)) this.timelines.set(roomId, new Timeline());
    return this.timelines.get(roomId);
  }

  /** Loads the next older page of a room's history; resolves with the number of new messages. */
  async loadOlder(roomId) {
    const timeline = this.timeline(roomId);
    if (timeline.reachedStart || this.loadingOlder.has(roomId)) return 0;
    this.loadingOlder.add(roomId);
    this.changed("loading", { roomId });
    try {
      const before = timeline.size;
      const cursor = timeline.size === 0 ? null : timeline.oldestCursor ?? timeline.oldestSeq();
      const page = await api.olderMessages(roomId, cursor);
      timeline.addOlderPage(page);
      for (const message of page.items) this.ensureUser(message.senderId);
      return timeline.size - before;
    } finally {
      this.loadingOlder.delete(roomId);
      this.changed("timeline", { roomId, older: true });
    }
  }

  async loadMembers(roomId) {
    const members = await api.members(roomId);
    for (const member of members) this.rememberUser(member.user);
    this.members.set(roomId, members);
    this.changed("members", { roomId });
    return members;
  }

  rememberUser(user) {
    const known = this.users.get(user.id);
    if (known) Object.assign(known, user);
    else this.users.set(user.id, { ...user });
    if (user.id === this.me.id) Object.assign(this.me, user);
  }

  /** Fetches a user we have not seen yet (an author from old history, say), once. */
  ensureUser(userId) {
    if (this.users.has(userId) || this.userFetches.has(userId)) return;
    const fetching = api.user(userId).then((user) => {
      this.rememberUser(user);
      this.changed("users", { userId });
    }).catch(() => {}).finally(() => this.userFetches.delete(userId));
    this.userFetches.set(userId, fetching);
  }

  userName(userId) {
    return this.users.get(userId)?.displayName ?? `#${userId}`;
  }

  status(userId) {
    return this.users.get(userId)?.status ?? "offline";
  }

  // ---- realtime -----------------------------------------------------------------------------

  /**
   * A message from the server (live, an edit or delete, or the ack of one the user sent):
   * stored once, the outbox entry settled, the room's preview and unread count updated.
   */
  onMessage(message, isNew) {
    const room = this.rooms.get(message.roomId);
    const timeline = this.timelines.get(message.roomId);
    this.ensureUser(message.senderId);
    if (timeline) {
      const newest = timeline.newestSeq();
      // A gap (events lost while a page was loading, say): fetch what is missing.
      if (isNew && newest > 0 && message.seq > newest + 1) catchUpRoom(this, message.roomId).catch(() => {});
      timeline.upsert(message);
    }
    if (message.clientId && message.senderId === this.me.id) this.outbox.settle(message.roomId, message.clientId);
    if (room) {
      const isLatest = !room.lastMessage || message.seq >= room.lastMessage.seq;
      if (isLatest) room.lastMessage = message;
      if (message.seq > (room.lastSeq ?? 0)) {
        room.lastSeq = message.seq;
        if (isNew && message.senderId !== this.me.id && message.seq > (room.lastReadSeq ?? 0)) {
          room.unread = Math.min(1000, (room.unread ?? 0) + 1);
          this.maybeNotify(room, message);
        }
      }
      if (isNew && message.senderId !== this.me.id) this.typing.stop(message.roomId, message.senderId);
      this.changed("rooms");
    }
    this.changed("timeline", { roomId: message.roomId, isNew, message });
  }

  maybeNotify(room, message) {
    if (message.deleted) return;
    const direct = room.kind === "direct";
    if (direct || mentions(message.content, this.me.username)) {
      this.changed("notify", { roomId: room.id, message, direct });
    }
  }

  async refreshRoom(roomId) {
    try {
      const room = await api.room(roomId);
      const known = this.rooms.get(roomId);
      if (known) Object.assign(known, room);
      this.changed("rooms");
    } catch {
      // The next catch-up corrects it.
    }
  }

  forgetRoom(roomId) {
    this.rooms.delete(roomId);
    this.timelines.delete(roomId);
    this.members.delete(roomId);
    this.typing.forget(roomId);
    this.outbox.forget(roomId);
    if (this.activeRoomId === roomId) this.changed("room-gone", { roomId });
  }

  /** After a fresh (not recovered) connection: see chat/sync.js. */
  catchUp() {
    return catchUp(this);
  }

  // ---- actions ------------------------------------------------------------------------------

  /** Unsent messages of a room, in the order they were written. */
  pending(roomId) {
    return this.outbox.entries(roomId);
  }

  /** Shows the message at once and sends it now, or as soon as the connection is back. */
  send(roomId, content, replyTo = null) {
    const entry = this.outbox.add(roomId, this.me.id, content, replyTo);
    this.changed("timeline", { roomId, isNew: true, own: true });
    this.typingStopped(roomId);
    this.outbox.transmit(entry);
    return entry;
  }

  retry(roomId, clientId) {
    this.outbox.retry(roomId, clientId);
  }

  discard(roomId, clientId) {
    this.outbox.settle(roomId, clientId);
    this.changed("timeline", { roomId });
  }

  async edit(roomId, seq, content) {
    const ack = await this.realtime.emit("message:edit", { roomId, seq, content });
    if (!ack?.ok) throw Object.assign(new Error(ack?.error?.message ?? "edit failed"), ack?.error ?? {});
    this.onMessage(ack.message, false);
    return ack.message;
  }

  async remove(roomId, seq) {
    const ack = await this.realtime.emit("message:delete", { roomId, seq });
    if (!ack?.ok) throw Object.assign(new Error(ack?.error?.message ?? "delete failed"), ack?.error ?? {});
    this.onMessage(ack.message, false);
    return ack.message;
  }

  /** Marks a room read up to `seq` (never backwards), here and on the user's other devices. */
  markRead(roomId, seq) {
    const room = this.rooms.get(roomId);
    if (!room || !seq || seq <= (room.lastReadSeq ?? 0)) return;
    room.lastReadSeq = seq;
    if (seq >= (room.lastSeq ?? 0)) room.unread = 0;
    this.changed("rooms");
    if (this.realtime.state === "connected") this.realtime.emit("room:read", { roomId, seq }).catch(() => {});
  }

  /** Who is typing in a room right now (user ids, not me). */
  typists(roomId) {
    return this.typing.typists(roomId);
  }

  /** The composer has text: tell the room, at most every few seconds. */
  typingActive(roomId) {
    this.typing.active(roomId);
  }

  typingStopped(roomId) {
    this.typing.stopped(roomId);
  }

  setPresence(status) {
    if (this.me.status === status) return;
    this.me.status = status;
    this.changed("presence", { userId: this.me.id });
    if (this.realtime.state === "connected") this.realtime.emit("presence:set", { status }).catch(() => {});
  }

  async createRoom(body) {
    const room = await api.createRoom(body);
    this.rooms.set(room.id, room);
    this.changed("rooms");
    return room;
  }

  async joinRoom(roomId) {
    const room = await api.joinRoom(roomId);
    this.rooms.set(room.id, room);
    this.changed("rooms");
    return room;
  }

  async leaveRoom(roomId) {
    await api.leaveRoom(roomId);
    this.forgetRoom(roomId);
    this.changed("rooms");
  }

  async openDm(userId) {
    const room = await api.openDm(userId);
    this.rooms.set(room.id, { ...this.rooms.get(room.id), ...room });
    if (room.peer) this.rememberUser(room.peer);
    this.changed("rooms");
    return room;
  }

  async addMember(roomId, userId) {
    await api.addMember(roomId, userId);
    await this.loadMembers(roomId);
  }

  // ---- reply quotes and requests without state of their own ---------------------------------

  /**
   * The message a reply quotes: from the timeline when loaded, else fetched once (a "quote"
   * change follows when it arrives). Null while unknown.
   */
  quoted(roomId, seq) {
    const key = `${roomId}:${seq}`;
    const loaded = this.timeline(roomId).get(seq) ?? this.quotes.get(key);
    if (!loaded && !this.quotes.has(key)) {
      this.quotes.set(key, null);
      api.message(roomId, seq).then((message) => {
        this.quotes.set(key, message);
        this.changed("quote", { roomId });
      }, () => {});
    }
    return loaded ?? null;
  }

  /** A room as the server describes it to this user (a public room they have not joined, say). */
  lookupRoom(roomId) {
    return api.room(roomId);
  }

  publicRooms() {
    return api.publicRooms();
  }

  searchUsers(query, limit = 20) {
    return api.users(query, limit);
  }

  /** A one-time invite (admins): resolves `{ token }`. */
  createInvite() {
    return api.createInvite();
  }

  /** Ends the session on the server (the screens close the connection and go to sign-in). */
  async signOut() {
    await api.logout();
  }
}
