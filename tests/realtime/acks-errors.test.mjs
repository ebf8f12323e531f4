// Acks and errors: every failure acks { ok:false, error:{ code } }; refused handshakes get
// connect_error, never a silent drop.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  startServer, register, api, roomWith, connect, connectError, emitAck, send, closeAll,
} from "./helpers.mjs";

let server, alice, bob, aliceRoom, sock;

before(async () => {
  server = await startServer();
  alice = await register(server.url, "alice");
  bob = await register(server.url, "bob");
  aliceRoom = await roomWith(server.url, alice.token, "alice only");
  sock = await connect(server.url, bob.token, { transports: ["websocket"] });
});
after(closeAll);

function assertError(ack, code) {
  assert.equal(typeof ack, "object", `ack should be an object, got ${JSON.stringify(ack)}`);
  assert.equal(ack.ok, false, `expected a failure ack, got ${JSON.stringify(ack)}`);
  assert.equal(ack.error?.code, code, `expected error code ${code}, got ${JSON.stringify(ack)}`);
  assert.equal(typeof ack.error.message, "string");
}

test("message:send to a room you are not a member of acks not_member", async () => {
  const ack = await emitAck(sock, "message:send", { roomId: aliceRoom.id, content: "let me in" });
  assertError(ack, "not_member");
  // Nothing was stored.
  const page = await api(server.url, "GET", `/api/rooms/${aliceRoom.id}/messages`, alice.token);
  assert.equal(page.items.length, 0);
});

test("message:send with empty content acks invalid_content", async () => {
  const room = await roomWith(server.url, bob.token, "bob's room");
  const ack = await emitAck(sock, "message:send", { roomId: room.id, content: "" });
  assertError(ack, "invalid_content");
  // Whitespace only trims to empty too.
  assertError(await emitAck(sock, "message:send", { roomId: room.id, content: "   \n " }), "invalid_content");
  // And the socket still works afterwards.
  const m = await send(sock, room.id, "fine");
  assert.equal(m.seq, 1);
});

test("an unknown event with an ack gets unknown_event", async () => {
  const ack = await emitAck(sock, "no:such:event", { roomId: 1 });
  assertError(ack, "unknown_event");
});

test("a malformed payload gets invalid_payload", async () => {
  assertError(await emitAck(sock, "message:send", "not an object"), "invalid_payload");
  assertError(await emitAck(sock, "message:send", { roomId: "one", content: "x" }), "invalid_payload");
  assertError(await emitAck(sock, "room:read", 42), "invalid_payload");
  assert.equal(sock.connected, true, "a bad payload does not close the socket");
});

test("a bad token gets connect_error with a message", async () => {
  const err = await connectError(server.url, { auth: { token: "not-a-real-token" } });
  assert.equal(typeof err.message, "string");
  assert.ok(err.message.length > 0, "connect_error has a message");
  assert.equal(err.data?.code, "unauthenticated", `data: ${JSON.stringify(err.data)}`);
});

test("no token and no cookie gets connect_error", async () => {
  const err = await connectError(server.url, {});
  assert.ok(err.message.length > 0);
  assert.equal(err.data?.code, "unauthenticated", `data: ${JSON.stringify(err.data)}`);
});

test("an unknown namespace gets connect_error Invalid namespace", async () => {
  const err = await connectError(`${server.url}/elsewhere`, { auth: { token: bob.token } });
  assert.equal(err.message, "Invalid namespace");
});

for (const transport of ["polling", "websocket"]) {
  test(`the parley_session cookie alone signs the socket in (${transport})`, async () => {
    const s = await connect(server.url, null, {
      transports: [transport],
      extraHeaders: { cookie: `parley_session=${alice.token}` },
    });
    assert.equal(s.connected, true);
    // It acts as alice: she can post in her own room.
    const m = await send(s, aliceRoom.id, `cookie works over ${transport}`);
    assert.equal(m.senderId, alice.user.id);
    s.close();
  });
}

test("a bad cookie gets connect_error", async () => {
  const err = await connectError(server.url, {
    transports: ["polling"],
    extraHeaders: { cookie: "parley_session=nope" },
  });
  assert.equal(err.data?.code, "unauthenticated", `data: ${JSON.stringify(err.data)}`);
});
