//! The Socket.IO side of parley: turns Engine.IO sessions into signed-in sockets, client events
//! into calls of the same `chat` functions the HTTP API uses, and committed store events into
//! broadcasts.
//!
//! One actor task owns the hub. It applies the store's commit feed in commit order, and it
//! also attaches new sockets: it pushes the CONNECT answer, then (for a recovering socket)
//! every logged event the socket missed up to the last one it has applied, then subscribes the
//! socket. Later events reach it live. So a recovering client gets each event once, in order.
//!
//! Must not: touch redb directly (reads go through `Store::snapshot`), or parse Engine.IO.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use rand::RngCore;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::chat::views::{MessageView, RoomView, Viewer};
use crate::chat::{Chat, ChatError, HistoryQuery};
use crate::engineio::{self, CloseReason, Engine, Handshake, Message, Outgoing, Session};
use crate::http::request::session_token;
use crate::hub::{ConnId, Hub, Outlet, Status};
use crate::ids::{EventSeq, MessageSeq, RoomId, UserId};
use crate::socketio::{self, PacketKind};
use crate::store::records::EventKind;
use crate::store::{CommitFeed, Committed};

/// Events one socket may send in a burst, and per second after that.
pub const EVENT_BURST: f64 = 50.0;
pub const EVENTS_PER_SECOND: f64 = 20.0;
/// Refused events (over the rate) after which a socket is disconnected.
pub const ABUSE_STRIKES: u32 = 100;
/// An Engine.IO session that has not signed a socket in within this time is closed (the
/// reference server's `connectTimeout`).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(45);
/// A recovering socket that missed more than this many events starts fresh instead.
pub const MAX_REPLAY_EVENTS: u64 = 10_000;
/// Rooms one `sync` may ask about, and messages returned per room.
pub const SYNC_MAX_ROOMS: usize = 200;
pub const SYNC_MAX_MESSAGES: usize = 200;

pub type SocketEngine = Engine<SocketHandler>;

/// Wraps a Socket.IO packet in an Engine.IO message packet.
fn eio(socketio_packet: &str) -> Bytes {
    let mut text = String::with_capacity(socketio_packet.len() + 1);
    text.push('4');
    text.push_str(socketio_packet);
    Bytes::from(text)
}

fn event_packet(name: &str, payload: &Value, offset: Option<EventSeq>) -> Bytes {
    let offset = offset.map(|o| o.0.to_string());
    eio(&socketio::encode_event(
        name,
        &[&payload.to_string()],
        offset.as_deref(),
    ))
}

fn random_id() -> String {
    let mut bytes = [0u8; 15];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token bucket for client events.
struct Bucket {
    tokens: f64,
    last: Instant,
    strikes: u32,
}

impl Default for Bucket {
    fn default() -> Self {
        Bucket {
            tokens: EVENT_BURST,
            last: Instant::now(),
            strikes: 0,
        }
    }
}

impl Bucket {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * EVENTS_PER_SECOND;
        self.tokens = (self.tokens + refill).min(EVENT_BURST);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.strikes = 0;
            true
        } else {
            self.strikes += 1;
            false
        }
    }
}

struct Connected {
    viewer: Viewer,
    conn: ConnId,
    pid: String,
}

/// Per-session Socket.IO state.
#[derive(Default)]
pub struct SocketState {
    /// The session cookie of the handshake request, for clients that do not send a token.
    cookie_token: Option<String>,
    connected: Option<Connected>,
    bucket: Bucket,
    /// Binary attachments still to swallow after a refused binary event.
    binary_to_skip: u32,
}

/// A socket that dropped without saying goodbye, waiting to be recovered.
struct Parked {
    user: UserId,
    at: Instant,
}

enum Command {
    Attach {
        conn: ConnId,
        user: UserId,
        outlet: Arc<dyn Outlet>,
        connect_packet: Bytes,
        replay_after: Option<EventSeq>,
    },
    Detach {
        conn: ConnId,
    },
    Typing {
        room: RoomId,
        user: UserId,
        typing: bool,
    },
    Presence {
        user: UserId,
        status: Status,
    },
    OfflineCheck {
        user: UserId,
        generation: u64,
    },
}

/// What the realtime layer has done, for `/metrics`.
#[derive(Default, Debug)]
pub struct RealtimeStats {
    /// Room broadcasts handed to a connection's queue.
    pub fanout_deliveries: crate::metrics::Counter,
    /// Connections closed because their queue was full.
    pub lagging_disconnects: crate::metrics::Counter,
}

pub struct Realtime {
    stats: Arc<RealtimeStats>,
    chat: Arc<Chat>,
    commands: mpsc::UnboundedSender<Command>,
    parked: Mutex<HashMap<String, Parked>>,
    recovery_window: Duration,
    next_conn: AtomicU64,
    engine: OnceLock<Weak<SocketEngine>>,
}

/// The `engineio::Handler` for parley's Socket.IO endpoint.
pub struct SocketHandler {
    realtime: Arc<Realtime>,
}

struct SessionOutlet {
    session: Weak<Session<SocketState>>,
    engine: Weak<SocketEngine>,
}

impl Outlet for SessionOutlet {
    fn push(&self, packet: Bytes) -> bool {
        match self.session.upgrade() {
            Some(session) => session.push(Outgoing::Text(packet)).is_ok(),
            None => false,
        }
    }

    fn close_lagging(&self) {
        if let (Some(session), Some(engine)) = (self.session.upgrade(), self.engine.upgrade()) {
            tracing::info!(sid = %session.sid, "closing lagging connection");
            engine.close(&session, CloseReason::Lagging);
        }
    }
}

/// Builds the realtime layer: the Engine.IO endpoint and the actor that feeds it.
pub fn start(
    chat: Arc<Chat>,
    feed: CommitFeed,
    engine_config: engineio::EngineConfig,
    recovery_window: Duration,
    presence_grace: Duration,
) -> Arc<SocketEngine> {
    let (commands, inbox) = mpsc::unbounded_channel();
    let stats = Arc::new(RealtimeStats::default());
    let realtime = Arc::new(Realtime {
        stats: Arc::clone(&stats),
        chat: Arc::clone(&chat),
        commands: commands.clone(),
        parked: Mutex::new(HashMap::new()),
        recovery_window,
        next_conn: AtomicU64::new(1),
        engine: OnceLock::new(),
    });
    let engine = Engine::new(
        engine_config,
        SocketHandler {
            realtime: Arc::clone(&realtime),
        },
    );
    let _ = realtime.engine.set(Arc::downgrade(&engine));
    let last_seq = chat
        .store()
        .snapshot()
        .and_then(|s| s.last_event_seq())
        .unwrap_or(EventSeq(0));
    let actor = Actor {
        stats,
        chat,
        hub: Hub::default(),
        last_seq,
        commands,
        presence_grace,
    };
    tokio::spawn(actor.run(feed, inbox));
    engine
}

impl Realtime {
    /// The engine, weakly (it owns us through its handler).
    fn weak_engine(&self) -> Weak<SocketEngine> {
        self.engine.get().cloned().unwrap_or_default()
    }

    fn send(&self, command: Command) {
        let _ = self.commands.send(command);
    }

    fn park(&self, pid: String, user: UserId) {
        let mut parked = self.parked.lock().unwrap_or_else(|e| e.into_inner());
        let window = self.recovery_window;
        parked.retain(|_, p| p.at.elapsed() <= window);
        parked.insert(
            pid,
            Parked {
                user,
                at: Instant::now(),
            },
        );
    }

    /// The offset to replay from, if `pid` names a socket of `user` that dropped within the
    /// recovery window and missed no more than we are willing to replay.
    fn recover(&self, pid: &str, offset: &str, user: UserId) -> Option<EventSeq> {
        let parked = self
            .parked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(pid)?;
        if parked.user != user || parked.at.elapsed() > self.recovery_window {
            return None;
        }
        let offset = EventSeq(offset.parse().ok()?);
        let head = self.chat.store().snapshot().ok()?.last_event_seq().ok()?;
        (offset <= head && head.0 - offset.0 <= MAX_REPLAY_EVENTS).then_some(offset)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendPayload {
    room_id: u64,
    content: String,
    client_id: Option<String>,
    reply_to: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EditPayload {
    room_id: u64,
    seq: u64,
    content: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageRef {
    room_id: u64,
    seq: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoomRef {
    room_id: u64,
}

#[derive(Deserialize)]
struct PresencePayload {
    status: String,
}

#[derive(Deserialize)]
struct SyncPayload {
    rooms: HashMap<String, u64>,
}

fn error_ack(error: &ChatError) -> Value {
    if let ChatError::Internal(detail) = error {
        tracing::error!(error = %detail, "internal error in socket event");
    }
    let mut body = json!({"code": error.code(), "message": error.public_message()});
    if let ChatError::Invalid { field, .. } = error {
        body["field"] = json!(field);
    }
    json!({"ok": false, "error": body})
}

/// The ack of an event that answers with a message.
fn message_ack(result: Result<MessageView, ChatError>) -> Result<Value, Value> {
    result
        .map(|message| json!({"ok": true, "message": message}))
        .map_err(|e| error_ack(&e))
}

fn bad_payload(event: &str, e: &serde_json::Error) -> Value {
    json!({"ok": false, "error": {"code": "invalid_payload", "message": format!("{event}: {e}")}})
}

fn parse<T: for<'de> Deserialize<'de>>(event: &str, args: &[Value]) -> Result<T, Value> {
    let arg = args.first().cloned().unwrap_or(Value::Null);
    serde_json::from_value(arg).map_err(|e| bad_payload(event, &e))
}

impl SocketHandler {
    pub fn stats(&self) -> &RealtimeStats {
        &self.realtime.stats
    }

    fn engine(&self) -> Option<Arc<SocketEngine>> {
        self.realtime.engine.get().and_then(Weak::upgrade)
    }

    fn close(&self, session: &Arc<Session<SocketState>>, reason: CloseReason) {
        if let Some(engine) = self.engine() {
            engine.close(session, reason);
        }
    }

    async fn connect(
        &self,
        session: &Arc<Session<SocketState>>,
        state: &mut SocketState,
        namespace: &str,
        data: Option<&Value>,
    ) {
        if namespace != "/" {
            let refusal = json!({"message": "Invalid namespace"});
            let _ = session.push(Outgoing::Text(eio(&format!("4{namespace},{refusal}"))));
            return;
        }
        if state.connected.is_some() {
            return;
        }
        let token = data
            .and_then(|d| d.get("token"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| state.cookie_token.clone());
        let viewer = match token {
            Some(token) => self.realtime.chat.authenticate(&token).await,
            None => Err(ChatError::Unauthenticated),
        };
        let viewer = match viewer {
            Ok(viewer) => viewer,
            Err(e) => {
                let refusal = json!({"message": e.public_message(), "data": {"code": e.code()}});
                let _ = session.push(Outgoing::Text(eio(&format!("4{refusal}"))));
                return;
            }
        };
        let recovered = match (
            data.and_then(|d| d.get("pid")).and_then(Value::as_str),
            data.and_then(|d| d.get("offset")).and_then(Value::as_str),
        ) {
            (Some(pid), Some(offset)) => self
                .realtime
                .recover(pid, offset, viewer.id)
                .map(|after| (pid.to_owned(), after)),
            _ => None,
        };
        let (pid, replay_after) = match recovered {
            Some((pid, after)) => (pid, Some(after)),
            None => (random_id(), None),
        };
        let conn = self.realtime.next_conn.fetch_add(1, Ordering::Relaxed);
        let connect = json!({"sid": random_id(), "pid": pid});
        let outlet = Arc::new(SessionOutlet {
            session: Arc::downgrade(session),
            engine: self.realtime.weak_engine(),
        });
        tracing::debug!(user = %viewer.id, conn, recovered = replay_after.is_some(), "socket connected");
        self.realtime.send(Command::Attach {
            conn,
            user: viewer.id,
            outlet,
            connect_packet: eio(&format!("0{connect}")),
            replay_after,
        });
        state.connected = Some(Connected { viewer, conn, pid });
    }

    /// Runs one client event and returns the ack payload.
    async fn event(&self, viewer: &Viewer, name: &str, args: &[Value]) -> Value {
        let chat = &self.realtime.chat;
        let result: Result<Value, Value> = async {
            match name {
                "message:send" => {
                    let p: SendPayload = parse(name, args)?;
                    let sent = chat
                        .send_message(
                            viewer,
                            RoomId(p.room_id),
                            &p.content,
                            p.client_id.as_deref(),
                            p.reply_to,
                        )
                        .await;
                    message_ack(sent.map(|(message, _)| message))
                }
                "message:edit" => {
                    let p: EditPayload = parse(name, args)?;
                    message_ack(
                        chat.edit_message(viewer, RoomId(p.room_id), MessageSeq(p.seq), &p.content)
                            .await,
                    )
                }
                "message:delete" => {
                    let p: MessageRef = parse(name, args)?;
                    message_ack(
                        chat.delete_message(viewer, RoomId(p.room_id), MessageSeq(p.seq))
                            .await,
                    )
                }
                "room:read" => {
                    let p: MessageRef = parse(name, args)?;
                    chat.mark_read(viewer, RoomId(p.room_id), MessageSeq(p.seq))
                        .await
                        .map(|read| json!({"ok": true, "lastReadSeq": read.last_read_seq}))
                        .map_err(|e| error_ack(&e))
                }
                "typing:start" | "typing:stop" => {
                    let p: RoomRef = parse(name, args)?;
                    let room = RoomId(p.room_id);
                    chat.require_membership(viewer, room).map_err(|e| error_ack(&e))?;
                    self.realtime.send(Command::Typing {
                        room,
                        user: viewer.id,
                        typing: name == "typing:start",
                    });
                    Ok(json!({"ok": true}))
                }
                "presence:set" => {
                    let p: PresencePayload = parse(name, args)?;
                    let status = match p.status.as_str() {
                        "online" => Status::Online,
                        "away" => Status::Away,
                        _ => {
                            return Err(json!({"ok": false, "error": {"code": "invalid_status",
                                "message": "status must be online or away", "field": "status"}}));
                        }
                    };
                    self.realtime.send(Command::Presence {
                        user: viewer.id,
                        status,
                    });
                    Ok(json!({"ok": true}))
                }
                "sync" => {
                    let p: SyncPayload = parse(name, args)?;
                    if p.rooms.len() > SYNC_MAX_ROOMS {
                        return Err(json!({"ok": false, "error": {"code": "invalid_payload",
                            "message": format!("sync at most {SYNC_MAX_ROOMS} rooms at once")}}));
                    }
                    let mut rooms = serde_json::Map::new();
                    for (room, last_seq) in p.rooms {
                        let Ok(room_id) = room.parse::<u64>() else {
                            continue;
                        };
                        let page = chat.history(
                            viewer,
                            RoomId(room_id),
                            HistoryQuery {
                                cursor: None,
                                after: Some(last_seq),
                                limit: Some(SYNC_MAX_MESSAGES),
                            },
                        );
                        rooms.insert(
                            room,
                            match page {
                                Ok(page) => json!({"items": page.items, "hasMore": page.next_cursor.is_some()}),
                                Err(e) => error_ack(&e),
                            },
                        );
                    }
                    Ok(json!({"ok": true, "rooms": rooms}))
                }
                _ => Err(json!({"ok": false, "error": {"code": "unknown_event",
                    "message": format!("unknown event {name:?}")}})),
            }
        }
        .await;
        result.unwrap_or_else(|error| error)
    }
}

impl engineio::Handler for SocketHandler {
    type State = SocketState;

    async fn on_open(&self, session: &Arc<Session<SocketState>>, handshake: Handshake) {
        let cookie = session_token(&handshake.headers).map(|(token, _)| token);
        session.state.lock().await.cookie_token = cookie;
        let weak = Arc::downgrade(session);
        let engine = self.realtime.weak_engine();
        tokio::spawn(async move {
            tokio::time::sleep(CONNECT_TIMEOUT).await;
            let (Some(session), Some(engine)) = (weak.upgrade(), engine.upgrade()) else {
                return;
            };
            let never_connected = session.state.lock().await.connected.is_none();
            if never_connected && session.close_reason().is_none() {
                tracing::debug!(sid = %session.sid, "no Socket.IO connect in time");
                engine.close(&session, CloseReason::Kicked);
            }
        });
    }

    async fn on_message(&self, session: &Arc<Session<SocketState>>, message: Message) {
        let mut state = session.state.lock().await;
        let text = match message {
            Message::Binary(_) if state.binary_to_skip > 0 => {
                state.binary_to_skip -= 1;
                return;
            }
            Message::Binary(_) => return self.close(session, CloseReason::ProtocolError),
            Message::Text(text) => text,
        };
        let packet = match socketio::decode(&text) {
            Ok(packet) => packet,
            Err(e) => {
                tracing::debug!(sid = %session.sid, error = %e, "malformed socket.io packet");
                return self.close(session, CloseReason::ProtocolError);
            }
        };
        match packet.kind {
            PacketKind::Connect => {
                self.connect(session, &mut state, &packet.namespace, packet.data.as_ref())
                    .await;
            }
            PacketKind::Disconnect => {
                if let Some(connected) = state.connected.take() {
                    self.realtime.send(Command::Detach {
                        conn: connected.conn,
                    });
                }
            }
            PacketKind::Event | PacketKind::BinaryEvent => {
                if packet.kind == PacketKind::BinaryEvent {
                    state.binary_to_skip = packet.attachments;
                }
                if packet.namespace != "/" {
                    return;
                }
                let Some(connected) = &state.connected else {
                    return self.close(session, CloseReason::ProtocolError);
                };
                let viewer = connected.viewer.clone();
                let ack = if packet.kind == PacketKind::BinaryEvent {
                    json!({"ok": false, "error": {"code": "binary_unsupported",
                        "message": "binary attachments are not supported"}})
                } else if !state.bucket.take() {
                    if state.bucket.strikes >= ABUSE_STRIKES {
                        tracing::warn!(user = %viewer.id, "disconnecting a socket that keeps flooding");
                        // A Socket.IO DISCONNECT first: the client then does not reconnect on
                        // its own straight into the same flood.
                        let _ = session.push(Outgoing::Text(eio("1")));
                        return self.close(session, CloseReason::Kicked);
                    }
                    json!({"ok": false, "error": {"code": "rate_limited",
                        "message": "too many events; slow down"}})
                } else {
                    let Some((name, args)) = packet.event() else {
                        return self.close(session, CloseReason::ProtocolError);
                    };
                    // Events of one socket run one at a time, in order.
                    self.event(&viewer, name, args).await
                };
                if let Some(id) = packet.ack_id {
                    let answer = eio(&socketio::encode_ack("/", id, &ack.to_string()));
                    if session.push(Outgoing::Text(answer)).is_err() {
                        self.close(session, CloseReason::Lagging);
                    }
                }
            }
            PacketKind::Ack | PacketKind::BinaryAck => {
                // parley never asks clients for acks.
                if packet.kind == PacketKind::BinaryAck {
                    state.binary_to_skip = packet.attachments;
                }
            }
            PacketKind::ConnectError => self.close(session, CloseReason::ProtocolError),
        }
    }

    async fn on_close(&self, session: &Arc<Session<SocketState>>, reason: CloseReason) {
        let connected = session.state.lock().await.connected.take();
        if let Some(connected) = connected {
            self.realtime.send(Command::Detach {
                conn: connected.conn,
            });
            if reason.recoverable() {
                self.realtime.park(connected.pid, connected.viewer.id);
            }
        }
    }
}

/// The single owner of the hub.
struct Actor {
    stats: Arc<RealtimeStats>,
    chat: Arc<Chat>,
    hub: Hub,
    /// The newest committed event already fanned out.
    last_seq: EventSeq,
    commands: mpsc::UnboundedSender<Command>,
    presence_grace: Duration,
}

impl Actor {
    async fn run(mut self, mut feed: CommitFeed, mut inbox: mpsc::UnboundedReceiver<Command>) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                batch = feed.recv() => match batch {
                    Some(batch) => {
                        for committed in batch {
                            self.live(&committed);
                        }
                    }
                    None => break,
                },
                Some(command) = inbox.recv() => self.command(command),
                _ = tick.tick() => self.expire_typing(),
            }
            self.stats.fanout_deliveries.add(self.hub.take_delivered());
        }
        tracing::debug!("realtime actor stopped");
    }

    fn live(&mut self, committed: &Committed) {
        self.last_seq = self.last_seq.max(committed.seq);
        let event = &committed.event;
        match event.kind {
            EventKind::MemberJoin => {
                self.hub.subscribe(event.user, event.room);
                self.publish(event.room, &self.encode(committed), None);
                if let Some(packet) = self.room_new(event.user, event.room) {
                    self.close_lagging(self.hub.send_to_user(event.user, &packet));
                }
            }
            EventKind::MemberLeave => {
                // Published while the leaver is still subscribed, so their other tabs hear it.
                self.publish(event.room, &self.encode(committed), None);
                self.hub.unsubscribe(event.user, event.room);
            }
            _ => self.publish(event.room, &self.encode(committed), None),
        }
    }

    /// The broadcast packet for a logged event, with its offset for recovery.
    fn encode(&self, committed: &Committed) -> Bytes {
        let event = &committed.event;
        let offset = Some(committed.seq);
        let message = |name: &str| match &committed.message {
            Some(m) => event_packet(
                name,
                &json!(MessageView::new(event.room, event.seq, m)),
                offset,
            ),
            None => event_packet(
                name,
                &json!({"roomId": event.room, "seq": event.seq}),
                offset,
            ),
        };
        match event.kind {
            EventKind::MessageNew => message("message:new"),
            EventKind::MessageUpdate => message("message:update"),
            EventKind::MessageDelete => message("message:delete"),
            EventKind::MemberJoin | EventKind::MemberLeave => event_packet(
                "room:member",
                &json!({"roomId": event.room, "userId": event.user,
                        "joined": event.kind == EventKind::MemberJoin}),
                offset,
            ),
            EventKind::ReadMarker => event_packet(
                "room:read",
                &json!({"roomId": event.room, "userId": event.user, "seq": event.seq}),
                offset,
            ),
            EventKind::RoomUpdate => {
                let room = self
                    .chat
                    .store()
                    .snapshot()
                    .ok()
                    .and_then(|s| s.room(event.room).ok().flatten());
                let payload = match room {
                    Some(room) => json!(RoomView::base(event.room, &room)),
                    None => json!({"id": event.room}),
                };
                event_packet("room:update", &payload, offset)
            }
        }
    }

    /// `room:new` for a user who just joined a room: the room as they see it.
    fn room_new(&self, user: UserId, room: RoomId) -> Option<Bytes> {
        let snapshot = self.chat.store().snapshot().ok()?;
        let record = snapshot.room(room).ok()??;
        let view = self.chat.room_view(&snapshot, user, room, &record).ok()?;
        Some(event_packet("room:new", &json!(view), None))
    }

    fn publish(&self, room: RoomId, packet: &Bytes, skip: Option<UserId>) {
        self.close_lagging(self.hub.publish(room, packet, skip));
    }

    fn close_lagging(&self, conns: Vec<ConnId>) {
        for conn in conns {
            self.stats.lagging_disconnects.add(1);
            self.hub.close_lagging(conn);
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Attach {
                conn,
                user,
                outlet,
                connect_packet,
                replay_after,
            } => self.attach(conn, user, outlet, connect_packet, replay_after),
            Command::Detach { conn } => {
                let Some((user, last)) = self.hub.detach(conn) else {
                    return;
                };
                if let Some(generation) = last {
                    for room in self.hub.typing_stop_all(user) {
                        self.broadcast_typing(room, user, false);
                    }
                    let commands = self.commands.clone();
                    let grace = self.presence_grace;
                    tokio::spawn(async move {
                        tokio::time::sleep(grace).await;
                        let _ = commands.send(Command::OfflineCheck { user, generation });
                    });
                }
            }
            Command::OfflineCheck { user, generation } => {
                if self.hub.offline_confirmed(user, generation) {
                    self.set_board(user, None);
                    self.broadcast_presence(user, Status::Offline, &self.rooms_of(user));
                }
            }
            Command::Presence { user, status } => {
                if self.hub.set_status(user, status) {
                    self.set_board(user, Some(status));
                    self.broadcast_presence(user, status, &self.rooms_of(user));
                }
            }
            Command::Typing { room, user, typing } => {
                let changed = if typing {
                    self.hub.typing_start(room, user, Instant::now())
                } else {
                    self.hub.typing_stop(room, user)
                };
                if changed {
                    self.broadcast_typing(room, user, typing);
                }
            }
        }
    }

    fn attach(
        &mut self,
        conn: ConnId,
        user: UserId,
        outlet: Arc<dyn Outlet>,
        connect_packet: Bytes,
        replay_after: Option<EventSeq>,
    ) {
        if !outlet.push(connect_packet) {
            return outlet.close_lagging();
        }
        let rooms = self.rooms_of(user);
        if let Some(after) = replay_after
            && !self.replay(after, user, &rooms, outlet.as_ref())
        {
            return outlet.close_lagging();
        }
        let (_, first) = self.hub.attach(conn, user, outlet, rooms.iter().copied());
        if first && self.hub.set_status(user, Status::Online) {
            self.set_board(user, Some(Status::Online));
            self.broadcast_presence(user, Status::Online, &rooms);
        }
    }

    /// Pushes every logged event after `after` (up to what has been fanned out live) that
    /// concerns `user`. False if the outlet could not take them.
    fn replay(&self, after: EventSeq, user: UserId, rooms: &[RoomId], outlet: &dyn Outlet) -> bool {
        const PAGE: usize = 500;
        let Ok(snapshot) = self.chat.store().snapshot() else {
            return false;
        };
        let mut cursor = after;
        while cursor < self.last_seq {
            let Ok(events) = snapshot.events_after(cursor, PAGE) else {
                return false;
            };
            if events.is_empty() {
                break;
            }
            for (seq, event) in events {
                if seq > self.last_seq {
                    return true;
                }
                cursor = seq;
                let concerns_user = rooms.contains(&event.room) || event.user == user;
                if !concerns_user {
                    continue;
                }
                let message = match event.kind {
                    EventKind::MessageNew | EventKind::MessageUpdate | EventKind::MessageDelete => {
                        snapshot.message(event.room, event.seq).ok().flatten()
                    }
                    _ => None,
                };
                let committed = Committed {
                    seq,
                    event: event.clone(),
                    message,
                };
                if !outlet.push(self.encode(&committed)) {
                    return false;
                }
                if event.kind == EventKind::MemberJoin
                    && event.user == user
                    && let Some(packet) = self.room_new(user, event.room)
                    && !outlet.push(packet)
                {
                    return false;
                }
            }
        }
        true
    }

    fn set_board(&self, user: UserId, status: Option<Status>) {
        if let Ok(mut board) = self.chat.presence().write() {
            match status {
                Some(status) => board.insert(user, status),
                None => board.remove(&user),
            };
        }
    }

    /// The rooms `user` is a member of now (none if the store cannot say).
    fn rooms_of(&self, user: UserId) -> Vec<RoomId> {
        self.chat
            .store()
            .snapshot()
            .and_then(|s| s.rooms_of(user))
            .unwrap_or_default()
    }

    /// Tells everyone sharing one of `rooms` (the user's rooms) about their presence.
    fn broadcast_presence(&self, user: UserId, status: Status, rooms: &[RoomId]) {
        let packet = event_packet(
            "presence",
            &json!({"userId": user, "status": status.as_str()}),
            None,
        );
        self.close_lagging(self.hub.send_to_peers(user, rooms, &packet));
    }

    fn broadcast_typing(&self, room: RoomId, user: UserId, typing: bool) {
        let packet = event_packet(
            "typing",
            &json!({"roomId": room, "userId": user, "typing": typing}),
            None,
        );
        self.publish(room, &packet, Some(user));
    }

    fn expire_typing(&mut self) {
        for (room, user) in self.hub.typing_expired(Instant::now()) {
            self.broadcast_typing(room, user, false);
        }
    }
}
