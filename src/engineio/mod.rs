//! Engine.IO v4 server: sessions over HTTP long-polling and WebSocket, the probe upgrade from
//! one to the other, and the server-side heartbeat. It knows nothing of Socket.IO or chat: the
//! layer above implements `Handler` and gets whole messages in, and queues packets out on the
//! session.
//!
//! fastwebsockets does the HTTP upgrade handshake; frames are ours (`frame.rs`): the reader
//! task parses client frames from a small buffer that grows only while a large message
//! arrives (fastwebsockets' reader holds 8 KiB per connection for good), forwards the pongs it
//! owes to the writer task, and collects fragments with a total-size cap. Server frames are
//! unmasked, so the writer encodes them itself and writes everything queued in one buffer with
//! one write.

pub mod frame;
pub mod packet;
pub mod session;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::{Bytes, BytesMut};
use fastwebsockets::OpCode;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use rand::RngCore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, mpsc};

use packet::Packet;
pub use session::{CloseReason, Outgoing, Session, Transport};

type Body = Full<Bytes>;

/// How long a GET that meets an upgrade in progress waits for the client's `5` before it
/// answers `6` (the reference server checks every 100 ms).
const UPGRADE_SETTLE: Duration = Duration::from_millis(100);

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

    pub fn session_count(&self) -> usize {
        self.sessions().len()
    }

    /// Open sessions as `(polling, websocket)`; a session mid-upgrade counts as polling.
    pub fn transport_counts(&self) -> (usize, usize) {
        let sessions = self.sessions();
        let websocket = sessions
            .values()
            .filter(|s| s.transport() == Transport::WebSocket)
            .count();
        (sessions.len() - websocket, websocket)
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
        self.sessions().remove(&session.sid);
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

    async fn handshake(
        self: &Arc<Self>,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let session = self.register(Transport::Polling);
        let open = self.open_packet(&session.sid, &["websocket"]);
        self.handler
            .on_open(
                &session,
                Handshake {
                    headers: request.headers().clone(),
                    peer,
                },
            )
            .await;
        text_response(open, "text/plain; charset=UTF-8")
    }

    async fn poll(self: &Arc<Self>, sid: &str) -> Response<Body> {
        let Some(session) = self.lookup(sid) else {
            return status(StatusCode::BAD_REQUEST, "session id unknown");
        };
        if session.transport() == Transport::WebSocket {
            // Refused, but the upgraded session carries on.
            return status(StatusCode::BAD_REQUEST, "session was upgraded to websocket");
        }
        if !session.begin_poll() {
            // The waiting GET answers `1`; this one is refused.
            self.close(&session, CloseReason::DuplicatePoll);
            return status(StatusCode::BAD_REQUEST, "overlapping polling requests");
        }
        let mut answer = session.wait_poll().await;
        if matches!(answer, session::PollAnswer::Noop)
            && session.wait_upgraded(UPGRADE_SETTLE).await
        {
            // The client finished the upgrade while this GET was in flight: polling is over.
            session.end_poll();
            return status(StatusCode::BAD_REQUEST, "session was upgraded to websocket");
        }
        if matches!(answer, session::PollAnswer::Noop) && session.close_reason().is_some() {
            answer = session::PollAnswer::Closed(CloseReason::TransportClose, Vec::new());
        }
        session.end_poll();
        let texts = |packets: Vec<Outgoing>| -> Vec<String> {
            packets
                .iter()
                .map(|p| match p {
                    Outgoing::Text(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                    Outgoing::Binary(bytes) => Packet::Binary(bytes.clone()).encode(),
                })
                .collect()
        };
        let body = match answer {
            session::PollAnswer::Packets(packets) => {
                packet::encode_payload(texts(packets).iter().map(String::as_str))
            }
            session::PollAnswer::Noop => Packet::Noop.encode(),
            session::PollAnswer::Closed(reason, queued) => {
                // What was queued before the close still goes out, then the close itself.
                let mut all = texts(queued);
                all.push(if reason == CloseReason::ClientClose {
                    Packet::Noop.encode()
                } else {
                    Packet::Close.encode()
                });
                packet::encode_payload(all.iter().map(String::as_str))
            }
        };
        text_response(body, "text/plain; charset=UTF-8")
    }

    async fn post(self: &Arc<Self>, request: Request<Incoming>, sid: &str) -> Response<Body> {
        let Some(session) = self.lookup(sid) else {
            return status(StatusCode::BAD_REQUEST, "session id unknown");
        };
        let limit = self.config.max_payload;
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > limit) {
            self.close(&session, CloseReason::ProtocolError);
            return status(StatusCode::PAYLOAD_TOO_LARGE, "payload too large");
        }
        let body = match http_body_util::Limited::new(request.into_body(), limit)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                self.close(&session, CloseReason::ProtocolError);
                return status(StatusCode::PAYLOAD_TOO_LARGE, "payload too large");
            }
        };
        let packets = match std::str::from_utf8(&body)
            .ok()
            .and_then(|text| packet::decode_payload(text).ok())
        {
            Some(packets) => packets,
            None => {
                tracing::debug!(sid, "malformed polling payload");
                self.close(&session, CloseReason::ProtocolError);
                return status(StatusCode::BAD_REQUEST, "bad request");
            }
        };
        for packet in packets {
            if !self.dispatch(&session, packet).await {
                return status(StatusCode::BAD_REQUEST, "bad request");
            }
        }
        text_response("ok".into(), "text/html; charset=UTF-8")
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

    async fn websocket(
        self: &Arc<Self>,
        mut request: Request<Incoming>,
        peer: SocketAddr,
        sid: Option<String>,
    ) -> Response<Body> {
        if !fastwebsockets::upgrade::is_upgrade_request(&request) {
            return status(StatusCode::BAD_REQUEST, "expected a websocket upgrade");
        }
        let existing = match &sid {
            Some(sid) => match self.lookup(sid) {
                Some(session) if session.attach_websocket() => Some(session),
                // A second socket for a session that has one: accept it and close it at once,
                // as the reference server does (a 400 here surfaces as an error in clients).
                Some(_) => return reject_websocket(request),
                None => return status(StatusCode::BAD_REQUEST, "session id unknown"),
            },
            None => None,
        };
        let headers = request.headers().clone();
        let (response, upgrade) = match fastwebsockets::upgrade::upgrade(&mut request) {
            Ok(pair) => pair,
            Err(e) => {
                if let Some(session) = &existing {
                    session.upgrade_abandoned();
                }
                return status(
                    StatusCode::BAD_REQUEST,
                    &format!("bad websocket request: {e}"),
                );
            }
        };
        let engine = Arc::clone(self);
        self.live_websockets.fetch_add(1, Ordering::AcqRel);
        tokio::spawn(async move {
            match upgrade.await {
                Ok(ws) => {
                    engine
                        .run_websocket(ws, existing, Handshake { headers, peer })
                        .await
                }
                Err(e) => {
                    tracing::debug!(error = %e, "websocket upgrade failed");
                    if let Some(session) = existing {
                        session.upgrade_abandoned();
                    }
                }
            }
            if engine.live_websockets.fetch_sub(1, Ordering::AcqRel) == 1 {
                engine.websockets_done.notify_waiters();
            }
        });
        response.map(|_| Full::new(Bytes::new()))
    }

    async fn run_websocket(
        self: &Arc<Self>,
        ws: fastwebsockets::WebSocket<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>,
        existing: Option<Arc<Session<H::State>>>,
        handshake: Handshake,
    ) {
        let (read_half, mut write_half) = tokio::io::split(ws.into_inner());
        // Replies the reader owes (pong, close echo), probe answers and wake-ups.
        let (control, mut control_rx) = mpsc::channel::<Control>(16);

        let probing = existing.is_some();
        let session = match existing {
            Some(session) => session,
            None => {
                let session = self.register(Transport::WebSocket);
                let open = self.open_packet(&session.sid, &[]);
                if control
                    .send(Control::Frame(OpCode::Text, open.into_bytes()))
                    .await
                    .is_err()
                {
                    return;
                }
                self.handler.on_open(&session, handshake).await;
                session
            }
        };

        let reader_task = tokio::spawn({
            let engine = Arc::clone(self);
            let session = Arc::clone(&session);
            let control = control.clone();
            async move {
                let reason = engine
                    .read_websocket(read_half, &session, control.clone(), probing)
                    .await;
                if probing && session.transport() != Transport::WebSocket {
                    // The probe never completed: polling carries on.
                    session.upgrade_abandoned();
                } else {
                    engine.close(&session, reason);
                }
                // Either way this socket is done: have the writer close it.
                let _ = control
                    .send(Control::Frame(
                        OpCode::Close,
                        frame::close_payload(1000, reason.as_str()),
                    ))
                    .await;
            }
        });

        // The writer: control frames first, then everything queued, one write per wake-up.
        let mut buffer = Vec::new();
        let mut closing = false;
        let on_websocket =
            |session: &Session<H::State>| session.transport() == Transport::WebSocket;
        while !closing {
            tokio::select! {
                biased;
                control_message = control_rx.recv() => match control_message {
                    Some(Control::Frame(opcode, payload)) => {
                        closing = opcode == OpCode::Close;
                        if closing && on_websocket(&session) {
                            // Whatever the session queued (acks, a disconnect) goes out first.
                            encode_outbox(&mut buffer, session.drain());
                        }
                        frame::encode(&mut buffer, opcode, &payload);
                    }
                    Some(Control::Wake) => {}
                    None => closing = true,
                },
                () = session.wait_ws(), if on_websocket(&session) => {
                    for packet in session.drain() {
                        encode_outgoing(&mut buffer, &packet);
                        if !self.config.coalesce_writes {
                            if write_half.write_all(&buffer).await.is_err() {
                                break;
                            }
                            buffer.clear();
                        }
                    }
                    if let Some(reason) = session.close_reason() {
                        if !matches!(reason, CloseReason::ClientClose | CloseReason::TransportClose) {
                            // Tell the Engine.IO client it is over before the socket closes.
                            frame::encode(&mut buffer, OpCode::Text, Packet::Close.encode().as_bytes());
                        }
                        frame::encode(&mut buffer, OpCode::Close, &frame::close_payload(1000, reason.as_str()));
                        closing = true;
                    }
                },
                () = session.closed.cancelled(), if !on_websocket(&session) => {
                    // The polling session this socket was probing for has closed.
                    frame::encode(&mut buffer, OpCode::Close, &frame::close_payload(1000, "session closed"));
                    closing = true;
                },
            }
            // Pick up whatever else is already waiting, so one write carries it all.
            while let Ok(message) = control_rx.try_recv() {
                if let Control::Frame(opcode, payload) = message {
                    closing |= opcode == OpCode::Close;
                    frame::encode(&mut buffer, opcode, &payload);
                }
            }
            if !buffer.is_empty() {
                if write_half.write_all(&buffer).await.is_err() {
                    break;
                }
                buffer.clear();
                // Idle connections should not keep a burst-sized buffer.
                if buffer.capacity() > 64 * 1024 {
                    buffer = Vec::new();
                }
            }
        }
        let _ = write_half.shutdown().await;
        reader_task.abort();
        if !probing || session.transport() == Transport::WebSocket {
            self.close(&session, CloseReason::TransportClose);
        }
    }

    /// Reads frames until the socket or session ends; returns why. Pings are answered through
    /// the writer; a close ends the loop (the writer's close frame is the echo).
    async fn read_websocket<R>(
        self: &Arc<Self>,
        mut stream: R,
        session: &Arc<Session<H::State>>,
        control: mpsc::Sender<Control>,
        mut probing: bool,
    ) -> CloseReason
    where
        R: tokio::io::AsyncRead + Unpin,
    {
        let max = self.config.max_payload;
        let mut buffer = BytesMut::with_capacity(frame::INITIAL_READ_BUFFER);
        let mut reassembler = frame::Reassembler::new(max);
        loop {
            let frame = match frame::decode_client_frame(&mut buffer, max) {
                Ok(frame::Decoded::Frame(frame)) => frame,
                Ok(frame::Decoded::NeedMore(total)) => {
                    if buffer.is_empty() && buffer.capacity() > frame::KEEP_READ_BUFFER {
                        // A large message has passed: an idle connection keeps a small buffer.
                        buffer = BytesMut::with_capacity(frame::INITIAL_READ_BUFFER);
                    }
                    buffer.reserve(total.saturating_sub(buffer.len()).max(64));
                    match stream.read_buf(&mut buffer).await {
                        Ok(0) | Err(_) => return CloseReason::TransportClose,
                        Ok(_) => continue,
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "websocket frame refused");
                    return CloseReason::ProtocolError;
                }
            };
            let message = match frame.opcode {
                OpCode::Close => return CloseReason::TransportClose,
                OpCode::Ping => {
                    let pong = Control::Frame(OpCode::Pong, frame.payload);
                    if control.send(pong).await.is_err() {
                        return CloseReason::TransportClose;
                    }
                    continue;
                }
                OpCode::Pong => continue,
                OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                    match reassembler.push(frame) {
                        Ok(Some(message)) => message,
                        Ok(None) => continue,
                        Err(e) => {
                            tracing::debug!(error = %e, "websocket message refused");
                            return CloseReason::ProtocolError;
                        }
                    }
                }
            };
            let packet = match message {
                frame::Assembled::Binary(payload) => Packet::Binary(Bytes::from(payload)),
                frame::Assembled::Text(payload) => match String::from_utf8(payload)
                    .ok()
                    .and_then(|t| Packet::decode(&t).ok())
                {
                    Some(packet) => packet,
                    None => return CloseReason::ProtocolError,
                },
            };
            if probing {
                match packet {
                    Packet::Ping(data) if data == "probe" => {
                        session.probe_answered();
                        let answer = Control::Frame(OpCode::Text, b"3probe".to_vec());
                        if control.send(answer).await.is_err() {
                            return CloseReason::TransportClose;
                        }
                    }
                    Packet::Upgrade if session.transport() == Transport::Upgrading => {
                        session.upgraded();
                        probing = false;
                        let _ = control.send(Control::Wake).await;
                    }
                    _ => return CloseReason::ProtocolError,
                }
                continue;
            }
            if !self.dispatch(session, packet).await {
                return CloseReason::ProtocolError;
            }
            if session.close_reason().is_some() {
                return CloseReason::ClientClose;
            }
        }
    }
}

/// Appends one queued packet as a WebSocket frame.
fn encode_outgoing(buffer: &mut Vec<u8>, packet: &Outgoing) {
    match packet {
        Outgoing::Text(bytes) => frame::encode(buffer, OpCode::Text, bytes),
        Outgoing::Binary(bytes) => frame::encode(buffer, OpCode::Binary, bytes),
    }
}

fn encode_outbox(buffer: &mut Vec<u8>, packets: Vec<Outgoing>) {
    for packet in &packets {
        encode_outgoing(buffer, packet);
    }
}

/// Completes a WebSocket handshake and closes the socket straight away.
fn reject_websocket(mut request: Request<Incoming>) -> Response<Body> {
    match fastwebsockets::upgrade::upgrade(&mut request) {
        Ok((response, upgrade)) => {
            tokio::spawn(async move {
                if let Ok(ws) = upgrade.await {
                    let mut stream = ws.into_inner();
                    let mut buffer = Vec::new();
                    frame::encode(
                        &mut buffer,
                        OpCode::Close,
                        &frame::close_payload(1008, "session already has a websocket"),
                    );
                    let _ = stream.write_all(&buffer).await;
                    let _ = stream.shutdown().await;
                }
            });
            response.map(|_| Full::new(Bytes::new()))
        }
        Err(e) => status(
            StatusCode::BAD_REQUEST,
            &format!("bad websocket request: {e}"),
        ),
    }
}

/// What the reader (and setup) tell the WebSocket writer.
enum Control {
    /// A frame to send before anything queued: a pong or close the reader owes, `3probe`, the
    /// open packet.
    Frame(OpCode, Vec<u8>),
    /// The session switched to this socket: start draining its outbox.
    Wake,
}
