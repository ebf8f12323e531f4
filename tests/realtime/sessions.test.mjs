// A session that ends ends everywhere (docs/security.md, "Sessions"): a socket is bound to the
// session it signed in with, and when that session ends — logout, a password change from
// another session, `parley user disable` from another process — the socket is told why
// (`session:ended`), gets a Socket.IO DISCONNECT, and hears nothing more. Also: a socket that
// received nothing before it dropped still recovers (the client sends `{pid}` alone).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  PARLEY_BIN, PASSWORD, startServer, register, roomWith, connect, waitFor, api, apiRaw, send,
  record, sleep, closeAll,
} from "./helpers.mjs";

after(closeAll);

/** The session must be over within this long (the bound is 2 s). */
const ENDS_WITHIN_MS = 2_000;

/** Resolves `{ reason, disconnect }` once `socket` is told its session ended and is dropped. */
function sessionEnd(socket) {
  const ended = waitFor(socket, "session:ended", () => true, ENDS_WITHIN_MS);
  const dropped = waitFor(socket, "disconnect", () => true, ENDS_WITHIN_MS);
  return Promise.all([ended, dropped]).then(([[e], [d]]) => ({ reason: e.reason, disconnect: d }));
}

async function login(url, username, password = PASSWORD) {
  return api(url, "POST", "/api/auth/login", null, { username, password });
}

/** Two users in one room; alice (the first account: the server admin) on a socket. */
async function setup() {
  const server = await startServer();
  const alice = await register(server.url, "alice");
  const bob = await register(server.url, "bob");
  const room = await roomWith(server.url, alice.token, "sessions", [bob.token]);
  const b = await connect(server.url, bob.token, { transports: ["websocket"] });
  return { server, alice, bob, room, b };
}

/** After the end: a later message does not reach `socket`, and the token no longer connects. */
async function assertNothingAfter(server, socket, token, sender, room) {
  const heard = record(socket);
  // The sender's own socket hearing it proves the message was fanned out before we judge.
  const fannedOut = waitFor(sender, "message:new", (m) => m.content === "after the session ended");
  await send(sender, room.id, "after the session ended");
  await fannedOut;
  await sleep(100);
  assert.deepEqual(heard.of("message:new"), [], "nothing is delivered after the end");
  assert.equal(socket.connected, false);
  await assert.rejects(connect(server.url, token, { transports: ["websocket"] }),
    (e) => e.data?.code === "unauthenticated" || e.data?.code === "account_disabled");
}

test("a live socket outlives logout: now it is disconnected with the reason and hears nothing after", async () => {
  const { server, alice, room, b } = await setup();
  const a = await connect(server.url, alice.token, { transports: ["websocket"] });
  const end = sessionEnd(a);
  const res = await apiRaw(server.url, "POST", "/api/auth/logout", alice.token);
  assert.equal(res.status, 204);
  const { reason, disconnect } = await end;
  assert.equal(reason, "logged_out");
  assert.equal(disconnect, "io server disconnect", "a server DISCONNECT: the client does not reconnect on its own");
  await assertNothingAfter(server, a, alice.token, b, room);
});

test("a live socket outlives a password change made from another session: now it ends, the changer's stays", async () => {
  const { server, alice, room, b } = await setup();
  const other = await login(server.url, "alice"); // a second device
  const doomed = await connect(server.url, other.token, { transports: ["websocket"] });
  const kept = await connect(server.url, alice.token, { transports: ["websocket"] });
  const end = sessionEnd(doomed);
  await api(server.url, "POST", "/api/me/password", alice.token, {
    currentPassword: PASSWORD, newPassword: "a brand new password",
  });
  assert.equal((await end).reason, "password_changed");
  const keptHears = waitFor(kept, "message:new", (m) => m.content === "after the session ended");
  await assertNothingAfter(server, doomed, other.token, b, room);
  await keptHears;
  assert.equal(kept.connected, true, "the session that changed the password keeps its socket");
});

test("a live socket outlives `parley user disable` run in another process: now the disabled admin is cut off", async () => {
  const { server, alice, room, b } = await setup();
  assert.equal(alice.user.isAdmin, true, "alice is the server admin");
  const a = await connect(server.url, alice.token, { transports: ["websocket"] });
  const polling = await connect(server.url, alice.token, { transports: ["polling"] });
  const ends = [sessionEnd(a), sessionEnd(polling)];
  const cli = spawn(PARLEY_BIN, ["user", "disable", "alice", "--data-dir", server.dataDir], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  cli.stderr.on("data", (d) => (stderr += d));
  const code = await new Promise((resolve) => cli.once("exit", resolve));
  assert.equal(code, 0, `parley user disable failed: ${stderr}`);
  for (const end of ends) assert.equal((await end).reason, "account_disabled");
  await assertNothingAfter(server, a, alice.token, b, room);
  // The admin's rights went with the socket: HTTP refuses the account too.
  const res = await apiRaw(server.url, "GET", "/api/rooms", alice.token);
  assert.equal(res.status, 401);
});

test("a quiet socket that drops and reconnects with its pid alone (no offset yet) recovers what it missed", async () => {
  const { server, alice, room, b } = await setup();
  const a = await connect(server.url, alice.token, { transports: ["websocket"] });
  // bob's socket has received nothing that carries an offset: its client will send {pid} alone.
  const got = [];
  b.on("message:new", (m) => got.push(m));
  const down = waitFor(b, "disconnect", () => true);
  const back = waitFor(b, "connect", () => true, 10_000);
  b.io.reconnectionDelay(500);
  b.io.reconnectionDelayMax(500);
  b.io.engine.close();
  await down;
  const sent = [];
  for (let i = 1; i <= 5; i++) sent.push(await send(a, room.id, `quiet ${i}`));
  await back;
  assert.equal(b.recovered, true, "the session was recovered from its pid alone");
  const marker = waitFor(b, "message:new", (m) => m.content === "live");
  const live = await send(a, room.id, "live");
  await marker;
  assert.deepEqual(got.map((m) => m.seq), [...sent, live].map((m) => m.seq), "each missed message once, in order");
});
