// Presence: online from the first connection, away on request, offline after the grace period
// that follows the last connection closing, unless the user comes back within it.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import {
  startServer, register, api, roomWith, connect, waitFor, emitAck, record, send, closeAll,
} from "./helpers.mjs";

after(closeAll);

const of = (userId, status) => (p) => p.userId === userId && p.status === status;

test("online, away and offline reach people sharing a room", async () => {
  const server = await startServer(["--presence-grace-ms", "200"]);
  const alice = await register(server.url, "alice");
  const bob = await register(server.url, "bob");
  const room = await roomWith(server.url, bob.token, "presence", [alice.token]);
  const b = await connect(server.url, bob.token);

  const before = await api(server.url, "GET", `/api/users/${alice.user.id}`, bob.token);
  assert.equal(before.status, "offline", "alice is offline before she connects");

  const online = waitFor(b, "presence", of(alice.user.id, "online"));
  const a = await connect(server.url, alice.token);
  const [p1] = await online;
  assert.deepEqual(p1, { userId: alice.user.id, status: "online" });
  const shown = await api(server.url, "GET", `/api/users/${alice.user.id}`, bob.token);
  assert.equal(shown.status, "online", "GET /api/users/{id} shows online while connected");

  const away = waitFor(b, "presence", of(alice.user.id, "away"));
  assert.deepEqual(await emitAck(a, "presence:set", { status: "away" }), { ok: true });
  const [p2] = await away;
  assert.deepEqual(p2, { userId: alice.user.id, status: "away" });
  assert.equal((await api(server.url, "GET", `/api/users/${alice.user.id}`, bob.token)).status, "away");

  const bad = await emitAck(a, "presence:set", { status: "offline" });
  assert.equal(bad.ok, false, `presence:set offline is not a status a client may pick: ${JSON.stringify(bad)}`);

  const offline = waitFor(b, "presence", of(alice.user.id, "offline"));
  a.disconnect();
  const [p3] = await offline;
  assert.deepEqual(p3, { userId: alice.user.id, status: "offline" });
  assert.equal((await api(server.url, "GET", `/api/users/${alice.user.id}`, bob.token)).status, "offline");
  void room;
});

test("presence goes only to people sharing a room", async () => {
  const server = await startServer(["--presence-grace-ms", "200"]);
  const alice = await register(server.url, "alice");
  const bob = await register(server.url, "bob");
  const dave = await register(server.url, "dave");
  const room = await roomWith(server.url, bob.token, "bob+dave", [dave.token]);
  await roomWith(server.url, alice.token, "alice alone");
  const b = await connect(server.url, bob.token);
  const onB = record(b);

  await connect(server.url, alice.token); // shares no room with bob
  // dave's arrival is the marker: it is sent after alice's would have been.
  const daveOnline = waitFor(b, "presence", of(dave.user.id, "online"));
  await connect(server.url, dave.token);
  await daveOnline;
  const marker = waitFor(b, "message:new", (m) => m.content === "marker");
  await api(server.url, "POST", `/api/rooms/${room.id}/messages`, dave.token, { content: "marker" });
  await marker;
  assert.deepEqual(onB.of("presence").filter((p) => p.userId === alice.user.id), [],
    "bob shares no room with alice and gets none of her presence");
});

test("a quick reconnect within the grace period shows no offline", async () => {
  const server = await startServer(["--presence-grace-ms", "1500"]);
  const alice = await register(server.url, "alice");
  const bob = await register(server.url, "bob");
  const carol = await register(server.url, "carol");
  const room = await roomWith(server.url, bob.token, "flaky wifi", [alice.token, carol.token]);
  const b = await connect(server.url, bob.token);

  const aliceOnline = waitFor(b, "presence", of(alice.user.id, "online"));
  const a1 = await connect(server.url, alice.token);
  await aliceOnline;
  const carolOnline = waitFor(b, "presence", of(carol.user.id, "online"));
  const c = await connect(server.url, carol.token);
  await carolOnline;

  const onB = record(b);
  a1.disconnect();
  const a2 = await connect(server.url, alice.token);

  // Alice is back and talking.
  const got = waitFor(b, "message:new", (m) => m.content === "back again");
  await send(a2, room.id, "back again");
  await got;
  assert.equal((await api(server.url, "GET", `/api/users/${alice.user.id}`, bob.token)).status, "online");

  // Carol leaves after alice came back; her offline comes one grace period later, so by the
  // time bob sees it any offline for alice (whose grace started earlier) would have been sent.
  const carolOffline = waitFor(b, "presence", of(carol.user.id, "offline"), 6_000);
  c.disconnect();
  await carolOffline;

  const aliceOffline = onB.of("presence").filter(of(alice.user.id, "offline"));
  assert.deepEqual(aliceOffline, [], "no offline for alice, who reconnected within the grace period");
  assert.equal((await api(server.url, "GET", `/api/users/${alice.user.id}`, bob.token)).status, "online");
  a2.close();
});
