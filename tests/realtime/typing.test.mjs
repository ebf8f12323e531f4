// Typing indicators: to the others in the room, never to the typist, expiring after 5 s.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  startServer, register, roomWith, connect, waitFor, emitAck, record, send, closeAll,
} from "./helpers.mjs";

let server, alice, bob, room, a, b;

before(async () => {
  server = await startServer();
  alice = await register(server.url, "alice");
  bob = await register(server.url, "bob");
  room = await roomWith(server.url, alice.token, "typing", [bob.token]);
  a = await connect(server.url, alice.token);
  b = await connect(server.url, bob.token);
});
after(closeAll);

const isAlice = (typing) => (e) => e.roomId === room.id && e.userId === alice.user.id && e.typing === typing;

test("typing:start and typing:stop reach the others, never the typist", async () => {
  const onA = record(a);

  const started = waitFor(b, "typing", isAlice(true));
  assert.deepEqual(await emitAck(a, "typing:start", { roomId: room.id }), { ok: true });
  const [t1] = await started;
  assert.deepEqual(t1, { roomId: room.id, userId: alice.user.id, typing: true });

  const stopped = waitFor(b, "typing", isAlice(false));
  assert.deepEqual(await emitAck(a, "typing:stop", { roomId: room.id }), { ok: true });
  const [t2] = await stopped;
  assert.deepEqual(t2, { roomId: room.id, userId: alice.user.id, typing: false });

  // Round trip through the room after the stop, so anything sent to alice before it has arrived.
  const marker = waitFor(a, "message:new", (m) => m.content === "marker after typing");
  await send(b, room.id, "marker after typing");
  await marker;
  assert.deepEqual(onA.of("typing"), [], "the typist never gets her own typing events");
  onA.stop();
});

test("typing:start without a stop turns into typing:false on its own (5 s TTL)", async () => {
  const started = waitFor(b, "typing", isAlice(true));
  await emitAck(a, "typing:start", { roomId: room.id });
  await started;
  const expired = waitFor(b, "typing", isAlice(false), 7_000);
  await expired;
});

test("typing in a room you are not in is refused", async () => {
  const other = await roomWith(server.url, bob.token, "bob alone");
  const ack = await emitAck(a, "typing:start", { roomId: other.id });
  assert.equal(ack.ok, false, JSON.stringify(ack));
  assert.equal(ack.error.code, "not_member");
});
