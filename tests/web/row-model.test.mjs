// The message log's row models and cache keys (assets/js/ui/room/row-model.js): a row is
// redrawn exactly when its key changes, so every change of something drawn must change the
// key, and nothing else may. Imported exactly as shipped to the browser.
import { test } from "node:test";
import assert from "node:assert/strict";

import { rowKey, rowModel } from "../../assets/js/ui/room/row-model.js";
import { layout } from "../../assets/js/timeline.js";
import { sameDay } from "../../assets/js/format.js";
import { setLocale } from "../../assets/js/i18n.js";

setLocale("en");

const ME = { id: 1, username: "alice", displayName: "Alice" };
const NOW = new Date(2026, 10, 23, 15, 0).getTime();
const at = (minutes) => new Date(NOW - 60 * 60_000 + minutes * 60_000).toISOString();
const msg = (seq, senderId, minutes, extra = {}) => ({
  roomId: 1, seq, senderId, content: `message ${seq}`, createdAt: at(minutes), editedAt: null,
  deleted: false, replyTo: null, attachments: [], clientId: null, ...extra,
});
const NAMES = { 1: "Alice", 2: "Bob", 3: "Cy" };
const members = (bobRead = 0, cyRead = 0) => [
  { user: { id: 1, displayName: "Alice" }, lastReadSeq: 99 },
  { user: { id: 2, displayName: "Bob" }, lastReadSeq: bobRead },
  { user: { id: 3, displayName: "Cy" }, lastReadSeq: cyRead },
];
const context = (changes = {}) => ({
  me: ME,
  userName: (id) => NAMES[id] ?? `#${id}`,
  quote: () => null,
  members: members(),
  lastMineSeq: null,
  editingSeq: null,
  canModerate: false,
  now: NOW,
  locale: "en",
  ...changes,
});
/** The message row for `message`, laid out after `before` (so grouping works as on screen). */
const rowOf = (message, { before = [], pending = [], dividerAfterSeq = null } = {}) => {
  const rows = layout([...before, ...(message.seq !== undefined ? [message] : [])], { pending, dividerAfterSeq, sameDay });
  return rows.filter((r) => r.kind === "message").at(-1);
};
const keyOf = (message, ctx = context(), options) => rowKey(rowModel(rowOf(message, options), ctx));

test("the same row and context give the same key, however often it is computed", () => {
  const a = keyOf(msg(5, 2, 10), context());
  const b = keyOf(msg(5, 2, 10), context());
  assert.equal(a, b);
  assert.equal(typeof a, "string");
});

test("a model is plain data: every field of it is in the key", () => {
  const ctx = context({ quote: () => msg(3, 3, 0), members: members(9, 9), lastMineSeq: 9, canModerate: true });
  const rows = layout([
    msg(3, 3, 0), msg(8, 2, 1, { content: "hi @alice, see https://example.com", editedAt: at(2) }),
    msg(9, 1, 3, { replyTo: 3 }), msg(10, 2, 4, { deleted: true, content: "" }),
  ], {
    dividerAfterSeq: 8, sameDay,
    pending: [{ clientId: "c1", senderId: 1, content: "sending", createdAt: at(5), state: "failed", error: { code: "timeout" } }],
  });
  assert.deepEqual(rows.map((r) => r.kind), ["day", "message", "message", "divider", "message", "message", "message"]);
  for (const row of rows) {
    const model = rowModel(row, ctx);
    assert.deepEqual(JSON.parse(rowKey(model)), model, `${row.key} survives JSON unchanged (no undefined, functions or Maps)`);
  }
});

test("the model has what a message row draws", () => {
  const ctx = context({ quote: () => msg(3, 3, 0, { content: "the original" }), members: members(9, 9), lastMineSeq: 9 });
  const model = rowModel(rowOf(msg(9, 1, 3, { replyTo: 3, content: "hey @Alice and @bob", editedAt: at(4) })), ctx);
  assert.equal(model.author, "Alice");
  assert.equal(model.initials, "AL");
  assert.equal(model.mine, true);
  assert.equal(model.id, "m-9");
  assert.deepEqual(model.reply, { seq: 3, author: "Cy", text: "the original" });
  assert.equal(model.seen, "Seen by Bob, Cy");
  assert.equal(model.edited.at, at(4));
  assert.deepEqual(model.body.filter((token) => token.kind === "mention").map((token) => [token.text, token.self]),
    [["@Alice", true], ["@bob", false]]);
  assert.deepEqual(model.actions, { edit: true, delete: true });
  assert.equal(model.send, null);
});

test("every change of something drawn changes the key", () => {
  const base = msg(5, 2, 10);
  const baseKey = keyOf(base);
  const changed = {
    "an edit": keyOf({ ...base, content: "message 5, fixed", editedAt: at(12) }),
    "an edit of the same text": keyOf({ ...base, editedAt: at(12) }),
    "a delete": keyOf({ ...base, content: "", deleted: true }),
    "the author's new display name": keyOf(base, context({ userName: (id) => (id === 2 ? "Robert" : NAMES[id]) })),
    "being edited in the composer": keyOf(base, context({ editingSeq: 5 })),
    "moderation rights (a Delete button)": keyOf(base, context({ canModerate: true })),
    "the language": keyOf(base, context({ locale: "zh-CN" })),
  };
  for (const [what, key] of Object.entries(changed)) assert.notEqual(key, baseKey, what);
  // A mention is highlighted when it names me.
  const mention = { ...base, content: "hi @al" };
  assert.notEqual(keyOf(mention), keyOf(mention, context({ me: { ...ME, username: "al" } })), "a mention of me");
});

test("grouping and the divider change the key of the message below", () => {
  const previous = msg(4, 2, 9);
  const grouped = rowModel(rowOf(msg(5, 2, 10), { before: [previous] }), context());
  assert.equal(grouped.continued, true);
  const alone = rowModel(rowOf(msg(5, 2, 10), { before: [msg(4, 3, 9)] }), context());
  assert.equal(alone.continued, false);
  assert.notEqual(rowKey(grouped), rowKey(alone), "grouping");

  const divided = rowModel(rowOf(msg(5, 2, 10), { before: [previous], dividerAfterSeq: 4 }), context());
  assert.equal(divided.continued, false, "the divider starts a new group");
  assert.notEqual(rowKey(grouped), rowKey(divided), "divider");
});

test("the read receipt under my latest message changes the key when a reader is added or it moves", () => {
  const mine = msg(9, 1, 10);
  const nobody = keyOf(mine, context({ lastMineSeq: 9 }));
  const bob = keyOf(mine, context({ lastMineSeq: 9, members: members(9, 0) }));
  const both = keyOf(mine, context({ lastMineSeq: 9, members: members(9, 12) }));
  assert.notEqual(nobody, bob);
  assert.notEqual(bob, both);
  // A newer message of mine takes the receipt away from this one.
  assert.notEqual(bob, keyOf(mine, context({ lastMineSeq: 11, members: members(9, 0) })));
  // Someone reading further, when they had already seen it, changes nothing drawn.
  assert.equal(bob, keyOf(mine, context({ lastMineSeq: 9, members: members(11, 0) })));
});

test("pending, failed and sent are three different rows", () => {
  const entry = { clientId: "c1", roomId: 1, senderId: 1, content: "hello", createdAt: at(10), state: "pending", error: null };
  const pending = rowModel(rowOf({ ...entry }, { pending: [entry] }), context());
  const failedEntry = { ...entry, state: "failed", error: { code: "timeout", message: "no answer" } };
  const failed = rowModel(rowOf(failedEntry, { pending: [failedEntry] }), context());
  const sent = rowModel(rowOf(msg(7, 1, 10, { content: "hello", clientId: "c1" })), context());
  assert.equal(pending.id, "p-c1");
  assert.equal(pending.actions, null, "no actions before the server has it");
  assert.equal(sent.id, "m-7");
  assert.equal(new Set([rowKey(pending), rowKey(failed), rowKey(sent)]).size, 3);
  const otherError = { ...failedEntry, error: { code: "forbidden", message: "not a member" } };
  assert.notEqual(rowKey(failed), rowKey(rowModel(rowOf(otherError, { pending: [otherError] }), context())), "a different error");
});

test("the quoted message of a reply: arriving, edited, deleted, or its author renamed changes the key", () => {
  const reply = msg(9, 2, 10, { replyTo: 3 });
  const original = msg(3, 3, 0, { content: "the plan" });
  const unknown = keyOf(reply, context());
  const known = keyOf(reply, context({ quote: () => original }));
  const edited = keyOf(reply, context({ quote: () => ({ ...original, content: "the new plan", editedAt: at(1) }) }));
  const deleted = keyOf(reply, context({ quote: () => ({ ...original, content: "", deleted: true }) }));
  const renamed = keyOf(reply, context({ quote: () => original, userName: (id) => (id === 3 ? "Cyrus" : NAMES[id]) }));
  assert.equal(new Set([unknown, known, edited, deleted, renamed]).size, 5);
});

test("day separators and the divider: the label is in the key, the clock within a day is not", () => {
  const [day] = layout([msg(1, 2, 0)], { sameDay });
  const today = rowModel(day, context());
  assert.equal(today.label, "Today");
  assert.equal(rowKey(today), rowKey(rowModel(day, context({ now: NOW + 60 * 60_000 }))));
  const tomorrow = rowModel(day, context({ now: NOW + 24 * 60 * 60_000 }));
  assert.equal(tomorrow.label, "Yesterday");
  assert.notEqual(rowKey(today), rowKey(tomorrow));
  const divider = { kind: "divider", key: "divider" };
  assert.equal(rowKey(rowModel(divider, context())), rowKey(rowModel(divider, context({ members: members(5, 5), now: NOW + 1 }))));
  assert.notEqual(rowKey(rowModel(divider, context())), rowKey(rowModel(divider, context({ locale: "zh-CN" }))));
});

test("context that a row does not draw leaves its key alone", () => {
  const theirs = msg(5, 2, 10);
  const mine = msg(6, 1, 11);
  const other = (id) => (id === 3 ? "Cyrus" : NAMES[id]);
  // [what, message, context before, context after]
  const cases = [
    ["another user's name", theirs, context(), context({ userName: other })],
    ["the clock moving on (relative times refresh in place)", theirs, context(), context({ now: NOW + 10 * 60_000 })],
    ["read markers, the receipt being on another message", theirs, context({ lastMineSeq: 6 }), context({ lastMineSeq: 6, members: members(9, 9) })],
    ["read markers, no receipt on this message", mine, context({ lastMineSeq: 8 }), context({ lastMineSeq: 8, members: members(9, 9) })],
    ["my latest message moving between two others", mine, context({ lastMineSeq: 8 }), context({ lastMineSeq: 9 })],
    ["editing another message", theirs, context(), context({ editingSeq: 6 })],
    ["moderation rights on my own message", mine, context(), context({ canModerate: true })],
    ["my username, in a message that mentions nobody", theirs, context(), context({ me: { ...ME, username: "alicia" } })],
    ["a quote lookup, for a message that is no reply", theirs, context(), context({ quote: () => msg(3, 3, 0) })],
    ["anything else in the context (typing, the connection)", theirs, context(), context({ typing: [2], connection: "offline" })],
  ];
  for (const [what, message, before, after] of cases) assert.equal(keyOf(message, after), keyOf(message, before), what);
});
