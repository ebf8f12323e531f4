// The web client's pure modules (no DOM): timeline merging and layout, text tokenizing,
// languages, date labels. They run in Node exactly as they ship to the browser.
import { test } from "node:test";
import assert from "node:assert/strict";

import { Timeline, layout, seenBy, GROUP_WINDOW_MS } from "../../assets/js/timeline.js";
import { tokenize, mentions } from "../../assets/js/dom.js";
import { CATALOGS, pickLocale, setLocale, t, errorText } from "../../assets/js/i18n.js";
import { dayLabel, relativeTime, sameDay } from "../../assets/js/format.js";

const at = (minutes) => new Date(Date.UTC(2026, 10, 23, 12, 0) + minutes * 60_000).toISOString();
const msg = (seq, senderId, minutes, extra = {}) => ({
  roomId: 1, seq, senderId, content: `m${seq}`, createdAt: at(minutes), editedAt: null,
  deleted: false, replyTo: null, attachments: [], clientId: null, ...extra,
});

test("a timeline stores each seq once, whatever order pages, live events and replays arrive in", () => {
  const timeline = new Timeline();
  timeline.upsert(msg(101, 1, 0));                     // live event before the first page
  timeline.addOlderPage({ items: [msg(101, 1, 0), msg(100, 2, 0), msg(99, 2, 0)], nextCursor: 99 });
  timeline.upsert(msg(100, 2, 0));                     // a replay after reconnect
  timeline.addOlderPage({ items: [msg(98, 1, 0)], nextCursor: null });
  assert.deepEqual(timeline.sorted().map((m) => m.seq), [98, 99, 100, 101]);
  assert.equal(timeline.reachedStart, true);
  assert.equal(timeline.newestSeq(), 101);
  assert.equal(timeline.oldestSeq(), 98);
});

test("an edit or delete is never undone by a late replay of the older version", () => {
  const timeline = new Timeline();
  timeline.upsert(msg(5, 1, 0, { content: "new", editedAt: at(3) }));
  assert.equal(timeline.upsert(msg(5, 1, 0, { content: "old" })), false);
  assert.equal(timeline.get(5).content, "new");
  timeline.upsert(msg(5, 1, 0, { content: "", deleted: true }));
  timeline.upsert(msg(5, 1, 0, { content: "newer", editedAt: at(9) }));
  assert.equal(timeline.get(5).deleted, true);
});

test("layout groups an author's consecutive messages and breaks groups on a new day, the divider, replies and time gaps", () => {
  const messages = [
    msg(1, 1, 0), msg(2, 1, 1), msg(3, 2, 2), msg(4, 2, 2 + GROUP_WINDOW_MS / 60_000 + 1),
    msg(5, 2, 20, { replyTo: 3 }), msg(6, 2, 21), msg(7, 2, 24 * 60),
  ];
  const rows = layout(messages, { dividerAfterSeq: 5, sameDay });
  const shape = rows.map((r) => (r.kind === "message" ? `${r.message.seq}${r.continued ? "+" : ""}` : r.kind));
  assert.deepEqual(shape, ["day", "1", "2+", "3", "4", "5", "divider", "6", "day", "7"]);
});

test("layout puts no divider when everything is read, and pending messages last", () => {
  const pending = [{ clientId: "c1", senderId: 1, content: "hi", createdAt: at(2), state: "pending" }];
  const rows = layout([msg(1, 1, 0), msg(2, 1, 1)], { dividerAfterSeq: 2, pending, sameDay });
  assert.deepEqual(rows.map((r) => r.key), ["day-1", "m-1", "m-2", "p-c1"]);
  assert.equal(rows.at(-1).continued, true);
});

test("seenBy lists the other members whose read marker reached the message", () => {
  const members = [
    { user: { id: 1, displayName: "me" }, lastReadSeq: 9 },
    { user: { id: 2, displayName: "Bo" }, lastReadSeq: 9 },
    { user: { id: 3, displayName: "Cy" }, lastReadSeq: 8 },
  ];
  assert.deepEqual(seenBy(members, 9, 1).map((m) => m.user.displayName), ["Bo"]);
});

test("tokenize finds http(s) links and mentions and leaves everything else as plain text", () => {
  assert.deepEqual(tokenize("see https://example.com/a_(b), then @alice."), [
    { kind: "text", text: "see " },
    { kind: "link", text: "https://example.com/a_(b)", href: "https://example.com/a_(b)" },
    { kind: "text", text: ", then " },
    { kind: "mention", text: "@alice", username: "alice" },
    { kind: "text", text: "." },
  ]);
  const hostile = '<img src=x onerror="alert(1)"> javascript:alert(1) mail@example.com';
  assert.deepEqual(tokenize(hostile), [{ kind: "text", text: hostile }]);
  assert.equal(tokenize("(https://x.org/path)")[1].text, "https://x.org/path");
  assert.equal(mentions("hey @Alice!", "alice"), true);
  assert.equal(mentions("mail alice@example.com", "example.com"), false);
});

test("the language follows the browser: Simplified Chinese for zh/zh-CN/zh-Hans, else English", () => {
  assert.equal(pickLocale(["zh-CN", "en"]), "zh-CN");
  assert.equal(pickLocale(["zh-Hans-CN"]), "zh-CN");
  assert.equal(pickLocale(["fr-FR", "zh"]), "zh-CN");
  assert.equal(pickLocale(["en-GB", "zh-CN"]), "en");
  assert.equal(pickLocale(["de"]), "en");
  assert.equal(pickLocale([]), "en");
});

test("every English string has a Chinese translation and the same placeholders", () => {
  const placeholders = (text) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort().join(",");
  const missing = [];
  for (const [key, english] of Object.entries(CATALOGS.en)) {
    const chinese = CATALOGS["zh-CN"][key];
    if (key === "app.name" || key.endsWith(".one")) continue; // Chinese has no singular forms // the same in both
    if (chinese === undefined) missing.push(key);
    else assert.equal(placeholders(chinese), placeholders(english), key);
  }
  assert.deepEqual(missing, []);
  for (const key of Object.keys(CATALOGS["zh-CN"])) assert.ok(key in CATALOGS.en, `${key} has no English text`);
});

test("t fills placeholders and errorText prefers our translation of a server error code", () => {
  setLocale("zh-CN");
  assert.equal(t("typing.one", { a: "小明" }), "小明 正在输入…");
  assert.equal(errorText({ code: "invalid_credentials", message: "wrong username or password" }), "用户名或密码错误。");
  assert.equal(errorText({ code: "some_new_code", message: "server words" }), "server words");
  setLocale("en");
  assert.equal(t("typing.many", { count: 3 }), "3 people are typing…");
  assert.equal(t("room.membersCount", { count: 1 }), "1 member");
  assert.equal(t("room.membersCount", { count: 2 }), "2 members");
});

test("date labels: just now, minutes ago, Today, Yesterday, then a date", () => {
  setLocale("en");
  const now = new Date(2026, 10, 23, 15, 0).getTime();
  assert.equal(relativeTime(new Date(now - 10_000), now, "en"), "just now");
  assert.match(relativeTime(new Date(now - 5 * 60_000), now, "en"), /5 min/);
  assert.equal(dayLabel(new Date(2026, 10, 23, 1, 0), now, "en"), "Today");
  assert.equal(dayLabel(new Date(2026, 10, 22, 23, 59), now, "en"), "Yesterday");
  assert.match(dayLabel(new Date(2026, 10, 2, 9, 0), now, "en"), /November 2/);
  assert.match(dayLabel(new Date(2025, 0, 2, 9, 0), now, "en"), /2025/);
});

test("every text key the client asks for exists in the English catalog", async () => {
  const { readdir, readFile } = await import("node:fs/promises");
  const root = new URL("../../assets/js/", import.meta.url);
  const files = [];
  for (const entry of await readdir(root, { recursive: true })) if (entry.endsWith(".js")) files.push(entry);
  const wanted = new Set();
  for (const file of files) {
    const source = await readFile(new URL(file, root), "utf8");
    for (const match of source.matchAll(/\bt\(\s*"([\w.]+)"/g)) wanted.add(match[1]);
    // Keys built from a template: auth.${mode}.title and friends, status.${status}.
    for (const match of source.matchAll(/\bt\(\s*`([\w.]+)\$\{/g)) wanted.add(`${match[1]}*`);
  }
  const keys = Object.keys(CATALOGS.en);
  const missing = [...wanted].filter((key) => (key.endsWith("*")
    ? !keys.some((k) => k.startsWith(key.slice(0, -1)))
    : !(key in CATALOGS.en)));
  assert.deepEqual(missing, []);
  for (const mode of ["setup", "login", "register", "invite"]) {
    for (const part of ["title", "lead", "submit"]) assert.ok(`auth.${mode}.${part}` in CATALOGS.en, `auth.${mode}.${part}`);
  }
  for (const status of ["online", "away", "offline"]) assert.ok(`status.${status}` in CATALOGS.en);
});
