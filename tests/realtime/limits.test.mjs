// Limits and abuse: a flooding, oversized or malformed client is refused or closed, alone;
// browser handshakes from foreign origins are refused.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import {
  startServer, register, roomWith, connect, waitFor, send, emitAck, rawRequest, eventually, closeAll,
} from "./helpers.mjs";
import http from "node:http";

after(closeAll);

async function threeInARoom(serverArgs = []) {
  const server = await startServer(serverArgs);
  const alice = await register(server.url, "alice");
  const bob = await register(server.url, "bob");
  const carol = await register(server.url, "carol");
  const room = await roomWith(server.url, alice.token, "limits", [bob.token, carol.token]);
  return { server, alice, bob, carol, room };
}

/** B and C still talk both ways in `roomId`. */
async function stillTalking(b, c, roomId, tag) {
  let got = waitFor(c, "message:new", (m) => m.roomId === roomId && m.content === `${tag} b->c`);
  await send(b, roomId, `${tag} b->c`);
  await got;
  got = waitFor(b, "message:new", (m) => m.roomId === roomId && m.content === `${tag} c->b`);
  await send(c, roomId, `${tag} c->b`);
  await got;
}

/** Open a polling Engine.IO session by hand; resolves its sid. */
async function pollingHandshake(url) {
  const res = await rawRequest(`${url}/socket.io/?EIO=4&transport=polling`);
  assert.equal(res.status, 200, `handshake: ${res.status} ${res.body}`);
  assert.equal(res.body[0], "0", `handshake body: ${res.body}`);
  return JSON.parse(res.body.slice(1)).sid;
}

/**
 * Emit `n` message:send events from `socket` at once. Resolves when a rate_limited ack came, the
 * socket was disconnected, or 10 s passed, with what was seen.
 */
async function flood(socket, roomId, n, event = "message:send") {
  const acks = [];
  let disconnected = null;
  let done;
  const finished = new Promise((resolve) => { done = resolve; });
  socket.once("disconnect", (reason) => { disconnected = reason; done(); });
  for (let i = 0; i < n; i++) {
    socket.emit(event, { roomId, content: `flood ${i}` }, (ack) => {
      acks.push(ack);
      if (acks.length === n) done();
    });
  }
  const timer = setTimeout(done, 10_000);
  await finished;
  clearTimeout(timer);
  const codes = acks.map((x) => (x?.ok ? "ok" : x?.error?.code));
  const count = (c) => codes.filter((x) => x === c).length;
  return { acks, codes, ok: count("ok"), limited: count("rate_limited"), disconnected };
}

test("200 events at once: rate_limited acks, and the other sockets keep working", async () => {
  const { server, alice, bob, carol, room } = await threeInARoom();
  const a = await connect(server.url, alice.token, { transports: ["websocket"], reconnection: false });
  const a2 = await connect(server.url, alice.token, { transports: ["websocket"] });
  const b = await connect(server.url, bob.token, { transports: ["websocket"] });
  const c = await connect(server.url, carol.token, { transports: ["polling"] });

  const seen = await flood(a, room.id, 200);

  // Everyone else in the room is unaffected, including alice's other socket.
  await stillTalking(b, c, room.id, "after flood");
  const fromA2 = waitFor(b, "message:new", (m) => m.content === "alice's other socket");
  await send(a2, room.id, "alice's other socket");
  await fromA2;

  assert.deepEqual(seen.codes.filter((x) => x !== "ok" && x !== "rate_limited"), [],
    "no ack is anything but ok or rate_limited");
  assert.ok(seen.limited >= 1,
    `at least one rate_limited ack for 200 events; got ${seen.acks.length} acks ` +
    `(${seen.ok} ok, ${seen.limited} rate_limited), disconnected: ${seen.disconnected}`);
});

test("120 typing:start at once (under the kick threshold): rate_limited, then the bucket refills", async () => {
  const { server, alice, bob, room } = await threeInARoom();
  const a = await connect(server.url, alice.token, { transports: ["websocket"], reconnection: false });
  const b = await connect(server.url, bob.token, { transports: ["websocket"] });

  // typing:start is cheap for the server, so the flood is over long before the bucket refills.
  const seen = await flood(a, room.id, 120, "typing:start");
  assert.equal(seen.disconnected, null, "fewer than 100 refusals in a row do not disconnect");
  assert.equal(seen.acks.length, 120, "every event is acked");
  assert.deepEqual(seen.codes.filter((x) => x !== "ok" && x !== "rate_limited"), []);
  assert.ok(seen.limited >= 1, `some events are refused (${seen.ok} ok, ${seen.limited} rate_limited)`);
  assert.ok(seen.ok <= 60, `the burst is about 50 events, ${seen.ok} were accepted`);
  // The first refusal comes after the burst, never before it.
  assert.ok(seen.codes.indexOf("rate_limited") >= 45, `first refusal at ${seen.codes.indexOf("rate_limited")}`);

  // 20 per second refill: a little later alice may send again (a few tries, far from 100).
  const got = waitFor(b, "message:new", (m) => m.content === "patient now");
  await eventually(async () => (await emitAck(a, "message:send", { roomId: room.id, content: "patient now" })).ok,
    3_000, "the rate limit to let alice send again", 200);
  await got;
});

test("a socket that keeps flooding (100 refusals in a row) is disconnected, alone", async () => {
  const { server, alice, bob, carol, room } = await threeInARoom();
  const a = await connect(server.url, alice.token, { transports: ["websocket"], reconnection: false });
  const b = await connect(server.url, bob.token, { transports: ["websocket"] });
  const c = await connect(server.url, carol.token, { transports: ["websocket"] });
  const seen = await flood(a, room.id, 300);
  assert.notEqual(seen.disconnected, null, `the flooder is disconnected (${seen.ok} ok, ${seen.limited} rate_limited)`);
  await stillTalking(b, c, room.id, "after kick");
});

test("a WebSocket frame over --max-payload closes only that socket", async () => {
  const { server, alice, bob, carol, room } = await threeInARoom(["--max-payload", "2048"]);
  const a = await connect(server.url, alice.token, { transports: ["websocket"], reconnection: false });
  const b = await connect(server.url, bob.token, { transports: ["websocket"] });
  const c = await connect(server.url, carol.token, { transports: ["websocket"] });
  await stillTalking(b, c, room.id, "before");

  const closed = waitFor(a, "disconnect", () => true);
  a.emit("message:send", { roomId: room.id, content: "x".repeat(10 * 1024) }, () => {});
  const [reason] = await closed;
  assert.equal(a.connected, false, `alice's socket is closed (${reason})`);

  await stillTalking(b, c, room.id, "after");
  assert.equal(b.connected && c.connected, true);
  // A message under the limit still goes through on a new connection.
  const a2 = await connect(server.url, alice.token, { transports: ["websocket"] });
  const m = await send(a2, room.id, "y".repeat(1000));
  assert.equal(m.content.length, 1000);
});

test("a polling POST over --max-payload gets 413 for that session only", async () => {
  const { server, bob, carol, room } = await threeInARoom(["--max-payload", "2048"]);
  const b = await connect(server.url, bob.token, { transports: ["polling"] });
  const c = await connect(server.url, carol.token, { transports: ["polling"] });
  const sid = await pollingHandshake(server.url);
  const res = await rawRequest(`${server.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, {
    method: "POST",
    headers: { "content-type": "text/plain;charset=UTF-8" },
    body: "4" + "z".repeat(10 * 1024),
  });
  assert.equal(res.status, 413, `POST of 10 KiB: ${res.status} ${res.body}`);
  await stillTalking(b, c, room.id, "after 413");
});

test("a malformed Engine.IO packet closes that session and nobody else's", async () => {
  const { server, bob, carol, room } = await threeInARoom();
  const b = await connect(server.url, bob.token, { transports: ["polling"] });
  const c = await connect(server.url, carol.token, { transports: ["websocket"] });
  const sid = await pollingHandshake(server.url);
  const poll = `${server.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`;
  await rawRequest(poll, { method: "POST", headers: { "content-type": "text/plain" }, body: "9garbage" });
  // The session is gone: a GET on it fails (it may first return a close packet).
  await eventually(async () => {
    const r = await rawRequest(poll);
    return r.status === 400 || (r.status === 200 && r.body.split("\x1e").includes("1"));
  }, 5_000, "the malformed session to close");
  await stillTalking(b, c, room.id, "after garbage");
});

test("browser handshakes are checked against the allowed origins", async () => {
  const server = await startServer();
  const own = server.url; // http://127.0.0.1:PORT
  const handshake = `${server.url}/socket.io/?EIO=4&transport=polling`;

  const evil = await rawRequest(handshake, { headers: { origin: "http://evil.example" } });
  assert.equal(evil.status, 403, `foreign Origin: ${evil.status} ${evil.body}`);
  const same = await rawRequest(handshake, { headers: { origin: own } });
  assert.equal(same.status, 200, `own Origin: ${same.status} ${same.body}`);
  const none = await rawRequest(handshake);
  assert.equal(none.status, 200, `no Origin (not a browser): ${none.status} ${none.body}`);
  const listedHere = await rawRequest(handshake, { headers: { origin: "http://a.example" } });
  assert.equal(listedHere.status, 403, "http://a.example is not allowed without --allowed-origins");

  // The WebSocket handshake is checked too (cross-site WebSocket hijacking).
  assert.equal(await upgradeStatus(server.url, "http://evil.example"), 403);
  assert.equal(await upgradeStatus(server.url, own), 101);

  const allowing = await startServer(["--allowed-origins", "http://a.example"]);
  const h2 = `${allowing.url}/socket.io/?EIO=4&transport=polling`;
  const listed = await rawRequest(h2, { headers: { origin: "http://a.example" } });
  assert.equal(listed.status, 200, `listed Origin: ${listed.status} ${listed.body}`);
  const stillEvil = await rawRequest(h2, { headers: { origin: "http://evil.example" } });
  assert.equal(stillEvil.status, 403);
  const ownToo = await rawRequest(h2, { headers: { origin: allowing.url } });
  assert.equal(ownToo.status, 200, "the server's own origin stays allowed");
  assert.equal(await upgradeStatus(allowing.url, "http://a.example"), 101);
});

/** Status of a raw WebSocket upgrade to /socket.io/ with the given Origin (101 when accepted). */
function upgradeStatus(url, origin) {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/socket.io/?EIO=4&transport=websocket`, {
      headers: {
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        origin,
      },
      timeout: 5_000,
    });
    req.on("upgrade", (res, socket) => {
      socket.destroy();
      resolve(res.statusCode);
    });
    req.on("response", (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on("timeout", () => req.destroy(new Error("upgrade request timed out")));
    req.on("error", reject);
    req.end();
  });
}
