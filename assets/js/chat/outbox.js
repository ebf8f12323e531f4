// The outbox: the user's messages that the server has not acknowledged yet, per room, in the
// order they were written. Each is sent with a clientId so that sending it again (after a
// reconnect, or a Retry) can never post it twice; on an ack the caller gets the stored message,
// on a refusal or a timeout (while connected) the entry is marked failed for the person to
// retry or discard. Entries not sent while offline go out on the next connect (flush).
//
// Must not: touch the DOM; change anything but its own entries (the acknowledged message is
// handed to Chat through `delivered`). Used by chat.js only.

import { newClientId } from "../timeline.js";

const SEND_TIMEOUT_MS = 15_000;

export class Outbox {
  /**
   * `realtime` sends; `delivered(message)` receives the server's copy of an acknowledged
   * message; `changed(roomId)` reports that a room's entries changed state.
   */
  constructor({ realtime, delivered, changed }) {
    this.realtime = realtime;
    this.delivered = delivered;
    this.changed = changed;
    this.rooms = new Map();          // roomId -> [{ clientId, content, replyTo, createdAt, state, error }]
  }

  /** Unsent messages of a room, in the order they were written. */
  entries(roomId) {
    return this.rooms.get(roomId) ?? [];
  }

  /** Queues a new message (not yet sent: call transmit). */
  add(roomId, senderId, content, replyTo) {
    const entry = {
      clientId: newClientId(), roomId, content, replyTo, senderId,
      createdAt: new Date().toISOString(), state: "pending", error: null, attempt: 0,
    };
    if (!this.rooms.has(roomId)) this.rooms.set(roomId, []);
    this.rooms.get(roomId).push(entry);
    return entry;
  }

  /** Sends an entry now if connected; otherwise flush() sends it on connect. */
  transmit(entry) {
    if (this.realtime.state !== "connected") return;
    entry.attempt += 1;
    const attempt = entry.attempt;
    const payload = { roomId: entry.roomId, content: entry.content, clientId: entry.clientId };
    if (entry.replyTo) payload.replyTo = entry.replyTo;
    this.realtime.emit("message:send", payload, { timeoutMs: SEND_TIMEOUT_MS }).then((ack) => {
      if (entry.attempt !== attempt) return;
      if (ack?.ok) {
        this.delivered(ack.message);
      } else {
        entry.state = "failed";
        entry.error = ack?.error ?? { code: "unknown", message: "the server refused the message" };
        this.changed(entry.roomId);
      }
    }, () => {
      // No ack in time. If the connection dropped, the reconnect resends it (the clientId
      // makes a second delivery harmless); otherwise let the person decide.
      if (entry.attempt !== attempt || this.realtime.state !== "connected") return;
      entry.state = "failed";
      entry.error = { code: "timeout", message: "no answer from the server" };
      this.changed(entry.roomId);
    });
  }

  /** On connect: sends every entry still waiting (not the failed ones). */
  flush() {
    for (const entries of this.rooms.values()) {
      for (const entry of entries) if (entry.state === "pending") this.transmit(entry);
    }
  }

  retry(roomId, clientId) {
    const entry = this.entries(roomId).find((e) => e.clientId === clientId);
    if (!entry) return;
    entry.state = "pending";
    entry.error = null;
    this.changed(roomId);
    this.transmit(entry);
  }

  /** Removes an entry: the server has it (its message arrived) or the person discarded it. */
  settle(roomId, clientId) {
    const entries = this.rooms.get(roomId);
    if (!entries) return;
    const index = entries.findIndex((e) => e.clientId === clientId);
    if (index >= 0) entries.splice(index, 1);
  }

  forget(roomId) {
    this.rooms.delete(roomId);
  }
}
