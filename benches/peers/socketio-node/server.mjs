// The comparison peer for parley's load benchmarks (benches/load.rs): a chat server written
// the way the classic Next.js + socket.io chat tutorials write it. One Node.js process, npm
// `socket.io` 4.8.x with its defaults (pingInterval 25 s, pingTimeout 20 s, maxHttpBufferSize
// 1 MB), history in an in-memory array per room, nothing persisted, no accounts.
//
// Events (the same names and shapes as parley's, so the load generator's code path is the same):
//   handshake auth `{ token, rooms: [roomId, …] }` (any token is accepted; `?rooms=1,2` in the
//     query works too) joins those rooms; `room:join` `{ roomId }` joins one later.
//   `message:send` `{ roomId, content, clientId? }` -> push to the room's history array ->
//     `io.to(room).emit("message:new", message)` -> ack `{ ok: true, message }`.
// HTTP:
//   GET  /api/rooms/{id}/messages?cursor=&limit=   newest first, seqs below cursor (parley's Page)
//   POST /api/rooms/{id}/messages `{ content }`     append + broadcast (used to seed history)
//   GET  /healthz
//
// Run: `node server.mjs` (PORT, default 0 = any free port; HOST, default 127.0.0.1). It prints
// `listening on http://HOST:PORT` on stdout once it accepts connections.

import { createServer } from "node:http";
import { Server } from "socket.io";

const host = process.env.HOST ?? "127.0.0.1";
const port = Number(process.env.PORT ?? 0);

/** roomId (string) -> messages, index = seq - 1 */
const history = new Map();

function roomHistory(roomId) {
  const key = String(roomId);
  let list = history.get(key);
  if (!list) {
    list = [];
    history.set(key, list);
  }
  return list;
}

function appendMessage(roomId, senderId, content, clientId) {
  const list = roomHistory(roomId);
  const message = {
    roomId: Number(roomId),
    seq: list.length + 1,
    senderId,
    content,
    createdAt: new Date().toISOString(),
    editedAt: null,
    deleted: false,
    replyTo: null,
    attachments: [],
    clientId: clientId ?? null,
  };
  list.push(message);
  io.to(String(roomId)).emit("message:new", message);
  return message;
}

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(text),
  });
  res.end(text);
}

const httpServer = createServer((req, res) => {
  const url = new URL(req.url, "http://localhost");
  if (url.pathname === "/healthz") {
    sendJson(res, 200, { status: "ok" });
    return;
  }
  const match = /^\/api\/rooms\/(\d+)\/messages$/.exec(url.pathname);
  if (match && req.method === "GET") {
    const list = roomHistory(match[1]);
    const limit = Math.min(Number(url.searchParams.get("limit") ?? 50) || 50, 200);
    const cursorParam = url.searchParams.get("cursor");
    const cursor = cursorParam ? Number(cursorParam) : list.length + 1;
    // Seqs below the cursor, newest first.
    const end = Math.max(0, Math.min(cursor - 1, list.length));
    const start = Math.max(0, end - limit);
    const items = list.slice(start, end).reverse();
    const nextCursor = start > 0 && items.length > 0 ? items[items.length - 1].seq : null;
    sendJson(res, 200, { items, nextCursor });
    return;
  }
  if (match && req.method === "POST") {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk) => {
      body += chunk;
    });
    req.on("end", () => {
      try {
        const { content, clientId } = JSON.parse(body);
        sendJson(res, 201, appendMessage(match[1], 0, content, clientId));
      } catch {
        sendJson(res, 400, { error: { code: "invalid_json", message: "bad body" } });
      }
    });
    return;
  }
  sendJson(res, 404, { error: { code: "not_found", message: "not found" } });
});

const io = new Server(httpServer, { cors: { origin: "*" } });

io.on("connection", (socket) => {
  const auth = socket.handshake.auth ?? {};
  socket.data.userId = auth.userId ?? 0;
  let rooms = auth.rooms;
  if (!Array.isArray(rooms) && typeof socket.handshake.query.rooms === "string") {
    rooms = socket.handshake.query.rooms.split(",");
  }
  for (const room of rooms ?? []) {
    socket.join(String(room));
  }

  socket.on("room:join", ({ roomId } = {}, ack) => {
    socket.join(String(roomId));
    if (typeof ack === "function") ack({ ok: true });
  });

  socket.on("message:send", ({ roomId, content, clientId } = {}, ack) => {
    const message = appendMessage(roomId, socket.data.userId, content, clientId);
    if (typeof ack === "function") ack({ ok: true, message });
  });
});

httpServer.listen(port, host, () => {
  const address = httpServer.address();
  console.log(`listening on http://${address.address}:${address.port}`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => process.exit(0));
}
