// The web client's own realtime module (assets/js/realtime.js) against the real binary, from
// Node: `ws` stands in for the browser's WebSocket, Node's fetch for the browser's.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { Realtime, decodePacket, encodeEvent } from "../../assets/js/realtime.js";
import { startServer, register, roomWith, connect, waitFor, send, eventually, closeAll } from "./helpers.mjs";

const clients = [];
after(() => {
  for (const client of clients) client.close();
  return closeAll();
});

function realtime(url, token, options = {}) {
  const client = new Realtime({ url, token, WebSocket, backoffMinMs: 50, backoffMaxMs: 200, ...options });
  clients.push(client);
  return client;
}

function next(client, event, predicate = () => true, timeoutMs = 5_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${event} within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = client.on(event, (...args) => {
      if (!predicate(...args)) return;
      clearTimeout(timer);
      off();
      resolve(args);
    });
  });
}

test("packet helpers match the wire format", () => {
  assert.deepEqual(decodePacket('2["a",{"b":1}]'), { type: 2, nsp: "/", id: undefined, data: ["a", { b: 1 }] });
  assert.deepEqual(decodePacket("313[{}]"), { type: 3, nsp: "/", id: 13, data: [{}] });
  assert.deepEqual(decodePacket('44{"message":"x"}').data, { message: "x" });
  assert.equal(encodeEvent("m", { a: 1 }, 7), '27["m",{"a":1}]');
  assert.throws(() => decodePacket("9"));
});

for (const transports of [["websocket"], ["polling"]]) {
  test(`over ${transports[0]}: connects, sends with an ack, receives others' messages`, async () => {
    const server = await startServer();
    const alice = await register(server.url, "alice");
    const bob = await register(server.url, "bob");
    const room = await roomWith(server.url, alice.token, "general", [bob.token]);
    const client = realtime(server.url, alice.token, { transports });
    await next(client, "connect");
    assert.equal(client.state, "connected");
    assert.equal(client.transport.name, transports[0]);

    const ack = await client.emit("message:send", { roomId: room.id, content: "from the web client" });
    assert.equal(ack.ok, true);
    assert.equal(ack.message.content, "from the web client");

    const other = await connect(server.url, bob.token);
    const incoming = next(client, "message:new", (m) => m.content === "hi alice");
    await send(other, room.id, "hi alice");
    const [message] = await incoming;
    assert.equal(message.roomId, room.id);
    assert.equal(typeof client.offset, "string", "the offset is kept for recovery, not passed on");

    const refused = await client.emit("message:send", { roomId: room.id, content: "" });
    assert.equal(refused.ok, false);
    assert.equal(refused.error.code, "invalid_content");
  });
}

test("falls back to polling when WebSocket cannot open", async () => {
  const server = await startServer();
  const alice = await register(server.url, "alice");
  class NoWebSocket {
    constructor() {
      setTimeout(() => this.onclose?.({ code: 1006 }), 0);
    }
    send() {}
    close() {}
  }
  const client = realtime(server.url, alice.token, { WebSocket: NoWebSocket });
  await next(client, "connect");
  assert.equal(client.transport.name, "polling");
});

test("a bad token is a connect_error and no reconnect loop", async () => {
  const server = await startServer();
  const client = realtime(server.url, "not-a-token");
  const [error] = await next(client, "connect_error");
  assert.match(error.message, /sign in/i);
  assert.equal(client.state, "offline");
});

test("a dropped transport reconnects and recovers what it missed, in order", async () => {
  const server = await startServer();
  const alice = await register(server.url, "alice");
  const bob = await register(server.url, "bob");
  const room = await roomWith(server.url, alice.token, "general", [bob.token]);
  const client = realtime(server.url, alice.token, { backoffMinMs: 400, backoffMaxMs: 400 });
  const connected = next(client, "connect");
  const other = await connect(server.url, bob.token);
  await connected;
  const warm = next(client, "message:new", (m) => m.content === "before");
  await send(other, room.id, "before");
  await warm;

  const got = [];
  client.on("message:new", (m) => got.push(m.content));
  const back = next(client, "connect", () => true, 10_000);
  client.transport.close(); // the network drops
  const sent = [];
  for (let i = 1; i <= 10; i++) {
    await send(other, room.id, `missed ${i}`);
    sent.push(`missed ${i}`);
  }
  const [{ recovered }] = await back;
  assert.equal(recovered, true);
  await eventually(() => got.length >= 10, 5_000, "the missed messages");
  assert.deepEqual(got, sent);
});

test("emits made while disconnected go out when the connection returns", async () => {
  const server = await startServer();
  const alice = await register(server.url, "alice");
  const room = await roomWith(server.url, alice.token, "general");
  const client = realtime(server.url, alice.token, { backoffMinMs: 300, backoffMaxMs: 300 });
  await next(client, "connect");
  const down = next(client, "disconnect");
  client.transport.close();
  await down;
  assert.notEqual(client.state, "connected");
  const ack = await client.emit("message:send", { roomId: room.id, content: "typed while offline" });
  assert.equal(ack.ok, true);
  assert.equal(ack.message.content, "typed while offline");
});
