// parley's own realtime client: Engine.IO v4 + Socket.IO v5 in one small ES module, no
// dependencies. WebSocket first, HTTP long-polling when WebSocket cannot open, reconnection
// with backoff, durable connection-state recovery (pid + offset), acks with timeouts, and
// emits queued while offline.
//
//   const rt = new Realtime({ url: location.origin, token });
//   rt.on("message:new", (message) => …);
//   rt.on("state", (state) => …);            // connecting | connected | reconnecting | offline
//   const ack = await rt.emit("message:send", { roomId, content, clientId });
//
// Must not: know about chat screens; it moves events, nothing else.

const SEPARATOR = "\x1e";
const DEFAULT_ACK_TIMEOUT_MS = 10_000;

/** Parses a Socket.IO packet (text form) into { type, nsp, id, data }. */
export function decodePacket(text) {
  let i = 0;
  const type = Number(text[i++]);
  if (!(type >= 0 && type <= 6)) throw new Error(`bad packet type in ${text.slice(0, 16)}`);
  if (type === 5 || type === 6) {
    const dash = text.indexOf("-", i);
    if (dash < 0) throw new Error("bad binary packet");
    i = dash + 1;
  }
  let nsp = "/";
  if (text[i] === "/") {
    const comma = text.indexOf(",", i);
    const end = comma < 0 ? text.length : comma;
    nsp = text.slice(i, end);
    i = comma < 0 ? end : end + 1;
  }
  let digits = "";
  while (i < text.length && text[i] >= "0" && text[i] <= "9") digits += text[i++];
  const id = digits ? Number(digits) : undefined;
  const data = i < text.length ? JSON.parse(text.slice(i)) : undefined;
  return { type, nsp, id, data };
}

/** Encodes an EVENT (with an ack id when given). */
export function encodeEvent(name, payload, id) {
  return `2${id === undefined ? "" : id}${JSON.stringify([name, payload])}`;
}

export class Realtime {
  /**
   * @param {object} options
   * @param {string} options.url   the server origin, e.g. location.origin
   * @param {string} [options.token]  a session token; without it the session cookie is used
   * @param {string[]} [options.transports]  ["websocket", "polling"] by default (in that order)
   * @param {Function} [options.WebSocket]  for environments without a global WebSocket
   * @param {Function} [options.fetch]      for environments without a global fetch
   */
  constructor({ url, token, transports = ["websocket", "polling"], WebSocket, fetch,
    backoffMinMs = 500, backoffMaxMs = 10_000, path = "/socket.io/" } = {}) {
    this.url = url.replace(/\/$/, "");
    this.path = path;
    this.token = token;
    this.transports = transports;
    this.WebSocket = WebSocket ?? globalThis.WebSocket;
    this.fetch = fetch ?? globalThis.fetch.bind(globalThis);
    this.backoff = { min: backoffMinMs, max: backoffMaxMs, attempt: 0 };
    this.handlers = new Map();
    this.acks = new Map();
    this.nextAckId = 0;
    this.queue = [];         // emits waiting for a connection
    this.pid = undefined;    // recovery: the private session id the server gave us
    this.offset = undefined; // recovery: the last event offset we saw
    this.recovered = false;
    this.state = "offline";
    this.closedByUser = false;
    this.transport = null;   // { name, send(text), close() }
    this.connect();
  }

  /** Listens for a server event or a lifecycle event (connect, disconnect, connect_error, state). */
  on(event, handler) {
    if (!this.handlers.has(event)) this.handlers.set(event, new Set());
    this.handlers.get(event).add(handler);
    return () => this.handlers.get(event)?.delete(handler);
  }

  dispatch(event, ...args) {
    for (const handler of this.handlers.get(event) ?? []) {
      try {
        handler(...args);
      } catch (error) {
        console.error(`parley: a "${event}" handler threw`, error);
      }
    }
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.dispatch("state", state);
  }

  /**
   * Sends an event and resolves with the server's ack. While disconnected the event waits in a
   * queue and goes out on reconnect; it rejects after `timeoutMs` either way.
   */
  emit(name, payload, { timeoutMs = DEFAULT_ACK_TIMEOUT_MS } = {}) {
    return new Promise((resolve, reject) => {
      const id = this.nextAckId++;
      const timer = setTimeout(() => {
        this.acks.delete(id);
        this.queue = this.queue.filter((q) => q.id !== id);
        reject(new Error(`no answer to ${name} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.acks.set(id, { resolve, timer });
      const text = `4${encodeEvent(name, payload, id)}`;
      if (this.state === "connected") this.transport.send(text);
      else this.queue.push({ id, text });
    });
  }

  /** Closes for good (no reconnection). */
  close() {
    this.closedByUser = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.heartbeatTimer);
    if (this.transport) {
      if (this.state === "connected") this.transport.send("41");
      this.transport.close();
    }
    this.transport = null;
    this.setState("offline");
  }

  connect() {
    this.setState(this.backoff.attempt === 0 ? "connecting" : "reconnecting");
    const tryTransport = (index) => {
      const name = this.transports[index];
      if (!name) return this.scheduleReconnect();
      const open = name === "websocket" ? this.openWebSocket() : this.openPolling();
      open.catch(() => {
        if (!this.closedByUser && !this.transport) tryTransport(index + 1);
      });
    };
    tryTransport(0);
  }

  scheduleReconnect() {
    if (this.closedByUser) return;
    const { min, max } = this.backoff;
    const delay = Math.min(max, min * 2 ** this.backoff.attempt) * (0.5 + Math.random() / 2);
    this.backoff.attempt += 1;
    this.setState("reconnecting");
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  /** The transport is gone (network, server restart, heartbeat): reconnect and recover. */
  lost(reason) {
    if (!this.transport) return;
    const wasConnected = this.state === "connected";
    this.transport = null;
    clearTimeout(this.heartbeatTimer);
    if (wasConnected) this.dispatch("disconnect", reason);
    this.scheduleReconnect();
  }

  engineUrl(transport, sid) {
    const base = `${this.url}${this.path}?EIO=4&transport=${transport}`;
    return sid ? `${base}&sid=${encodeURIComponent(sid)}` : base;
  }

  openWebSocket() {
    return new Promise((resolve, reject) => {
      const url = this.engineUrl("websocket").replace(/^http/, "ws");
      let socket;
      try {
        socket = new this.WebSocket(url);
      } catch (error) {
        reject(error);
        return;
      }
      let opened = false;
      const transport = {
        name: "websocket",
        send: (text) => socket.readyState === 1 && socket.send(text),
        close: () => socket.close(),
      };
      socket.onopen = () => {
        opened = true;
        this.transport = transport;
        resolve();
      };
      socket.onmessage = (event) => {
        if (typeof event.data === "string") this.onEnginePacket(event.data);
      };
      socket.onclose = () => {
        if (!opened) reject(new Error("websocket did not open"));
        else if (this.transport === transport) this.lost("transport close");
      };
      socket.onerror = () => {};
    });
  }

  async openPolling() {
    const handshake = await this.fetch(this.engineUrl("polling"), { credentials: "include" });
    if (!handshake.ok) throw new Error(`polling handshake failed: ${handshake.status}`);
    const body = await handshake.text();
    let open;
    try {
      open = JSON.parse(body.slice(1));
    } catch {
      throw new Error("polling handshake answered garbage");
    }
    const sid = open.sid;
    let alive = true;
    const transport = {
      name: "polling",
      send: (text) => {
        this.fetch(this.engineUrl("polling", sid), {
          method: "POST", body: text, credentials: "include",
          headers: { "content-type": "text/plain;charset=UTF-8" },
        }).then((r) => { if (!r.ok) throw new Error(`POST ${r.status}`); })
          .catch(() => { if (alive && this.transport === transport) this.lost("transport error"); });
      },
      close: () => {
        alive = false;
        transport.send("1");
      },
    };
    this.transport = transport;
    this.onEnginePacket(body);
    (async () => {
      while (alive && this.transport === transport) {
        let text;
        try {
          const response = await this.fetch(this.engineUrl("polling", sid), { credentials: "include" });
          if (!response.ok) throw new Error(`GET ${response.status}`);
          text = await response.text();
        } catch {
          if (alive && this.transport === transport) this.lost("transport error");
          return;
        }
        for (const packet of text.split(SEPARATOR)) this.onEnginePacket(packet);
      }
    })();
  }

  /** Resets the heartbeat deadline: the server pings every pingInterval. */
  armHeartbeat() {
    clearTimeout(this.heartbeatTimer);
    const transport = this.transport;
    this.heartbeatTimer = setTimeout(() => {
      if (this.transport === transport) {
        transport?.close();
        this.lost("ping timeout");
      }
    }, this.pingInterval + this.pingTimeout);
  }

  onEnginePacket(text) {
    if (!text) return;
    switch (text[0]) {
      case "0": { // open: now sign the socket in
        const open = JSON.parse(text.slice(1));
        this.pingInterval = open.pingInterval;
        this.pingTimeout = open.pingTimeout;
        this.armHeartbeat();
        const auth = { ...(this.token ? { token: this.token } : {}) };
        // A pid alone (nothing with an offset received yet) recovers from the session's start.
        if (this.pid) auth.pid = this.pid;
        if (this.pid && this.offset !== undefined) auth.offset = this.offset;
        this.transport.send(`40${JSON.stringify(auth)}`);
        break;
      }
      case "1": // the server closed the session
        this.transport?.close();
        this.lost("transport close");
        break;
      case "2": // ping
        this.armHeartbeat();
        this.transport?.send("3");
        break;
      case "4":
        this.onSocketPacket(text.slice(1));
        break;
      default: // pong, noop: nothing to do
        break;
    }
  }

  onSocketPacket(text) {
    let packet;
    try {
      packet = decodePacket(text);
    } catch (error) {
      console.error("parley: malformed packet from the server", error);
      return;
    }
    switch (packet.type) {
      case 0: { // CONNECT answer
        this.recovered = Boolean(packet.data?.pid) && packet.data.pid === this.pid;
        this.pid = packet.data?.pid;
        this.backoff.attempt = 0;
        this.setState("connected");
        this.dispatch("connect", { recovered: this.recovered });
        const waiting = this.queue;
        this.queue = [];
        for (const { text: queued } of waiting) this.transport.send(queued);
        break;
      }
      case 4: // CONNECT_ERROR: a bad token will not get better by retrying
        this.dispatch("connect_error", packet.data);
        this.close();
        break;
      case 1: // the server disconnected us on purpose: do not hammer it
        this.dispatch("disconnect", "io server disconnect");
        this.close();
        break;
      case 2: {
        const [name, ...args] = packet.data;
        if (this.pid && typeof args[args.length - 1] === "string") this.offset = args.pop();
        this.dispatch(name, ...args);
        break;
      }
      case 3: {
        const pending = this.acks.get(packet.id);
        if (pending) {
          this.acks.delete(packet.id);
          clearTimeout(pending.timer);
          pending.resolve(packet.data[0]);
        }
        break;
      }
      default:
        break;
    }
  }
}
