// The shape of a room's history on screen, as pure data: which messages exist (merged from
// pages, live events and replays without duplicates or gaps), where the day separators and
// the "new messages" divider go, and which messages continue the one above.
//
// Must not: touch the DOM or the network.

/** Consecutive messages from one author within this window are drawn as one group. */
export const GROUP_WINDOW_MS = 5 * 60_000;

/**
 * One room's messages keyed by seq, plus what is known about the ends of the history.
 * Replays and page overlaps are harmless: a seq is stored once, newest version wins.
 */
export class Timeline {
  constructor() {
    this.bySeq = new Map();
    this.reachedStart = false;  // seq 1 (or the room's first message) is loaded
    this.oldestCursor = null;   // the cursor for the next older page, null when unknown
  }

  get size() {
    return this.bySeq.size;
  }

  /** Adds or replaces a message; an older version (an edit replayed late) never wins. */
  upsert(message) {
    const existing = this.bySeq.get(message.seq);
    if (existing && version(existing) > version(message)) return false;
    this.bySeq.set(message.seq, message);
    return true;
  }

  /** Adds an older page (newest first, as the API returns it). */
  addOlderPage(page) {
    for (const message of page.items) this.upsert(message);
    this.oldestCursor = page.nextCursor;
    if (page.nextCursor === null) this.reachedStart = true;
  }

  /** Messages sorted by seq. */
  sorted() {
    return [...this.bySeq.values()].sort((a, b) => a.seq - b.seq);
  }

  newestSeq() {
    let newest = 0;
    for (const seq of this.bySeq.keys()) if (seq > newest) newest = seq;
    return newest;
  }

  oldestSeq() {
    let oldest = Infinity;
    for (const seq of this.bySeq.keys()) if (seq < oldest) oldest = seq;
    return oldest === Infinity ? null : oldest;
  }

  get(seq) {
    return this.bySeq.get(seq);
  }
}

/** Edits and deletes only move forward; this orders versions of one message. */
function version(message) {
  if (message.deleted) return Number.MAX_SAFE_INTEGER;
  return message.editedAt ? Date.parse(message.editedAt) : 0;
}

/**
 * The rows to draw: day separators, the unread divider (after `dividerAfterSeq`, when that is
 * not the last message), and messages with `continued` set when they belong to the group above.
 * `pending` are the user's own unsent messages; they go last.
 */
export function layout(messages, { dividerAfterSeq = null, pending = [], sameDay } = {}) {
  const rows = [];
  let previous = null;
  let dividerPlaced = false;
  const all = [...messages, ...pending];
  for (const message of all) {
    const at = Date.parse(message.createdAt);
    const newDay = !previous || !sameDay(Date.parse(previous.createdAt), at);
    if (newDay) rows.push({ kind: "day", key: `day-${message.seq ?? message.clientId}`, at });
    let divider = false;
    if (!dividerPlaced && dividerAfterSeq !== null && message.seq !== undefined
        && message.seq > dividerAfterSeq && previous && previous.seq <= dividerAfterSeq) {
      rows.push({ kind: "divider", key: "divider" });
      dividerPlaced = true;
      divider = true;
    }
    const continued = Boolean(previous) && !newDay && !divider
      && previous.senderId === message.senderId
      && !previous.deleted && !message.deleted && !message.replyTo
      && at - Date.parse(previous.createdAt) < GROUP_WINDOW_MS;
    rows.push({ kind: "message", key: message.seq !== undefined ? `m-${message.seq}` : `p-${message.clientId}`, message, continued });
    previous = message;
  }
  return rows;
}

/** Who has read up to `seq` (not counting `me`), from members' read markers. */
export function seenBy(members, seq, me) {
  return members.filter((member) => member.user.id !== me && (member.lastReadSeq ?? 0) >= seq);
}

/** A new client id for idempotent sends: a random UUID. */
export function newClientId() {
  if (globalThis.crypto?.randomUUID) return globalThis.crypto.randomUUID();
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}
