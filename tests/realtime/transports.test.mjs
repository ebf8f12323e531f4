// Transports: WebSocket only, long-polling only, and polling upgraded to WebSocket.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  startServer, register, roomWith, connect, waitFor, send, closeAll, eventually,
} from "./helpers.mjs";

let server, alice, bob, room;

before(async () => {
  server = await startServer();
  alice = await register(server.url, "alice");
  bob = await register(server.url, "bob");
  room = await roomWith(server.url, alice.token, "transports", [bob.token]);
});
after(closeAll);

test("websocket-only client connects and stays on websocket", async () => {
  const s = await connect(server.url, alice.token, { transports: ["websocket"] });
  assert.equal(s.connected, true);
  assert.equal(s.io.engine.transport.name, "websocket");
  s.close();
});

test("polling-only client connects and stays on polling", async () => {
  const s = await connect(server.url, alice.token, { transports: ["polling"] });
  assert.equal(s.connected, true);
  assert.equal(s.io.engine.transport.name, "polling");
  // A round trip over polling.
  const m = await send(s, room.id, "over polling");
  assert.equal(m.content, "over polling");
  assert.equal(s.io.engine.transport.name, "polling");
  s.close();
});

test("default client starts on polling and upgrades to websocket", async () => {
  const s = await connect(server.url, alice.token);
  await eventually(() => s.io.engine.transport.name === "websocket", 5_000, "the upgrade to websocket");
  // The upgraded connection carries events.
  const m = await send(s, room.id, "after upgrade");
  assert.equal(m.content, "after upgrade");
  s.close();
});

test("a polling client and a websocket client exchange messages both ways", async () => {
  const poll = await connect(server.url, alice.token, { transports: ["polling"] });
  const ws = await connect(server.url, bob.token, { transports: ["websocket"] });

  // polling -> websocket
  let got = waitFor(ws, "message:new", (m) => m.content === "from polling");
  const sent1 = await send(poll, room.id, "from polling");
  assert.equal(typeof sent1.seq, "number");
  assert.equal(sent1.roomId, room.id);
  assert.equal(sent1.senderId, alice.user.id);
  const [recv1, offset1] = await got;
  assert.equal(recv1.seq, sent1.seq);
  assert.equal(recv1.content, "from polling");
  assert.equal(recv1.senderId, alice.user.id);
  assert.equal(typeof offset1, "string", "message:new carries its offset as a last string argument");

  // websocket -> polling
  got = waitFor(poll, "message:new", (m) => m.content === "from websocket");
  const sent2 = await send(ws, room.id, "from websocket");
  assert.ok(sent2.seq > sent1.seq, "seqs grow");
  const [recv2] = await got;
  assert.equal(recv2.seq, sent2.seq);
  assert.equal(recv2.content, "from websocket");
  assert.equal(recv2.senderId, bob.user.id);

  assert.equal(poll.io.engine.transport.name, "polling");
  assert.equal(ws.io.engine.transport.name, "websocket");
  poll.close();
  ws.close();
});
