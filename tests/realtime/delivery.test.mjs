// Delivery rules: who gets which server -> client event.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  startServer, register, api, roomWith, connect, waitFor, send, emitAck, record, closeAll,
} from "./helpers.mjs";

let server, alice, bob, carol;

before(async () => {
  server = await startServer();
  alice = await register(server.url, "alice");
  bob = await register(server.url, "bob");
  carol = await register(server.url, "carol");
});
after(closeAll);

test("a non-member never receives a room's message:new", async () => {
  const secret = await roomWith(server.url, alice.token, "alice+bob", [bob.token]);
  const carolsRoom = await roomWith(server.url, alice.token, "alice+carol", [carol.token]);
  const a = await connect(server.url, alice.token);
  const b = await connect(server.url, bob.token);
  const c = await connect(server.url, carol.token);
  const seenByCarol = record(c);

  const bobGotLast = waitFor(b, "message:new", (m) => m.roomId === secret.id && m.content === "secret 5");
  for (let i = 1; i <= 5; i++) await send(a, secret.id, `secret ${i}`);
  await bobGotLast; // the fanout of the secret room is done

  const carolGets = waitFor(c, "message:new", (m) => m.roomId === carolsRoom.id);
  const marker = await send(a, carolsRoom.id, "hello carol");
  await carolGets;

  const first = seenByCarol.events.find((e) => e.event === "message:new");
  assert.deepEqual(
    { roomId: first.args[0].roomId, seq: first.args[0].seq, content: first.args[0].content },
    { roomId: carolsRoom.id, seq: marker.seq, content: "hello carol" },
    "the first message:new carol sees is the one in her room",
  );
  const leaked = seenByCarol.events.filter((e) => e.args[0]?.roomId === secret.id);
  assert.deepEqual(leaked, [], "carol saw nothing of a room she is not in");
  a.close(); b.close(); c.close();
});

test("a message sent over HTTP reaches sockets as message:new", async () => {
  const room = await roomWith(server.url, alice.token, "http to socket", [bob.token]);
  const b = await connect(server.url, bob.token);
  const got = waitFor(b, "message:new", (m) => m.roomId === room.id);
  const sent = await api(server.url, "POST", `/api/rooms/${room.id}/messages`, alice.token, { content: "via http" });
  const [m, offset] = await got;
  assert.equal(m.seq, sent.seq);
  assert.equal(m.content, "via http");
  assert.equal(m.senderId, alice.user.id);
  assert.deepEqual(m, sent, "the socket gets the same Message object as HTTP");
  assert.equal(typeof offset, "string");
  b.close();
});

test("edit and delete propagate as message:update and message:delete", async () => {
  const room = await roomWith(server.url, alice.token, "edits", [bob.token]);
  const a = await connect(server.url, alice.token);
  const b = await connect(server.url, bob.token);
  const original = await send(a, room.id, "first draft");

  const updated = waitFor(b, "message:update", (m) => m.roomId === room.id && m.seq === original.seq);
  const editAck = await emitAck(a, "message:edit", { roomId: room.id, seq: original.seq, content: "final draft" });
  assert.equal(editAck.ok, true, JSON.stringify(editAck));
  assert.equal(editAck.message.content, "final draft");
  const [u] = await updated;
  assert.equal(u.content, "final draft");
  assert.equal(typeof u.editedAt, "string", "an edited message has editedAt");
  assert.equal(u.deleted, false);

  const deleted = waitFor(b, "message:delete", (m) => m.roomId === room.id && m.seq === original.seq);
  const delAck = await emitAck(a, "message:delete", { roomId: room.id, seq: original.seq });
  assert.equal(delAck.ok, true, JSON.stringify(delAck));
  assert.equal(delAck.message.deleted, true);
  const [d] = await deleted;
  assert.equal(d.deleted, true);
  assert.equal(d.content, "");
  assert.equal(d.seq, original.seq);

  // HTTP edits travel the same way.
  const second = await send(a, room.id, "typo");
  const updated2 = waitFor(b, "message:update", (m) => m.seq === second.seq);
  await api(server.url, "PATCH", `/api/rooms/${room.id}/messages/${second.seq}`, alice.token, { content: "fixed" });
  assert.equal((await updated2)[0].content, "fixed");
  a.close(); b.close();
});

test("room:read from one member is seen by the others", async () => {
  const room = await roomWith(server.url, alice.token, "receipts", [bob.token]);
  const a = await connect(server.url, alice.token);
  const b = await connect(server.url, bob.token);
  const m = await send(b, room.id, "read me");
  const seen = waitFor(b, "room:read", (r) => r.roomId === room.id && r.userId === alice.user.id);
  const ack = await emitAck(a, "room:read", { roomId: room.id, seq: m.seq });
  assert.deepEqual(ack, { ok: true, lastReadSeq: m.seq });
  const [r] = await seen;
  assert.deepEqual({ roomId: r.roomId, userId: r.userId, seq: r.seq }, { roomId: room.id, userId: alice.user.id, seq: m.seq });
  a.close(); b.close();
});

test("joining over HTTP: room:member to members, room:new to the joiner, and live messages", async () => {
  const room = await roomWith(server.url, alice.token, "open door");
  const a = await connect(server.url, alice.token);
  const c = await connect(server.url, carol.token);

  const memberEvent = waitFor(a, "room:member", (e) => e.roomId === room.id && e.userId === carol.user.id);
  const newRoom = waitFor(c, "room:new", (r) => r.id === room.id);
  await api(server.url, "POST", `/api/rooms/${room.id}/join`, carol.token);

  const [mev] = await memberEvent;
  assert.equal(mev.joined, true);
  const [nr] = await newRoom;
  assert.equal(nr.name, "open door");
  assert.equal(nr.joined, true, "room:new is the room as the joiner sees it");

  // The joiner's existing socket now gets the room's messages without reconnecting.
  const got = waitFor(c, "message:new", (m) => m.roomId === room.id);
  const sent = await send(a, room.id, "welcome, carol");
  const [m] = await got;
  assert.equal(m.seq, sent.seq);
  assert.equal(m.content, "welcome, carol");
  // And can post there.
  const back = waitFor(a, "message:new", (x) => x.roomId === room.id && x.senderId === carol.user.id);
  await send(c, room.id, "thanks");
  await back;
  a.close(); c.close();
});
