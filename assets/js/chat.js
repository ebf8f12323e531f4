// The signed-in user's chat state and everything that keeps it true: rooms with unread counts,
// each room's timeline, members and read markers, presence, typing, and the outbox of messages
// not yet acknowledged. It listens to the realtime connection, catches up after reconnects, and
// tells the screens what changed through "change" events ({ kind, roomId?, userId? }).
//
// Must not: touch the DOM. Screens read this state and call its methods.

import { api } from "./api.js";
import { mentions } from "./dom.js";
import { Timeline, newClientId } from "./timeline.js";

const TYPING_SHOWN_MS = 6_000;      // the server stops a typist after 5 s without a refresh
const TYPING_REFRESH_MS = 3_000;
const SEND_TIMEOUT_MS = 15_000;
const SYNC_MAX_ROOMS = 200;
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
    this.typing = new Map();         // roomId -> Map(userId -> expiresAt)
    this.outbox = new Map();         // roomId -> [{ clientId, content, replyTo, createdAt, state, error }]
    this.loadingOlder = new Set();
    this.activeRoomId = null;
    this.ownTyping = { roomId: null, sentAt: 0 };
    this.userFetches = new Map();
    this.listen();
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

  listen() {
    const rt = this.realtime;
    rt.on("state", (state) => this.changed("connection", { state }));
    rt.on("connect", ({ recovered }) => {
      if (!recovered) this.catchUp().catch((error) => console.warn("parley: catch-up failed", error));
      // A new connection starts online; tell the server again if this tab is away.
      if (this.me.status === "away") rt.emit("presence:set", { status: "away" }).catch(() => {});
      else this.me.status = "online";
      this.changed("presence", { userId: this.me.id });
      this.flushOutbox();
    });
    rt.on("connect_error", (error) => this.changed("connect_error", { error }));
    rt.on("message:new", (message) => this.onMessage(message, true));
    rt.on("message:update", (message) => this.onMessage(message, false));
    rt.on("message:delete", (message) => this.onMessage(message, false));
    rt.on("room:new", (room) => {
      this.rooms.set(room.id, room);
      if (room.peer) this.rememberUser(room.peer);
      this.changed("rooms");
    });
    rt.on("room:update", (room) => {
      const known = this.rooms.get(room.id);
      if (!known) return;
      for (const key of ["name", "topic", "visibility", "memberCount"]) {
        if (key in room && !(key === "name" && known.kind === "direct")) known[key] = room[key];
      }
      this.changed("rooms");
      this.changed("room", { roomId: room.id });
    });
    rt.on("room:member", ({ roomId, userId, joined }) => this.onMember(roomId, userId, joined));
    rt.on("room:read", ({ roomId, userId, seq }) => this.onRead(roomId, userId, seq));
    rt.on("typing", ({ roomId, userId, typing }) => this.onTyping(roomId, userId, typing));
    rt.on("presence", ({ userId, status }) => {
      const user = this.users.get(userId);
      if (user) user.status = status;
      this.changed("presence", { userId });
    });
  }

  onMessage(message, isNew) {
    const room = this.rooms.get(message.roomId);
    const timeline = this.timelines.get(message.roomId);
    this.ensureUser(message.senderId);
    if (timeline) {
      const newest = timeline.newestSeq();
      // A gap (events lost while a page was loading, say): fetch what is missing.
      if (isNew && newest > 0 && message.seq > newest + 1) this.catchUpRoom(message.roomId).catch(() => {});
      timeline.upsert(message);
    }
    if (message.clientId && message.senderId === this.me.id) this.settle(message.roomId, message.clientId);
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
      if (isNew && message.senderId !== this.me.id) this.stopTyping(message.roomId, message.senderId);
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

  onMember(roomId, userId, joined) {
    const room = this.rooms.get(roomId);
    if (userId === this.me.id && !joined) {
      this.forgetRoom(roomId);
      this.changed("rooms");
      return;
    }
    if (room) room.memberCount = Math.max(0, (room.memberCount ?? 0) + (joined ? 1 : -1));
    if (this.members.has(roomId)) this.loadMembers(roomId).catch(() => {});
    this.changed("room", { roomId });
  }

  onRead(roomId, userId, seq) {
    const room = this.rooms.get(roomId);
    if (userId === this.me.id) {
      if (!room || seq <= (room.lastReadSeq ?? 0)) return;
      room.lastReadSeq = seq;
      if (seq >= (room.lastSeq ?? 0)) room.unread = 0;
      else this.refreshRoom(roomId);
      this.changed("rooms");
    } else {
      const member = this.members.get(roomId)?.find((m) => m.user.id === userId);
      if (member && seq > (member.lastReadSeq ?? 0)) {
        member.lastReadSeq = seq;
        this.changed("members", { roomId });
      }
    }
  }

  onTyping(roomId, userId, typing) {
    if (userId === this.me.id) return;
    if (!this.typing.has(roomId)) this.typing.set(roomId, new Map());
    const typists = this.typing.get(roomId);
    if (typing) {
      typists.set(userId, Date.now() + TYPING_SHOWN_MS);
      setTimeout(() => this.expireTyping(roomId), TYPING_SHOWN_MS + 50);
    } else {
      typists.delete(userId);
    }
    this.changed("typing", { roomId });
  }

  stopTyping(roomId, userId) {
    if (this.typing.get(roomId)?.delete(userId)) this.changed("typing", { roomId });
  }

  expireTyping(roomId) {
    const typists = this.typing.get(roomId);
    if (!typists) return;
    const now = Date.now();
    let changed = false;
    for (const [userId, until] of typists) {
      if (until <= now) {
        typists.delete(userId);
        changed = true;
      }
    }
    if (changed) this.changed("typing", { roomId });
  }

  /** Who is typing in a room right now (user ids, not me). */
  typists(roomId) {
    const now = Date.now();
    return [...(this.typing.get(roomId) ?? new Map())].filter(([, until]) => until > now).map(([id]) => id);
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
    this.typing.delete(roomId);
    this.outbox.delete(roomId);
    if (this.activeRoomId === roomId) this.changed("room-gone", { roomId });
  }

  /**
   * After a fresh (not recovered) connection: reload the room list and fetch, for every
   * loaded timeline, whatever arrived while we were away. Seqs make this free of duplicates.
   */
  async catchUp() {
    await this.loadRooms();
    const wanted = {};
    for (const [roomId, timeline] of this.timelines) {
      if (this.rooms.has(roomId) && timeline.size > 0) wanted[roomId] = timeline.newestSeq();
    }
    const ids = Object.keys(wanted).slice(0, SYNC_MAX_ROOMS);
    if (ids.length > 0) {
      const ack = await this.realtime.emit("sync", { rooms: Object.fromEntries(ids.map((id) => [id, wanted[id]])) });
      if (ack?.ok) {
        for (const [roomId, result] of Object.entries(ack.rooms)) {
          const timeline = this.timelines.get(Number(roomId));
          if (!timeline || !result.items) continue;
          for (const message of result.items) {
            timeline.upsert(message);
            this.ensureUser(message.senderId);
          }
          if (result.hasMore) await this.catchUpRoom(Number(roomId));
          this.changed("timeline", { roomId: Number(roomId) });
        }
      }
    }
    if (this.activeRoomId && this.rooms.has(this.activeRoomId)) await this.loadMembers(this.activeRoomId).catch(() => {});
    this.changed("rooms");
  }

  /** Pages forward from a timeline's newest message until the room's latest. */
  async catchUpRoom(roomId) {
    const timeline = this.timelines.get(roomId);
    if (!timeline) return;
    let after = timeline.newestSeq();
    for (let pages = 0; pages < 50; pages++) {
      const page = await api.newerMessages(roomId, after);
      for (const message of page.items) timeline.upsert(message);
      this.changed("timeline", { roomId });
      if (page.nextCursor === null || page.items.length === 0) break;
      after = page.nextCursor;
    }
  }

  // ---- actions ------------------------------------------------------------------------------

  /** Unsent messages of a room, in the order they were written. */
  pending(roomId) {
    return this.outbox.get(roomId) ?? [];
  }

  /** Shows the message at once and sends it now, or as soon as the connection is back. */
  send(roomId, content, replyTo = null) {
    const entry = {
      clientId: newClientId(), roomId, content, replyTo, senderId: this.me.id,
      createdAt: new Date().toISOString(), state: "pending", error: null, attempt: 0,
    };
    if (!this.outbox.has(roomId)) this.outbox.set(roomId, []);
    this.outbox.get(roomId).push(entry);
    this.changed("timeline", { roomId, isNew: true, own: true });
    this.typingStopped(roomId);
    this.transmit(entry);
    return entry;
  }

  transmit(entry) {
    if (this.realtime.state !== "connected") return; // flushOutbox() sends it on connect
    entry.attempt += 1;
    const attempt = entry.attempt;
    const payload = { roomId: entry.roomId, content: entry.content, clientId: entry.clientId };
    if (entry.replyTo) payload.replyTo = entry.replyTo;
    this.realtime.emit("message:send", payload, { timeoutMs: SEND_TIMEOUT_MS }).then((ack) => {
      if (entry.attempt !== attempt) return;
      if (ack?.ok) {
        this.onMessage(ack.message, true);
      } else {
        entry.state = "failed";
        entry.error = ack?.error ?? { code: "unknown", message: "the server refused the message" };
        this.changed("timeline", { roomId: entry.roomId });
      }
    }, () => {
      // No ack in time. If the connection dropped, the reconnect resends it (the clientId
      // makes a second delivery harmless); otherwise let the person decide.
      if (entry.attempt !== attempt || this.realtime.state !== "connected") return;
      entry.state = "failed";
      entry.error = { code: "timeout", message: "no answer from the server" };
      this.changed("timeline", { roomId: entry.roomId });
    });
  }

  flushOutbox() {
    for (const entries of this.outbox.values()) {
      for (const entry of entries) if (entry.state === "pending") this.transmit(entry);
    }
  }

  retry(roomId, clientId) {
    const entry = this.pending(roomId).find((e) => e.clientId === clientId);
    if (!entry) return;
    entry.state = "pending";
    entry.error = null;
    this.changed("timeline", { roomId });
    this.transmit(entry);
  }

  discard(roomId, clientId) {
    this.settle(roomId, clientId);
    this.changed("timeline", { roomId });
  }

  settle(roomId, clientId) {
    const entries = this.outbox.get(roomId);
    if (!entries) return;
    const index = entries.findIndex((e) => e.clientId === clientId);
    if (index >= 0) entries.splice(index, 1);
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

  /** The composer has text: tell the room, at most every few seconds. */
  typingActive(roomId) {
    const now = Date.now();
    if (this.ownTyping.roomId === roomId && now - this.ownTyping.sentAt < TYPING_REFRESH_MS) return;
    if (this.ownTyping.roomId && this.ownTyping.roomId !== roomId) this.typingStopped(this.ownTyping.roomId);
    this.ownTyping = { roomId, sentAt: now };
    if (this.realtime.state === "connected") this.realtime.emit("typing:start", { roomId }).catch(() => {});
  }

  typingStopped(roomId) {
    if (this.ownTyping.roomId !== roomId) return;
    this.ownTyping = { roomId: null, sentAt: 0 };
    if (this.realtime.state === "connected") this.realtime.emit("typing:stop", { roomId }).catch(() => {});
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
}
