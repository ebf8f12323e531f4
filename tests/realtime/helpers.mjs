// Shared helpers for the realtime end-to-end suite (docs/REALTIME.md).
//
// Every file starts its own `parley serve` on a free port with a fresh data dir, talks to it
// over HTTP (setup) and Socket.IO (the thing under test), and calls `closeAll()` in an
// `after` hook so no socket or server outlives the file. Every wait here is bounded: a missing
// event fails with a message naming what was awaited instead of hanging the run.

import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import http from "node:http";
import { io } from "socket.io-client";

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, "..", "..");
export const PARLEY_BIN = process.env.PARLEY_BIN || path.join(REPO, "target", "debug", "parley");
export const PASSWORD = "correct horse";

const servers = new Set();
const sockets = new Set();

/** Resolves after `ms` milliseconds. */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Waits for a freshly spawned `parley serve` (`--log-format json`) to log the address it
 * listens on, and resolves it. Keeps draining stderr into `logs` (the last 200 lines) for the
 * life of the process so the pipe never fills up. Rejects, with the stderr tail in the
 * message, if the binary cannot run, if it exits first (`error.addrInUse` tells whether the
 * port was taken), or after 15 s (then the process is killed).
 */
export function waitForAddress(proc, exited, logs) {
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (fn, value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      fn(value);
    };
    const failure = (message, extra = {}) =>
      Object.assign(new Error(`${message}; stderr:\n${logs.slice(-20).join("\n")}`), extra);
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      finish(reject, failure("parley did not log its address within 15 s"));
    }, 15_000);
    proc.once("error", (e) =>
      finish(reject, new Error(`cannot run ${PARLEY_BIN}: ${e.message} (build it with cargo build or set PARLEY_BIN)`)));
    const lines = createInterface({ input: proc.stderr });
    const closed = new Promise((resolveClosed) => lines.once("close", resolveClosed));
    lines.on("line", (line) => {
      logs.push(line);
      if (logs.length > 200) logs.shift();
      if (done) return;
      try {
        const entry = JSON.parse(line);
        const a = entry.addr ?? entry.fields?.addr;
        if (typeof a === "string") finish(resolve, a);
      } catch {
        // not JSON: ignore
      }
    });
    // Read stderr to its end before judging an early exit, so the reason is in `logs`.
    Promise.all([exited, closed]).then(([{ code, signal }]) => {
      const addrInUse = logs.some((l) => l.includes("Address already in use"));
      finish(reject, failure(`parley exited (code ${code}, signal ${signal}) before listening`, { addrInUse }));
    });
  });
}

/**
 * Start `parley serve` on 127.0.0.1:0 with a fresh data dir. Resolves once the server logged
 * the address it listens on.
 */
export async function startServer(extraArgs = []) {
  const dataDir = await mkdtemp(path.join(tmpdir(), "parley-rt-"));
  const args = [
    "serve",
    "--listen", "127.0.0.1:0",
    "--log-format", "json",
    "--data-dir", dataDir,
    ...extraArgs,
  ];
  const proc = spawn(PARLEY_BIN, args, { stdio: ["ignore", "ignore", "pipe"] });
  const logs = []; // the last lines of stderr, for failure messages
  const exited = new Promise((resolve) => proc.once("exit", (code, signal) => resolve({ code, signal })));

  const addr = await waitForAddress(proc, exited, logs);

  let stopped = null;
  const server = {
    url: `http://${addr}`,
    addr,
    proc,
    dataDir,
    logs,
    stop() {
      if (!stopped) {
        stopped = (async () => {
          servers.delete(server);
          if (proc.exitCode === null && proc.signalCode === null) {
            proc.kill("SIGTERM");
            const timer = setTimeout(() => proc.kill("SIGKILL"), 5_000);
            await exited;
            clearTimeout(timer);
          }
          await rm(dataDir, { recursive: true, force: true });
        })();
      }
      return stopped;
    },
  };
  servers.add(server);
  return server;
}

/** One HTTP call. Resolves `{ status, body, headers }` whatever the status. */
export async function apiRaw(url, method, p, token, body, headers = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  if (body !== undefined) h["content-type"] = "application/json";
  const res = await fetch(url + p, {
    method,
    headers: h,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  let parsed = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // keep the text
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** One HTTP call that must succeed (2xx). Resolves the parsed JSON body. */
export async function api(url, method, p, token, body) {
  const res = await apiRaw(url, method, p, token, body);
  if (res.status < 200 || res.status > 299) {
    throw new Error(`${method} ${p} -> ${res.status} ${JSON.stringify(res.body)}`);
  }
  return res.body;
}

/** Register a user (password "correct horse"). Resolves `{ user, token }`. */
export async function register(url, username) {
  return api(url, "POST", "/api/auth/register", null, { username, password: PASSWORD });
}

/** Create a public room owned by `token`'s user and join every token in `others`. */
export async function roomWith(url, ownerToken, name, others = []) {
  const room = await api(url, "POST", "/api/rooms", ownerToken, { name });
  for (const t of others) await api(url, "POST", `/api/rooms/${room.id}/join`, t);
  return room;
}

/**
 * A connected Socket.IO client. `token` goes into `auth` (pass null for none). Rejects with
 * the connect_error (or a timeout) when the connection is refused.
 */
export function connect(url, token, opts = {}) {
  const { timeoutMs = 5_000, ...rest } = opts;
  const socket = io(url, {
    forceNew: true,
    reconnectionDelay: 50,
    reconnectionDelayMax: 200,
    timeout: 5_000,
    ...(token ? { auth: { token } } : {}),
    ...rest,
  });
  track(socket);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      socket.close();
      reject(new Error(`socket did not connect to ${url} within ${timeoutMs} ms`));
    }, timeoutMs);
    const onConnect = () => {
      cleanup();
      resolve(socket);
    };
    const onError = (err) => {
      cleanup();
      socket.close();
      reject(err);
    };
    const cleanup = () => {
      clearTimeout(timer);
      socket.off("connect", onConnect);
      socket.off("connect_error", onError);
    };
    socket.on("connect", onConnect);
    socket.on("connect_error", onError);
  });
}

/**
 * Try to connect and expect a refusal. Resolves the connect_error Error. Fails when the socket
 * connects instead, or nothing happens within the timeout.
 */
export function connectError(url, opts = {}, timeoutMs = 5_000) {
  const socket = io(url, {
    forceNew: true,
    reconnection: false,
    timeout: 5_000,
    ...opts,
  });
  track(socket);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`expected connect_error from ${url} within ${timeoutMs} ms, got nothing`));
    }, timeoutMs);
    socket.on("connect", () => {
      clearTimeout(timer);
      socket.close();
      reject(new Error("expected connect_error, but the socket connected"));
    });
    socket.on("connect_error", (err) => {
      clearTimeout(timer);
      socket.close();
      resolve(err);
    });
  });
}

/** Register a socket made elsewhere for cleanup by closeAll(). */
export function track(socket) {
  sockets.add(socket);
  return socket;
}

/**
 * Resolves with the argument list of the next `event` on `socket` for which
 * `predicate(...args)` is true. Only events arriving after the call count: set the wait up
 * before doing what should cause the event.
 */
export function waitFor(socket, event, predicate = () => true, timeoutMs = 5_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, handler);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for "${event}"${predicate.name ? ` (${predicate.name})` : ""}`));
    }, timeoutMs);
    const handler = (...args) => {
      let ok;
      try {
        ok = predicate(...args);
      } catch (e) {
        ok = false;
      }
      if (ok) {
        clearTimeout(timer);
        socket.off(event, handler);
        resolve(args);
      }
    };
    socket.on(event, handler);
  });
}

/** Like waitFor, for a manager / engine-level emitter (socket.io, socket.io.engine). */
export function waitForEmitter(emitter, event, timeoutMs = 5_000, what = event) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, handler);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    const handler = (...args) => {
      clearTimeout(timer);
      emitter.off(event, handler);
      resolve(args);
    };
    emitter.on(event, handler);
  });
}

/** Emit with an ack; resolves the ack's first argument. Fails after `timeoutMs`. */
export function emitAck(socket, event, ...args) {
  let timeoutMs = 5_000;
  return new Promise((resolve, reject) => {
    socket.timeout(timeoutMs).emit(event, ...args, (err, response) => {
      if (err) reject(new Error(`no ack for "${event}" within ${timeoutMs} ms (${err.message})`));
      else resolve(response);
    });
  });
}

/** `message:send` that must succeed; resolves the stored Message. */
export async function send(socket, roomId, content, extra = {}) {
  const ack = await emitAck(socket, "message:send", { roomId, content, ...extra });
  if (!ack || ack.ok !== true) {
    throw new Error(`message:send to room ${roomId} failed: ${JSON.stringify(ack)}`);
  }
  return ack.message;
}

/**
 * Record every event `socket` receives from now on: `rec.events` is a list of
 * `{ event, args }`, `rec.of(name)` the payloads (first argument) of one event name.
 */
export function record(socket) {
  const events = [];
  const listener = (event, ...args) => events.push({ event, args });
  socket.onAny(listener);
  return {
    events,
    of: (name) => events.filter((e) => e.event === name).map((e) => e.args[0]),
    stop: () => socket.offAny(listener),
  };
}

/** Poll `check()` (sync or async) until it returns a truthy value; fails after `timeoutMs`. */
export async function eventually(check, timeoutMs = 5_000, what = "condition", everyMs = 25) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    }
    await sleep(everyMs);
  }
}

/** A raw HTTP request with full control over headers (fetch hides Origin semantics). */
export function rawRequest(url, { method = "GET", headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, timeout: 5_000 }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** Close every socket and stop every server started through these helpers. */
export async function closeAll() {
  for (const s of sockets) {
    s.io.reconnection(false);
    s.close();
  }
  sockets.clear();
  await Promise.all([...servers].map((s) => s.stop()));
}
