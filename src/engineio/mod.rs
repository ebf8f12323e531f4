//! Engine.IO v4 server: sessions over HTTP long-polling and WebSocket, the probe upgrade from
//! one to the other, and the server-side heartbeat. It knows nothing of Socket.IO or chat: the
//! layer above implements `Handler` and gets whole messages in, and queues packets out on the
//! session.
//!
//! This module owns the engine: the session registry, the heartbeat, and routing a request to
//! its transport and a client's packet to the handler. The transports (`polling.rs`,
//! `websocket.rs`) own their I/O; `packet.rs` and `frame.rs` are pure codecs; `session.rs` is
//! one session's state. Nothing here reads or writes a socket.

pub mod frame;
pub mod packet;
mod polling;
pub mod session;
mod websocket;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use rand::RngCore;
use tokio::sync::Notify;

use packet::Packet;
pub use session::{CloseReason, Outgoing, Session, Transport};

type Body = Full<Bytes>;

/// How long a closed polling session waits for the GET that collects its last packets.
const FINAL_POLL_LINGER: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    /// Largest message (and polling POST body) accepted, in bytes.
    pub max_payload: usize,
    /// Bytes queued for one client before it counts as lagging and is closed.
    pub outbox_limit_bytes: usize,
    /// Packets queued for one client before it counts as lagging and is closed.
    pub outbox_limit_packets: usize,
    /// Write everything queued for a WebSocket in one syscall (the default). Off, each frame
    /// is its own write, as the reference server does; only the conformance fixture wants that.
    pub coalesce_writes: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            max_payload: 1_000_000,
            outbox_limit_bytes: 4 * 1024 * 1024,
            outbox_limit_packets: 4096,
            coalesce_writes: true,
        }
    }
}

/// A whole message from the client.
pub enum Message {
    Text(String),
    Binary(Bytes),
}

/// What a session was opened with: the handshake request's headers and the client address.
pub struct Handshake {
    pub headers: HeaderMap,
    pub peer: SocketAddr,
}

/// The layer above Engine.IO (Socket.IO). Messages of one session arrive one at a time, in
/// order: the next is read only after `on_message` returns.
pub trait Handler: Send + Sync + 'static {
    type State: Default + Send + 'static;
    fn on_open(
        &self,
        session: &Arc<Session<Self::State>>,
        handshake: Handshake,
    ) -> impl Future<Output = ()> + Send;
    fn on_message(
        &self,
        session: &Arc<Session<Self::State>>,
        message: Message,
    ) -> impl Future<Output = ()> + Send;
    fn on_close(
        &self,
        session: &Arc<Session<Self::State>>,
        reason: CloseReason,
    ) -> impl Future<Output = ()> + Send;
}

pub struct Engine<H: Handler> {
    config: EngineConfig,
    pub handler: H,
    sessions: Mutex<HashMap<String, Arc<Session<H::State>>>>,
    /// WebSocket tasks still running, so shutdown can wait for their close frames.
    live_websockets: AtomicUsize,
    websockets_done: Notify,
}

fn status(code: StatusCode, message: &str) -> Response<Body> {
    // Engine.IO's own error shape: `{"code":N,"message":"…"}`.
    let numeric = match code {
        StatusCode::BAD_REQUEST => 3,
        StatusCode::FORBIDDEN => 4,
        StatusCode::PAYLOAD_TOO_LARGE => 5,
        _ => 0,
    };
    let body = serde_json::json!({"code": numeric, "message": message}).to_string();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = code;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn text_response(body: String, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn new_sid() -> String {
    let mut bytes = [0u8; 15];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

struct Query {
    transport: String,
    sid: Option<String>,
}

fn parse_query(query: Option<&str>) -> Result<Query, &'static str> {
    let mut eio = None;
    let mut transport = None;
    let mut sid = None;
    for pair in query.unwrap_or("").split('&') {
        match pair.split_once('=') {
            Some(("EIO", v)) => eio = Some(v),
            Some(("transport", v)) => transport = Some(v),
            Some(("sid", v)) => sid = Some(v.to_owned()),
            _ => {}
        }
    }
    if eio != Some("4") {
        return Err("unsupported protocol version");
    }
    match transport {
        Some(t @ ("polling" | "websocket")) => Ok(Query {
            transport: t.to_owned(),
            sid,
        }),
        _ => Err("transport unknown"),
    }
}

impl<H: Handler> Engine<H> {
    pub fn new(config: EngineConfig, handler: H) -> Arc<Engine<H>> {
        Arc::new(Engine {
            config,
            handler,
            sessions: Mutex::new(HashMap::new()),
            live_websockets: AtomicUsize::new(0),
            websockets_done: Notify::new(),
        })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Session<H::State>>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Open sessions as `(polling, websocket)`; a session mid-upgrade counts as polling.
    pub fn transport_counts(&self) -> (usize, usize) {
        let sessions = self.sessions();
        let open = sessions.values().filter(|s| s.close_reason().is_none());
        let websocket = open
            .clone()
            .filter(|s| s.transport() == Transport::WebSocket)
            .count();
        (open.count() - websocket, websocket)
    }

    /// A closed polling session kept for its last GETs (see `close`).
    fn final_poll(&self, sid: &str) -> Option<Arc<Session<H::State>>> {
        self.sessions()
            .get(sid)
            .filter(|s| s.close_reason().is_some())
            .cloned()
    }

    /// Drops a closed session from the registry (it may linger there for its last GETs).
    fn forget(&self, session: &Session<H::State>) {
        let mut sessions = self.sessions();
        if sessions
            .get(&session.sid)
            .is_some_and(|s| s.close_reason().is_some())
        {
            sessions.remove(&session.sid);
        }
    }

    fn lookup(self: &Arc<Self>, sid: &str) -> Option<Arc<Session<H::State>>> {
        let session = self.sessions().get(sid).cloned()?;
        // The heartbeat task checks on a timer; a request right at the deadline must not find
        // the session still alive.
        if session.ping_overdue(self.config.ping_timeout) {
            self.close(&session, CloseReason::PingTimeout);
            return None;
        }
        (session.close_reason().is_none()).then_some(session)
    }

    /// Closes a session (once): removes it, wakes its transports, tells the handler.
    pub fn close(self: &Arc<Self>, session: &Arc<Session<H::State>>, reason: CloseReason) {
        if !session.mark_closed(reason) {
            return;
        }
        if session.transport() == Transport::Polling && session.has_queued() {
            // A polling client hears of the close only from its next GETs: the session stays
            // findable (`final_poll`) until one has carried what was queued before the close
            // (a DISCONNECT, the reason for it) and the next has carried the close.
            let engine = Arc::downgrade(self);
            let sid = session.sid.clone();
            tokio::spawn(async move {
                tokio::time::sleep(FINAL_POLL_LINGER).await;
                if let Some(engine) = engine.upgrade() {
                    engine.sessions().remove(&sid);
                }
            });
        } else {
            self.sessions().remove(&session.sid);
        }
        tracing::debug!(sid = %session.sid, reason = reason.as_str(), "engine.io session closed");
        let engine = Arc::clone(self);
        let session = Arc::clone(session);
        tokio::spawn(async move { engine.handler.on_close(&session, reason).await });
    }

    /// Closes every session and waits (at most `grace`) for WebSockets to send their close.
    pub async fn shutdown(self: &Arc<Self>, grace: Duration) {
        let all: Vec<_> = self.sessions().values().cloned().collect();
        for session in &all {
            self.close(session, CloseReason::ServerShutdown);
        }
        let wait = async {
            while self.live_websockets.load(Ordering::Acquire) > 0 {
                let notified = self.websockets_done.notified();
                if self.live_websockets.load(Ordering::Acquire) == 0 {
                    break;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(grace, wait).await;
    }

    fn open_packet(&self, sid: &str, upgrades: &[&str]) -> String {
        let open = serde_json::json!({
            "sid": sid,
            "upgrades": upgrades,
            "pingInterval": self.config.ping_interval.as_millis() as u64,
            "pingTimeout": self.config.ping_timeout.as_millis() as u64,
            "maxPayload": self.config.max_payload,
        });
        Packet::Open(open.to_string()).encode()
    }

    fn register(self: &Arc<Self>, transport: Transport) -> Arc<Session<H::State>> {
        let session = Arc::new(Session::new(
            new_sid(),
            transport,
            self.config.outbox_limit_bytes,
            self.config.outbox_limit_packets,
        ));
        self.sessions()
            .insert(session.sid.clone(), Arc::clone(&session));
        self.spawn_heartbeat(Arc::clone(&session));
        session
    }

    /// Sends `2` a ping interval after the last pong (or the handshake) and closes the session
    /// when a pong is later than the ping timeout, as the reference server does.
    fn spawn_heartbeat(self: &Arc<Self>, session: Arc<Session<H::State>>) {
        let engine = Arc::clone(self);
        tokio::spawn(async move {
            let interval = engine.config.ping_interval;
            let timeout = engine.config.ping_timeout;
            loop {
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    () = session.closed.cancelled() => return,
                }
                session.ping_sent();
                if session
                    .push(Outgoing::Text(Bytes::from_static(b"2")))
                    .is_err()
                {
                    engine.close(&session, CloseReason::Lagging);
                    return;
                }
                tokio::select! {
                    () = session.pong() => {}
                    () = tokio::time::sleep(timeout) => {
                        if session.ping_overdue(timeout) {
                            engine.close(&session, CloseReason::PingTimeout);
                            return;
                        }
                    }
                    () = session.closed.cancelled() => return,
                }
            }
        });
    }

    /// Serves a request under the Engine.IO path. The caller has checked Origin.
    pub async fn handle(
        self: &Arc<Self>,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let query = match parse_query(request.uri().query()) {
            Ok(query) => query,
            Err(message) => return status(StatusCode::BAD_REQUEST, message),
        };
        match (query.transport.as_str(), request.method(), query.sid) {
            ("websocket", &Method::GET, sid) => self.websocket(request, peer, sid).await,
            ("polling", &Method::GET, None) => self.handshake(request, peer).await,
            ("polling", &Method::GET, Some(sid)) => self.poll(&sid).await,
            ("polling", &Method::POST, Some(sid)) => self.post(request, &sid).await,
            _ => status(StatusCode::BAD_REQUEST, "bad handshake method"),
        }
    }

    /// Handles one packet from the client. `false` when it broke the protocol (the session is
    /// then closed).
    async fn dispatch(self: &Arc<Self>, session: &Arc<Session<H::State>>, packet: Packet) -> bool {
        match packet {
            Packet::Pong(_) => session.pong_received(),
            Packet::Message(text) => {
                self.handler.on_message(session, Message::Text(text)).await;
            }
            Packet::Binary(bytes) => {
                self.handler
                    .on_message(session, Message::Binary(bytes))
                    .await;
            }
            Packet::Close => self.close(session, CloseReason::ClientClose),
            Packet::Open(_) | Packet::Ping(_) | Packet::Upgrade | Packet::Noop => {
                self.close(session, CloseReason::ProtocolError);
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::{Instant, sleep_until};

    /// Records why sessions closed, and does nothing else.
    #[derive(Default)]
    struct Recorder {
        closed: Mutex<Vec<CloseReason>>,
    }

    impl Handler for Recorder {
        type State = ();

        async fn on_open(&self, _: &Arc<Session<()>>, _: Handshake) {}

        async fn on_message(&self, _: &Arc<Session<()>>, _: Message) {}

        async fn on_close(&self, _: &Arc<Session<()>>, reason: CloseReason) {
            self.closed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(reason);
        }
    }

    const INTERVAL: Duration = Duration::from_millis(1000);
    const TIMEOUT: Duration = Duration::from_millis(500);
    /// Checks sit a millisecond either side of a deadline: at the deadline itself the
    /// heartbeat and the test wake together, in no set order.
    const MS: Duration = Duration::from_millis(1);

    fn engine() -> Arc<Engine<Recorder>> {
        let config = EngineConfig {
            ping_interval: INTERVAL,
            ping_timeout: TIMEOUT,
            ..EngineConfig::default()
        };
        Engine::new(config, Recorder::default())
    }

    /// Pings queued since the last call.
    fn pings(session: &Session<()>) -> usize {
        session
            .drain()
            .iter()
            .filter(|p| matches!(p, Outgoing::Text(b) if b.as_ref() == b"2"))
            .count()
    }

    fn closes(engine: &Engine<Recorder>) -> Vec<CloseReason> {
        engine
            .handler
            .closed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    #[tokio::test(start_paused = true)]
    async fn an_unanswered_ping_closes_the_session_at_interval_plus_timeout_and_not_before() {
        let engine = engine();
        let session = engine.register(Transport::Polling);
        let start = Instant::now();

        sleep_until(start + INTERVAL - MS).await;
        assert_eq!(pings(&session), 0, "no ping before the interval");
        sleep_until(start + INTERVAL + MS).await;
        assert_eq!(pings(&session), 1);

        sleep_until(start + INTERVAL + TIMEOUT - MS).await;
        assert_eq!(session.close_reason(), None, "closed before the timeout");
        assert!(engine.lookup(&session.sid).is_some());

        // At the deadline exactly, whichever runs first (the heartbeat or a request's lookup)
        // closes it.
        sleep_until(start + INTERVAL + TIMEOUT).await;
        assert!(engine.lookup(&session.sid).is_none());
        assert_eq!(session.close_reason(), Some(CloseReason::PingTimeout));
        assert_eq!(engine.transport_counts(), (0, 0));
        tokio::task::yield_now().await;
        assert_eq!(closes(&engine), [CloseReason::PingTimeout], "told once");
    }

    #[tokio::test(start_paused = true)]
    async fn a_pong_in_time_keeps_the_session_and_the_next_ping_is_an_interval_after_it() {
        let engine = engine();
        let session = engine.register(Transport::Polling);
        let start = Instant::now();
        sleep_until(start + INTERVAL + MS).await;
        assert_eq!(pings(&session), 1);

        let pong_at = start + INTERVAL + TIMEOUT - MS;
        sleep_until(pong_at).await;
        assert!(engine.dispatch(&session, Packet::Pong(String::new())).await);
        sleep_until(start + INTERVAL + TIMEOUT + MS).await;
        assert_eq!(session.close_reason(), None, "the pong came in time");

        sleep_until(pong_at + INTERVAL - MS).await;
        assert_eq!(pings(&session), 0);
        sleep_until(pong_at + INTERVAL + MS).await;
        assert_eq!(pings(&session), 1);

        // The second ping goes unanswered: the same rule, counted from it.
        sleep_until(pong_at + INTERVAL + TIMEOUT - MS).await;
        assert_eq!(session.close_reason(), None);
        sleep_until(pong_at + INTERVAL + TIMEOUT + MS).await;
        assert_eq!(session.close_reason(), Some(CloseReason::PingTimeout));
        assert!(engine.lookup(&session.sid).is_none());
    }
}
