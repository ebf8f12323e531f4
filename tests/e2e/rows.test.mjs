// The message log's row cache in the browser (ui/room/log.js with row-model.js): a row's element
// stays the same object through changes that do not touch what it shows, and is replaced when
// they do (an edit, a read receipt). Also the Chat calls the room view now makes instead of
// talking to the API itself: a reply quoting a message that is not loaded, and the preview of
// a public room the user has not joined.
import { test } from "node:test";
import assert from "node:assert/strict";

import { connect, emitAck } from "../realtime/helpers.mjs";
import { api, apiRegister, expectNoErrors, launchBrowser, newPage, startServer } from "./helpers.mjs";

let server;
let browser;
let alice;
let bob;
let page; // alice's

const post = (who, roomId, content, extra = {}) =>
  api(server.url, who.token, "POST", `/api/rooms/${roomId}/messages`, { content, ...extra });

/** Marks every message row element on the page, to tell later which ones were replaced. */
const markRows = () => page.evaluate(() => {
  for (const row of document.querySelectorAll("article.msg")) row.keptForTest = true;
});
/** The seqs of the rows drawn since markRows(). */
const redrawn = () => page.evaluate(() =>
  [...document.querySelectorAll("article.msg")].filter((row) => !row.keptForTest).map((row) => Number(row.dataset.seq)));

async function signIn(person) {
  const p = await newPage(browser);
  await p.context().addCookies([{ name: "parley_session", value: person.token, url: server.url }]);
  return p;
}

test("a row is redrawn when what it shows changes, and only then", async () => {
  server = await startServer();
  browser = await launchBrowser();
  alice = await apiRegister(server.url, "alice");
  bob = await apiRegister(server.url, "bob");
  const room = await api(server.url, alice.token, "POST", "/api/rooms", { name: "rows" });
  await api(server.url, alice.token, "POST", `/api/rooms/${room.id}/members`, { userId: bob.user.id });
  const one = await post(bob, room.id, "row one");
  await post(bob, room.id, "row two");
  await post(bob, room.id, "row three");

  page = await signIn(alice);
  await page.goto(`${server.url}/#/room/${room.id}`);
  await page.locator("article.msg", { hasText: "row three" }).waitFor();
  await page.locator(".member", { hasText: "bob" }).waitFor();

  // Someone joins (the member list reloads and the log redraws), Bob comes online and types:
  // nothing any row shows, so no row is replaced.
  await markRows();
  const carol = await apiRegister(server.url, "carol");
  await api(server.url, alice.token, "POST", `/api/rooms/${room.id}/members`, { userId: carol.user.id });
  await page.locator(".member", { hasText: "carol" }).waitFor();
  const socket = await connect(server.url, bob.token);
  try {
    await page.locator(".member", { hasText: "bob" }).locator(".presence.online").waitFor();
    socket.emit("typing:start", { roomId: room.id });
    await page.locator(".typing-line", { hasText: "bob is typing…" }).waitFor();
    assert.deepEqual(await redrawn(), []);

    // A new message of Alice's: a new row, the others untouched.
    const mine = await post(alice, room.id, "row four, mine");
    await page.locator("article.msg", { hasText: "row four, mine" }).waitFor();
    assert.deepEqual(await redrawn(), [mine.seq]);

    // Bob reads it: the receipt appears under it, and only that row changes.
    await markRows();
    assert.deepEqual(await emitAck(socket, "room:read", { roomId: room.id, seq: mine.seq }), { ok: true, lastReadSeq: mine.seq });
    await page.locator("article.msg", { hasText: "row four, mine" }).locator(".seen", { hasText: "Seen by bob" }).waitFor();
    assert.deepEqual(await redrawn(), [mine.seq]);
  } finally {
    socket.close();
  }

  // Bob edits his first message: that row is redrawn with the edited mark.
  await markRows();
  await api(server.url, bob.token, "PATCH", `/api/rooms/${room.id}/messages/${one.seq}`, { content: "row one, fixed" });
  await page.locator("article.msg", { hasText: "row one, fixed" }).locator(".edited").waitFor();
  assert.deepEqual(await redrawn(), [one.seq]);
  expectNoErrors(page);
});

test("a reply quoting a message too old to be loaded shows it, fetched once", async () => {
  const room = await api(server.url, bob.token, "POST", "/api/rooms", { name: "long ago" });
  await api(server.url, bob.token, "POST", `/api/rooms/${room.id}/members`, { userId: alice.user.id });
  const first = await post(bob, room.id, "the very first word");
  for (let start = 1; start <= 120; start += 20) {
    await Promise.all(Array.from({ length: 20 }, (_, i) => post(bob, room.id, `filler ${start + i}`)));
  }
  const last = await post(bob, room.id, "answering the first", { replyTo: first.seq });
  // Alice has read it all, so the room opens at the bottom with only the newest pages loaded.
  const socket = await connect(server.url, alice.token);
  try {
    await emitAck(socket, "room:read", { roomId: room.id, seq: last.seq });
  } finally {
    socket.close();
  }
  const link = page.locator("nav .room-link", { hasText: "long ago" }).filter({ hasText: "answering the first" });
  await link.waitFor();
  await link.locator(".badge").waitFor({ state: "detached" });
  const fetches = [];
  page.on("request", (request) => {
    if (request.url().endsWith(`/api/rooms/${room.id}/messages/${first.seq}`)) fetches.push(request.url());
  });
  await page.goto(`${server.url}/#/room/${room.id}`);
  const reply = page.locator("article.msg", { hasText: "answering the first" });
  await reply.locator(".quote", { hasText: "the very first word" }).waitFor();
  assert.equal(await page.locator(`article[data-seq="${first.seq}"]`).count(), 0, "the quoted message is not in the log");
  await page.waitForTimeout(200);
  assert.equal(fetches.length, 1, "one request for the quoted message");
  expectNoErrors(page);
});

test("a public room the user has not joined shows a preview with a Join button", async () => {
  const room = await api(server.url, bob.token, "POST", "/api/rooms", { name: "open house", topic: "all welcome", visibility: "public" });
  await post(bob, room.id, "come on in");
  await page.goto(`${server.url}/#/room/${room.id}`);
  await page.getByRole("heading", { name: "# open house", level: 2 }).waitFor();
  await page.getByText("all welcome").waitFor();
  await page.getByRole("button", { name: "Join" }).click();
  await page.locator("article.msg", { hasText: "come on in" }).waitFor();
  await page.getByRole("textbox", { name: /^Message / }).waitFor();
  await page.locator("nav .room-link", { hasText: "open house" }).waitFor();
  expectNoErrors(page);
});
