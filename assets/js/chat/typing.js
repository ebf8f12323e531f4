// Typing indicators both ways: who else is typing in each room (shown for a few seconds after
// their last signal, dropped when they stop or their message arrives), and the user's own
// typing, sent at most every few seconds while the composer has text and stopped on send,
// blur or a room switch.
//
// Must not: touch the DOM or keep anything but typing state. Used by chat.js only.

const TYPING_SHOWN_MS = 6_000;      // the server stops a typist after 5 s without a refresh
const TYPING_REFRESH_MS = 3_000;

export class Typing {
  /** `changed(roomId)` reports that a room's typists changed. */
  constructor({ me, realtime, changed }) {
    this.me = me;
    this.realtime = realtime;
    this.changed = changed;
    this.rooms = new Map();          // roomId -> Map(userId -> expiresAt)
    this.own = { roomId: null, sentAt: 0 };
  }

  /** A `typing` event from the server. */
  received(roomId, userId, typing) {
    if (userId === this.me.id) return;
    if (!this.rooms.has(roomId)) this.rooms.set(roomId, new Map());
    const typists = this.rooms.get(roomId);
    if (typing) {
      typists.set(userId, Date.now() + TYPING_SHOWN_MS);
      setTimeout(() => this.expire(roomId), TYPING_SHOWN_MS + 50);
    } else {
      typists.delete(userId);
    }
    this.changed(roomId);
  }

  /** Someone's message arrived: they are no longer typing it. */
  stop(roomId, userId) {
    if (this.rooms.get(roomId)?.delete(userId)) this.changed(roomId);
  }

  expire(roomId) {
    const typists = this.rooms.get(roomId);
    if (!typists) return;
    const now = Date.now();
    let changed = false;
    for (const [userId, until] of typists) {
      if (until <= now) {
        typists.delete(userId);
        changed = true;
      }
    }
    if (changed) this.changed(roomId);
  }

  /** Who is typing in a room right now (user ids, not me). */
  typists(roomId) {
    const now = Date.now();
    return [...(this.rooms.get(roomId) ?? new Map())].filter(([, until]) => until > now).map(([id]) => id);
  }

  /** The composer has text: tell the room, at most every few seconds. */
  active(roomId) {
    const now = Date.now();
    if (this.own.roomId === roomId && now - this.own.sentAt < TYPING_REFRESH_MS) return;
    if (this.own.roomId && this.own.roomId !== roomId) this.stopped(this.own.roomId);
    this.own = { roomId, sentAt: now };
    if (this.realtime.state === "connected") this.realtime.emit("typing:start", { roomId }).catch(() => {});
  }

  stopped(roomId) {
    if (this.own.roomId !== roomId) return;
    this.own = { roomId: null, sentAt: 0 };
    if (this.realtime.state === "connected") this.realtime.emit("typing:stop", { roomId }).catch(() => {});
  }

  forget(roomId) {
    this.rooms.delete(roomId);
  }
}
