// Heartbeat: the server pings every --ping-interval-ms; a client that answers stays connected,
// a session that never answers is closed.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  startServer, register, roomWith, connect, waitFor, send, rawRequest, eventually, sleep, closeAll,
} from "./helpers.mjs";

let server, alice, bob, room;

before(async () => {
  server = await startServer(["--ping-interval-ms", "300", "--ping-timeout-ms", "300"]);
  alice = await register(server.url, "alice");
  bob = await register(server.url, "bob");
  room = await roomWith(server.url, alice.token, "heartbeat", [bob.token]);
});
after(closeAll);

for (const transport of ["websocket", "polling"]) {
  test(`a ${transport} client that answers pings stays connected`, async () => {
    const s = await connect(server.url, alice.token, { transports: [transport], reconnection: false });
    const sid = s.io.engine.id;
    const t0 = Date.now();
    const pingsAt = []; // ms since connect, only for the failure message
    s.io.engine.on("ping", () => pingsAt.push(Date.now() - t0));
    const pings = () => pingsAt.length;
    const disconnects = [];
    s.on("disconnect", (reason) => disconnects.push(`${reason} at ${Date.now() - t0} ms`));

    await sleep(2_200); // seven ping intervals
    assert.deepEqual(disconnects, [],
      `no disconnect while pings are answered (pingInterval 300, pingTimeout 300; pings received at ${JSON.stringify(pingsAt)} ms)`);
    assert.equal(s.connected, true);
    assert.equal(s.io.engine.id, sid, "the same Engine.IO session throughout");
    assert.ok(pings() >= 3, `the server pinged (${pings()} pings in 2.2 s at a 300 ms interval)`);

    // And the connection still carries events.
    const b = await connect(server.url, bob.token, { transports: ["websocket"] });
    const got = waitFor(b, "message:new", (m) => m.content === `still here over ${transport}`);
    await send(s, room.id, `still here over ${transport}`);
    await got;
    s.close();
    b.close();
  });
}

test("a session that never answers pings is closed", async () => {
  const hs = await rawRequest(`${server.url}/socket.io/?EIO=4&transport=polling`);
  assert.equal(hs.status, 200);
  const open = JSON.parse(hs.body.slice(1));
  assert.equal(open.pingInterval, 300);
  assert.equal(open.pingTimeout, 300);
  // Never poll, never pong: after interval + timeout the session is gone.
  const poll = `${server.url}/socket.io/?EIO=4&transport=polling&sid=${open.sid}`;
  await eventually(async () => (await rawRequest(poll)).status === 400, 5_000,
    "the silent session to be closed (GET on its sid -> 400)", 200);
});
