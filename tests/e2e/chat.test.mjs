// The web client end to end: the real binary, two people in two headless Chromium browsers.
// The tests run in order and build on each other, the way a team's first day would go:
// setup, a second account, a room, messages both ways, typing, presence, read receipts,
// 500 messages of scrollback, edit and delete, replies, a direct message, a server restart,
// the phone layout, the dark theme, and an accessibility check of every screen.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  api, apiRaw, checkA11y, eventually, expectNoErrors, launchBrowser, newPage, screenshot, startServer,
} from "./helpers.mjs";

const PASSWORDS = { alice: "wonderland-2026", bob: "builder-2026" };
// Expected noise: the sign-in probe (/api/me before signing in), the wrong inputs the tests make
// on purpose, and a server that is down on purpose.
const EXPECTED_ERRORS = [
  /Failed to load resource: the server responded with a status of (400|401|409)/,
  /WebSocket connection to .* failed/,
  /Failed to load resource: net::ERR_CONNECTION_REFUSED/,
];

let server;
let browser;
let alice; // a page
let bob;   // a page
const tokens = {};
const rooms = {};

const composer = (page) => page.getByRole("textbox", { name: /^Message / });
const messageRows = (page) => page.locator("article.msg");
const exactly = (text) => new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);
const roomLink = (page, name) => page.locator("nav .room-link").filter({ has: page.locator(".room-name", { hasText: exactly(name) }) });
/** The message whose own text (not a quote of it) contains `text`. */
const message = (page, text) => page.locator("article.msg").filter({ has: page.locator(".msg-text", { hasText: text }) });

async function say(page, text) {
  await composer(page).fill(text);
  await composer(page).press("Enter");
  await page.locator("article.msg:not(.pending)", { hasText: text }).last().waitFor();
}

/** Pretends the tab went to the background (or came back): what a real switch of tabs does. */
async function setHidden(page, hidden) {
  await page.evaluate((value) => {
    Object.defineProperty(document, "hidden", { value, configurable: true });
    Object.defineProperty(document, "visibilityState", { value: value ? "hidden" : "visible", configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  }, hidden);
}

test("first run: the setup screen creates the admin, errors appear next to their field", async () => {
  server = await startServer();
  browser = await launchBrowser();
  alice = await newPage(browser);
  await alice.goto(server.url);
  await alice.getByRole("heading", { name: "Welcome to parley" }).waitFor();
  await checkA11y(alice);
  await screenshot(alice, "setup");

  await alice.getByLabel("Username").fill("alice");
  await alice.getByLabel(/Display name/).fill("Alice");
  await alice.getByLabel("Password").fill("short");
  await alice.getByRole("button", { name: "Create admin account" }).click();
  const passwordError = alice.locator("#auth-password-error");
  await passwordError.filter({ hasText: /at least 8/i }).waitFor();
  assert.equal(await alice.getByLabel("Password").getAttribute("aria-invalid"), "true");
  assert.equal(await alice.locator("#auth-username-error").textContent(), "");

  await alice.getByLabel("Password").fill(PASSWORDS.alice);
  await alice.getByRole("button", { name: "Create admin account" }).click();
  await alice.getByRole("navigation", { name: "Rooms and direct messages" }).waitFor();
  await alice.getByText("No rooms yet.", { exact: false }).waitFor();
  tokens.alice = (await api(server.url, null, "POST", "/api/auth/login", { username: "alice", password: PASSWORDS.alice })).token;
});

test("a second person registers, and signing in with a wrong password says so", async () => {
  bob = await newPage(browser);
  await bob.goto(server.url);
  await bob.getByRole("heading", { name: "Sign in" }).waitFor();
  await bob.getByRole("button", { name: "No account? Register" }).click();
  await bob.getByLabel("Username").fill("alice");
  await bob.getByLabel("Password").fill(PASSWORDS.bob);
  await bob.getByRole("button", { name: "Create account" }).click();
  await bob.locator("#auth-username-error").filter({ hasText: "taken" }).waitFor();
  await bob.getByLabel("Username").fill("bob");
  await bob.getByLabel(/Display name/).fill("Bob");
  await bob.getByRole("button", { name: "Create account" }).click();
  await bob.getByRole("navigation", { name: "Rooms and direct messages" }).waitFor();
  tokens.bob = (await api(server.url, null, "POST", "/api/auth/login", { username: "bob", password: PASSWORDS.bob })).token;

  // Signing out and back in, with one wrong attempt first.
  await bob.locator("summary.me").click();
  await bob.getByRole("button", { name: "Sign out" }).click();
  await bob.getByRole("heading", { name: "Sign in" }).waitFor();
  await bob.getByLabel("Username").fill("bob");
  await bob.getByLabel("Password").fill("not-my-password");
  await bob.getByRole("button", { name: "Sign in" }).click();
  await bob.getByText("Wrong username or password.").waitFor();
  await bob.getByLabel("Password").fill(PASSWORDS.bob);
  await bob.getByRole("button", { name: "Sign in" }).click();
  await bob.getByRole("navigation", { name: "Rooms and direct messages" }).waitFor();
});

test("alice creates a room, bob finds it among public rooms and joins", async () => {
  await alice.getByRole("button", { name: "Create a room" }).click();
  const dialog = alice.getByRole("dialog", { name: "Create a room" });
  await checkA11y(alice);
  await dialog.getByLabel("Name").fill("general");
  await dialog.getByLabel(/Topic/).fill("Company-wide chatter");
  await dialog.getByRole("button", { name: "Create room" }).click();
  await alice.getByRole("heading", { name: "general", level: 1 }).waitFor();
  rooms.general = Number(/#\/room\/(\d+)/.exec(alice.url())[1]);

  await bob.getByRole("button", { name: "Browse public rooms" }).click();
  await bob.getByRole("dialog", { name: "Public rooms" }).getByRole("button", { name: "Join general" }).click();
  await bob.getByRole("heading", { name: "general", level: 1 }).waitFor();
  await alice.getByRole("button", { name: /2 members/ }).waitFor();
});

test("messages go both ways, live, grouped by author, with links clickable and HTML shown as text", async () => {
  await say(alice, "Hello Bob, welcome aboard!");
  await bob.locator("article.msg", { hasText: "Hello Bob, welcome aboard!" }).waitFor();
  await say(bob, "Thanks Alice. Docs at https://example.com/start.");
  await alice.locator("article.msg", { hasText: "Docs at" }).waitFor();
  const link = alice.locator("article.msg a", { hasText: "https://example.com/start" });
  assert.equal(await link.getAttribute("href"), "https://example.com/start");
  assert.match(await link.getAttribute("rel"), /noopener/);

  await say(bob, '<img src=x onerror="window.pwned=1"> <b>not bold</b>');
  await message(alice, '<img src=x onerror="window.pwned=1"> <b>not bold</b>').waitFor();
  assert.equal(await alice.evaluate(() => window.pwned), undefined);
  assert.equal(await alice.locator("article.msg b").count(), 0);

  // Shift+Enter makes a new line; Bob's two messages in a row form one group.
  await composer(bob).fill("line one");
  await composer(bob).press("Shift+Enter");
  await composer(bob).pressSequentially("line two");
  await composer(bob).press("Enter");
  const multi = alice.locator("article.msg", { hasText: "line one" });
  await multi.waitFor();
  assert.match(await multi.locator(".msg-text").innerText(), /line one\nline two/);
  assert.ok(await multi.evaluate((el) => el.classList.contains("continued")), "the second message in a row continues the group");
  await alice.getByRole("separator").filter({ hasText: "Today" }).first().waitFor();

  // A message the server refuses (a NUL byte) stays on screen as not sent, to retry or discard.
  await composer(alice).fill("bad\u0000byte");
  await composer(alice).press("Enter");
  const refused = alice.locator("article.msg.pending.failed");
  await refused.getByText("Not sent.").waitFor();
  await refused.getByRole("button", { name: "Retry" }).click();
  await refused.getByText("Not sent.").waitFor();
  await refused.getByRole("button", { name: "Discard" }).click();
  await refused.waitFor({ state: "detached" });
});

test("typing shows for the other person and stops after sending", async () => {
  await composer(bob).pressSequentially("I am typ");
  await alice.locator(".typing-line").filter({ hasText: "Bob is typing…" }).waitFor();
  await composer(bob).press("Enter");
  await eventually(async () => (await alice.locator(".typing-line").textContent()) === "", 8_000, "typing line cleared");
});

test("presence: members are online, away when their tab is hidden, and back", async () => {
  const bobInAlicesPanel = alice.locator(".member", { hasText: "Bob" });
  await bobInAlicesPanel.locator(".presence.online").waitFor();
  await setHidden(bob, true);
  await bobInAlicesPanel.locator(".presence.away").waitFor();
  await setHidden(bob, false);
  await bobInAlicesPanel.locator(".presence.online").waitFor();
});

test("read receipts: alice's latest message says who has seen it; unread counts show in the sidebar and title", async () => {
  await say(alice, "Did everyone see this?");
  await bob.locator("article.msg", { hasText: "Did everyone see this?" }).waitFor();
  await alice.locator("article.msg", { hasText: "Did everyone see this?" }).locator(".seen", { hasText: "Seen by Bob" }).waitFor();

  // A second room Bob is added to; a message there is unread for him.
  const random = await api(server.url, tokens.alice, "POST", "/api/rooms", { name: "random", visibility: "private" });
  rooms.random = random.id;
  await alice.goto(`${server.url}/#/room/${random.id}`);
  await alice.getByRole("heading", { name: "random", level: 1 }).waitFor();
  await alice.getByLabel("Add a member").fill("bo");
  await alice.getByRole("button", { name: /Bob @bob/ }).click();
  await alice.getByRole("button", { name: /2 members/ }).waitFor();
  await roomLink(bob, "random").waitFor();
  await say(alice, "psst, over here");
  const badge = roomLink(bob, "random").locator(".badge");
  await badge.filter({ hasText: "1" }).waitFor();
  await roomLink(bob, "random").filter({ hasText: "Alice: psst, over here" }).waitFor();
  await eventually(async () => (await bob.title()).startsWith("(1)"), 5_000, "unread in the title");
  await roomLink(bob, "random").click();
  await bob.locator("article.msg", { hasText: "psst, over here" }).waitFor();
  await badge.waitFor({ state: "detached" });
  await eventually(async () => !(await bob.title()).startsWith("("), 5_000, "title without unread");
});

test("opening a room with unread messages shows the new-messages divider above the first of them", async () => {
  // Bob is looking at "random"; three messages arrive in "general".
  await alice.goto(`${server.url}/#/room/${rooms.general}`);
  await alice.getByRole("heading", { name: "general", level: 1 }).waitFor();
  for (const text of ["unread one", "unread two", "unread three"]) await say(alice, text);
  await roomLink(bob, "general").locator(".badge", { hasText: "3" }).waitFor();
  await roomLink(bob, "general").click();
  await bob.locator("article.msg", { hasText: "unread three" }).waitFor();
  const after = await bob.locator(".divider + article.msg .msg-text").textContent();
  assert.equal(after, "unread one");
  assert.equal(await bob.locator(".divider").count(), 1);
  await roomLink(bob, "general").locator(".badge").waitFor({ state: "detached" });
});

test("500 messages of history scroll back page by page, each exactly once, keeping the reading position", async () => {
  const room = await api(server.url, tokens.alice, "POST", "/api/rooms", { name: "history" });
  rooms.history = room.id;
  await api(server.url, tokens.alice, "POST", `/api/rooms/${room.id}/members`, { userId: (await api(server.url, tokens.bob, "GET", "/api/me")).id });
  for (let start = 1; start <= 500; start += 25) {
    await Promise.all(Array.from({ length: 25 }, (_, i) => start + i).map(async (n) => {
      // Sent in parallel batches; the seq, not n, fixes the order, so record the pairing.
      await api(server.url, tokens.alice, "POST", `/api/rooms/${room.id}/messages`, { content: `history ${n}` });
    }));
  }
  await bob.goto(`${server.url}/#/room/${room.id}`);
  await bob.getByRole("heading", { name: "history", level: 1 }).waitFor();
  await bob.locator("article.msg").first().waitFor();
  const log = bob.getByRole("log");

  for (let guard = 0; guard < 40; guard++) {
    if (await bob.getByText("This is the very beginning of history.").isVisible()) break;
    const before = await messageRows(bob).count();
    await log.evaluate((el) => { el.scrollTop = 0; });
    await eventually(async () => (await messageRows(bob).count()) > before
      || await bob.getByText("This is the very beginning of history.").isVisible(), 8_000, "an older page");
  }
  const seqs = await messageRows(bob).evaluateAll((rows) => rows.map((r) => Number(r.dataset.seq)));
  assert.deepEqual(seqs, Array.from({ length: 500 }, (_, i) => i + 1), "every seq once, in order");
  const contents = await bob.locator("article.msg .msg-text").allInnerTexts();
  assert.equal(new Set(contents).size, 500);

  // Far from the bottom, a button jumps back to the latest message.
  const jump = bob.getByRole("button", { name: /Jump to latest/ });
  await jump.waitFor();
  await jump.click();
  await eventually(() => log.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight < 50), 3_000, "at the bottom");
  await jump.waitFor({ state: "hidden" });
});

test("older pages load without moving what the reader is looking at", async () => {
  // A fresh page in the history room: scroll up a little at a time like a person would.
  const reader = await newPage(browser);
  await reader.goto(server.url);
  await reader.getByLabel("Username").fill("bob");
  await reader.getByLabel("Password").fill(PASSWORDS.bob);
  await reader.getByRole("button", { name: "Sign in" }).click();
  await reader.goto(`${server.url}/#/room/${rooms.history}`);
  await reader.locator('article[data-seq="500"]').waitFor();
  const log = reader.getByRole("log");
  const before = await messageRows(reader).count();
  const watched = await log.evaluate((el) => {
    const rows = [...el.querySelectorAll("article.msg")];
    const row = rows[Math.min(5, rows.length - 1)];
    el.scrollTop = row.offsetTop - 120; // near the top: the next page loads
    el.dispatchEvent(new Event("scroll"));
    return { seq: row.dataset.seq, y: row.getBoundingClientRect().top };
  });
  await eventually(async () => (await messageRows(reader).count()) > before, 8_000, "an older page");
  await reader.waitForTimeout(100);
  const y = await log.evaluate((el, seq) => el.querySelector(`article[data-seq="${seq}"]`).getBoundingClientRect().top, watched.seq);
  assert.ok(Math.abs(y - watched.y) < 4, `the watched message moved from ${watched.y} to ${y}`);
  await reader.close();
});

test("edit with the Up arrow, delete with confirmation, reply with a quote", async () => {
  await alice.goto(`${server.url}/#/room/${rooms.general}`);
  await bob.goto(`${server.url}/#/room/${rooms.general}`);
  await say(alice, "The meeting is at 3");
  await bob.locator("article.msg", { hasText: "The meeting is at 3" }).waitFor();

  await composer(alice).click();
  await composer(alice).press("ArrowUp");
  await alice.getByText("Editing your message").waitFor();
  assert.equal(await composer(alice).inputValue(), "The meeting is at 3");
  await composer(alice).fill("The meeting is at 4");
  await composer(alice).press("Enter");
  const edited = message(bob, "The meeting is at 4");
  await edited.locator(".edited").waitFor();

  // Bob replies to it.
  await edited.hover();
  await edited.getByRole("button", { name: "Reply" }).click();
  await bob.getByText("Replying to Alice").waitFor();
  await say(bob, "Works for me");
  const reply = alice.locator("article.msg", { hasText: "Works for me" });
  await reply.locator(".quote", { hasText: "The meeting is at 4" }).waitFor();

  // Alice deletes her message after confirming.
  const mine = message(alice, "The meeting is at 4");
  await mine.hover();
  await mine.getByRole("button", { name: "Delete" }).click();
  const confirm = alice.getByRole("dialog", { name: "Delete" });
  await confirm.getByRole("button", { name: "Cancel" }).click();
  assert.equal(await mine.count(), 1, "cancel keeps the message");
  await mine.hover();
  await mine.getByRole("button", { name: "Delete" }).click();
  await alice.getByRole("dialog", { name: "Delete" }).getByRole("button", { name: "Delete" }).click();
  await bob.locator("article.msg.deleted", { hasText: "This message was deleted." }).waitFor();
  await reply.locator(".quote", { hasText: "This message was deleted." }).waitFor();
  await alice.evaluate(() => document.activeElement?.blur());
  await alice.mouse.move(0, 0);
  await screenshot(alice, "desktop-light");
  await checkA11y(alice);
});

test("a direct message: search a person, talk, presence dot, notification while the tab is hidden", async () => {
  // Record notifications instead of showing them.
  await bob.evaluate(() => {
    window.shown = [];
    class FakeNotification {
      static permission = "granted";
      static requestPermission() { return Promise.resolve("granted"); }
      constructor(title, options) { window.shown.push({ title, body: options?.body }); }
      close() {}
    }
    window.Notification = FakeNotification;
  });
  await setHidden(bob, true);

  await alice.getByRole("button", { name: "New direct message" }).click();
  const dialog = alice.getByRole("dialog", { name: "New direct message" });
  await dialog.getByLabel("Find people").fill("bo");
  await dialog.getByRole("button", { name: /Bob @bob/ }).click();
  await alice.getByRole("heading", { name: "Bob", level: 1 }).waitFor();
  await roomLink(alice, "Bob").locator(".presence").waitFor();
  await say(alice, "psst, a secret");

  await roomLink(bob, "Alice").locator(".badge", { hasText: "1" }).waitFor();
  await eventually(() => bob.evaluate(() => window.shown.length === 1), 5_000, "one notification");
  assert.deepEqual(await bob.evaluate(() => window.shown[0]), { title: "Alice", body: "psst, a secret" });
  await setHidden(bob, false);
  await roomLink(bob, "Alice").click();
  await bob.locator("article.msg", { hasText: "psst, a secret" }).waitFor();
  await say(bob, "got it");
  await alice.locator("article.msg", { hasText: "got it" }).waitFor();
});

test("keyboard: from the message log, arrows pick a message and Tab reaches its actions", async () => {
  await composer(bob).focus();
  await bob.getByRole("log").focus();
  await bob.keyboard.press("ArrowUp");
  const focused = bob.locator("article.msg:focus");
  await focused.filter({ hasText: "got it" }).waitFor();
  await bob.keyboard.press("ArrowUp");
  await focused.filter({ hasText: "psst, a secret" }).waitFor();
  await bob.keyboard.press("Tab");
  assert.equal(await bob.evaluate(() => document.activeElement.textContent), "Reply");
  await bob.keyboard.press("Enter");
  await bob.getByText("Replying to Alice").waitFor();
  assert.equal(await bob.evaluate(() => document.activeElement.id), "composer");
  await bob.keyboard.press("Escape");
  await bob.getByText("Replying to Alice").waitFor({ state: "detached" });
});

test("after a server restart both pages reconnect; messages written meanwhile appear exactly once", async () => {
  await alice.goto(`${server.url}/#/room/${rooms.general}`);
  await bob.goto(`${server.url}/#/room/${rooms.general}`);
  await alice.locator("article.msg").last().waitFor();
  await bob.locator("article.msg").last().waitFor();
  await server.stop();
  await alice.getByRole("status").filter({ hasText: /Reconnecting|offline/ }).waitFor();

  // Alice writes while the server is down: the message waits, marked as sending.
  await composer(alice).fill("written while the server was down");
  await composer(alice).press("Enter");
  await alice.locator("article.msg.pending", { hasText: "written while the server was down" }).waitFor();

  await server.restart();
  await apiRaw(server.url, "POST", `/api/rooms/${rooms.general}/messages`, tokens.bob, { content: "sent while alice was reconnecting" });

  for (const page of [alice, bob]) {
    for (const text of ["written while the server was down", "sent while alice was reconnecting"]) {
      await page.locator("article.msg:not(.pending)", { hasText: text }).waitFor({ timeout: 25_000 });
    }
    await page.locator(".banner").waitFor({ state: "hidden", timeout: 25_000 });
  }
  await alice.waitForTimeout(500);
  for (const page of [alice, bob]) {
    for (const text of ["written while the server was down", "sent while alice was reconnecting"]) {
      assert.equal(await page.locator("article.msg", { hasText: text }).count(), 1, `${text} once`);
    }
    const seqs = await messageRows(page).evaluateAll((rows) => rows.map((r) => Number(r.dataset.seq)));
    assert.deepEqual(seqs, [...new Set(seqs)].sort((a, b) => a - b), "no duplicate or out-of-order seq");
  }
  // Bob sends after the restart; Alice gets it live.
  await say(bob, "back to normal");
  await alice.locator("article.msg", { hasText: "back to normal" }).waitFor();
});

test("the dark theme follows the system", async () => {
  const dark = await newPage(browser, { colorScheme: "dark" });
  await dark.goto(server.url);
  await dark.getByLabel("Username").fill("alice");
  await dark.getByLabel("Password").fill(PASSWORDS.alice);
  await dark.getByRole("button", { name: "Sign in" }).click();
  await dark.goto(`${server.url}/#/room/${rooms.general}`);
  await dark.locator("article.msg", { hasText: "back to normal" }).waitFor();
  const background = await dark.evaluate(() => getComputedStyle(document.querySelector(".main")).backgroundColor);
  assert.equal(background, "rgb(27, 31, 38)");
  await checkA11y(dark);
  await dark.mouse.move(0, 0);
  await screenshot(dark, "desktop-dark");
  expectNoErrors(dark, { ignore: EXPECTED_ERRORS });
  await dark.close();
});

test("on a phone the sidebar is a drawer", async () => {
  const phone = await newPage(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await phone.goto(server.url);
  await phone.getByLabel("Username").fill("bob");
  await phone.getByLabel("Password").fill(PASSWORDS.bob);
  await phone.getByRole("button", { name: "Sign in" }).click();
  // No room chosen: the drawer opens by itself.
  const nav = phone.getByRole("navigation", { name: "Rooms and direct messages" });
  await roomLink(phone, "general").waitFor();
  await roomLink(phone, "general").click();
  await phone.getByRole("heading", { name: "general", level: 1 }).waitFor();
  await eventually(async () => !(await nav.isVisible()), 3_000, "the drawer closes");
  await phone.getByRole("button", { name: "Open navigation" }).click();
  await eventually(() => nav.isVisible(), 3_000, "the drawer opens");
  await roomLink(phone, "random").click();
  await phone.getByRole("heading", { name: "random", level: 1 }).waitFor();
  await say(phone, "typed on a phone");
  await alice.goto(`${server.url}/#/room/${rooms.random}`);
  await alice.locator("article.msg", { hasText: "typed on a phone" }).waitFor();
  await checkA11y(phone);
  await phone.evaluate(() => document.activeElement?.blur());
  await phone.mouse.move(0, 0);
  await screenshot(phone, "mobile");
  expectNoErrors(phone, { ignore: EXPECTED_ERRORS });
});

test("presence turns offline when the last tab closes", async () => {
  await alice.goto(`${server.url}/#/room/${rooms.general}`);
  const bobInPanel = alice.locator(".member", { hasText: "Bob" });
  await bobInPanel.locator(".presence.online").waitFor();
  for (const context of browser.contexts()) {
    for (const page of context.pages()) if (page !== alice) await page.close();
  }
  await bobInPanel.locator(".presence.offline").waitFor();
  expectNoErrors(alice, { ignore: EXPECTED_ERRORS });
});

test("invite-only servers: an admin's invite link registers a new person", async () => {
  const closed = await startServer({ args: ["--registration", "invite"] });
  const admin = await api(closed.url, null, "POST", "/api/auth/register", { username: "root", password: PASSWORDS.alice });
  const page = await newPage(browser);
  await page.context().addCookies([{ name: "parley_session", value: admin.token, url: closed.url }]);
  await page.goto(closed.url);
  await page.locator("summary.me").click();
  await page.getByRole("button", { name: "Invite people" }).click();
  const link = page.getByLabel("Invite link");
  await eventually(async () => (await link.inputValue()).includes("#invite/"), 5_000, "an invite link");
  const url = await link.inputValue();

  const guest = await newPage(browser);
  await guest.goto(closed.url);
  await guest.getByText("Registration is closed on this server.", { exact: false }).waitFor();
  await guest.goto(url);
  await guest.getByRole("heading", { name: "You're invited" }).waitFor();
  await guest.getByLabel("Username").fill("carol");
  await guest.getByLabel("Password").fill("carol-password");
  await guest.getByRole("button", { name: "Create account" }).click();
  await guest.getByRole("navigation", { name: "Rooms and direct messages" }).waitFor();
  const reused = await apiRaw(closed.url, "POST", "/api/auth/register", null, { username: "dave", password: "dave-password", invite: url.split("#invite/")[1] });
  assert.equal(reused.status, 403, "an invite works once");
});

test("notification permission is asked for with a button, never on load", async () => {
  const page = await newPage(browser);
  // Headless Chromium answers "denied" by itself; play a browser that has not been asked yet.
  await page.addInitScript(() => {
    window.asked = 0;
    let permission = "default";
    Object.defineProperty(Notification, "permission", { get: () => permission });
    Notification.requestPermission = async () => {
      window.asked += 1;
      permission = "granted";
      return permission;
    };
  });
  await page.goto(server.url);
  await page.getByLabel("Username").fill("alice");
  await page.getByLabel("Password").fill(PASSWORDS.alice);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("navigation", { name: "Rooms and direct messages" }).waitFor();
  await page.waitForTimeout(300);
  assert.equal(await page.evaluate(() => window.asked), 0);
  await page.locator("summary.me").click();
  await page.getByRole("button", { name: "Enable notifications" }).click();
  await eventually(() => page.evaluate(() => window.asked === 1), 3_000, "one permission request");
  await page.getByRole("button", { name: "Notifications are on" }).waitFor();
  await page.close();
});

test("Simplified Chinese for a Chinese browser", async () => {
  const page = await newPage(browser, { locale: "zh-CN" });
  await page.goto(server.url);
  await page.getByRole("heading", { name: "登录" }).waitFor();
  assert.equal(await page.evaluate(() => document.documentElement.lang), "zh-CN");
  await page.getByLabel("用户名").fill("alice");
  await page.getByLabel("密码").fill(PASSWORDS.alice);
  await page.getByRole("button", { name: "登录" }).click();
  await page.getByRole("navigation", { name: "房间和私信" }).waitFor();
  await checkA11y(page);
  expectNoErrors(page, { ignore: EXPECTED_ERRORS });
});
