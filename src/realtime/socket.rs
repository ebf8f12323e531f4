//! One Engine.IO session as a Socket.IO socket: CONNECT (sign-in, and the store reads an
//! attach needs, done here rather than on the actor), then each client packet in order —
//! rate-limited, parsed into a `ClientEvent`, applied, acked.
//!
//! Must not: hold rules (`chat`), encode packets by hand (`wire`), or touch the hub (the
//! actor owns it; sockets send it commands).

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use rand::RngCore;
use serde_json::Value;

use super::actor::{Attach, Command};
use super::events::{ClientEvent, EventError};
use super::recovery::{self, ReplayBudget};
use super::{
    ABUSE_STRIKES, CONNECT_TIMEOUT, EVENT_BURST, EVENTS_PER_SECOND, Realtime, RealtimeStats,
    SocketEngine, wire,
};
use crate::auth::{TokenBucket, session_token};
use crate::chat::views::Viewer;
use crate::chat::{ChatError, SessionBinding};
use crate::engineio::{self, CloseReason, Handshake, Message, Outgoing, Session};
use crate::hub::{ConnId, Outlet};
use crate::ids::{EventSeq, RoomId};
use crate::socketio::{self, PacketKind};

fn random_id() -> String {
    let mut bytes = [0u8; 15];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What a signing-in socket read from the store for its attach (`Attach` has the meaning of
/// each field).
struct Start {
    pid: String,
    through: EventSeq,
    rooms: HashSet<RoomId>,
    replay: Option<Vec<Bytes>>,
}

struct Connected {
    viewer: Viewer,
    conn: ConnId,
    pid: String,
    /// The log head this session started from (see `Parking::park`).
    since: EventSeq,
    /// Live while the session signed in with is; checked before each event.
    binding: Arc<SessionBinding>,
}

/// Per-session Socket.IO state.
pub struct SocketState {
    /// The session cookie of the handshake request, for clients that do not send a token.
    cookie_token: Option<String>,
    connected: Option<Connected>,
    bucket: TokenBucket,
    /// Binary attachments still to swallow after a refused binary event.
    binary_to_skip: u32,
}

impl Default for SocketState {
    fn default() -> Self {
        SocketState {
            cookie_token: None,
            connected: None,
            bucket: TokenBucket::new(EVENT_BURST, EVENTS_PER_SECOND, std::time::Instant::now()),
            binary_to_skip: 0,
        }
    }
}

/// The `engineio::Handler` for parley's Socket.IO endpoint.
pub struct SocketHandler {
    pub(super) realtime: Arc<Realtime>,
}

/// Where the hub puts this socket's packets: the Engine.IO session's outbox.
struct SessionOutlet {
    session: Weak<Session<SocketState>>,
    engine: Weak<SocketEngine>,
    binding: Arc<SessionBinding>,
}

impl Outlet for SessionOutlet {
    fn push(&self, packet: Bytes) -> bool {
        if !self.binding.is_live() {
            // The session ended: the socket is being closed and must hear nothing more.
            return true;
        }
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

impl SocketHandler {
    pub fn stats(&self) -> &RealtimeStats {
        &self.realtime.stats
    }

    fn close(&self, session: &Arc<Session<SocketState>>, reason: CloseReason) {
        if let Some(engine) = self.realtime.engine() {
            engine.close(session, reason);
        }
    }

    fn push(&self, session: &Arc<Session<SocketState>>, packet: Bytes) -> bool {
        session.push(Outgoing::Text(packet)).is_ok()
    }

    async fn connect(
        &self,
        session: &Arc<Session<SocketState>>,
        state: &mut SocketState,
        namespace: &str,
        data: Option<&Value>,
    ) {
        if namespace != "/" {
            self.push(session, wire::namespace_refused(namespace));
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
                self.push(session, wire::connect_refused(&e));
                return;
            }
        };
        let field = |name: &str| data.and_then(|d| d.get(name)).and_then(Value::as_str);
        let attach = match self.read_start(&viewer, field("pid"), field("offset")) {
            Ok(attach) => attach,
            Err(e) => {
                self.push(session, wire::connect_refused(&e));
                return;
            }
        };
        let Start {
            pid,
            through,
            rooms,
            replay,
        } = attach;
        let conn = self.realtime.next_conn.fetch_add(1, Ordering::Relaxed);
        let binding = self.bind_session(session, &viewer);
        let outlet = Arc::new(SessionOutlet {
            session: Arc::downgrade(session),
            engine: self.realtime.weak_engine(),
            binding: Arc::clone(&binding),
        });
        tracing::debug!(user = %viewer.id, conn, recovered = replay.is_some(), "socket connected");
        self.realtime.send(Command::Attach(Attach {
            conn,
            user: viewer.id,
            outlet,
            connect: wire::connected(&random_id(), &pid),
            through,
            rooms,
            replay,
        }));
        state.connected = Some(Connected {
            viewer,
            conn,
            pid,
            since: through,
            binding,
        });
    }

    /// Binds the socket to its session: when the session ends, by any route, the socket is
    /// told why (`session:ended`), gets a Socket.IO DISCONNECT, and is closed.
    fn bind_session(
        &self,
        session: &Arc<Session<SocketState>>,
        viewer: &Viewer,
    ) -> Arc<SessionBinding> {
        let weak = Arc::downgrade(session);
        let engine = self.realtime.weak_engine();
        self.realtime
            .chat
            .sessions()
            .bind(viewer.token_hash, viewer.id, move |reason| {
                let (Some(session), Some(engine)) = (weak.upgrade(), engine.upgrade()) else {
                    return;
                };
                tracing::debug!(sid = %session.sid, reason = reason.as_str(), "session ended: closing its socket");
                let _ = session.push(Outgoing::Text(wire::session_ended(reason)));
                let _ = session.push(Outgoing::Text(wire::disconnect()));
                engine.close(&session, CloseReason::Kicked);
            })
    }

    /// What an attach needs from the store, read from one snapshot: the log head, the user's
    /// rooms, and for a socket recovering `pid` from `offset`, the packets it missed (or a
    /// fresh pid when it cannot recover).
    fn read_start(
        &self,
        viewer: &Viewer,
        pid: Option<&str>,
        offset: Option<&str>,
    ) -> Result<Start, ChatError> {
        let chat = &self.realtime.chat;
        let snapshot = chat.store().snapshot()?;
        let through = snapshot.last_event_seq()?;
        let rooms: HashSet<_> = snapshot.rooms_of(viewer.id)?.into_iter().collect();
        // A pid without an offset is a client that received no event carrying one since
        // that session started: it missed everything after the session's start. An offset
        // older than that start is from an earlier, unrecovered session and says no more.
        let recovered = pid
            .and_then(|pid| Some((pid, self.realtime.parking.claim(pid, viewer.id)?)))
            .and_then(|(pid, since)| {
                let after = match offset {
                    Some(offset) => EventSeq(offset.parse().ok()?).max(since),
                    None => since,
                };
                recovery::read_missed(
                    chat,
                    &snapshot,
                    after,
                    through,
                    viewer.id,
                    &rooms,
                    self.replay_budget(),
                )
                .map(|missed| (pid.to_owned(), missed))
            });
        let (pid, replay) = match recovered {
            Some((pid, missed)) => (pid, Some(missed)),
            None => (random_id(), None),
        };
        Ok(Start {
            pid,
            through,
            rooms,
            replay,
        })
    }

    /// A replay must fit the connection's outbox, with room left for what arrives meanwhile.
    fn replay_budget(&self) -> ReplayBudget {
        let config = self
            .realtime
            .engine()
            .map(|e| e.config().clone())
            .unwrap_or_default();
        ReplayBudget {
            packets: config.outbox_limit_packets / 2,
            bytes: config.outbox_limit_bytes / 2,
        }
    }

    /// Rate-limits, parses and runs one event; the outcome is the ack.
    async fn event(
        &self,
        session: &Arc<Session<SocketState>>,
        state: &mut SocketState,
        packet: &socketio::Packet,
    ) -> Option<Result<Value, EventError>> {
        let connected = state.connected.as_ref()?;
        if !connected.binding.is_live() {
            return Some(Err(EventError::Chat(ChatError::Unauthenticated)));
        }
        let viewer = connected.viewer.clone();
        if packet.kind == PacketKind::BinaryEvent {
            return Some(Err(EventError::BinaryUnsupported));
        }
        if !state.bucket.take(std::time::Instant::now()) {
            if state.bucket.strikes() >= ABUSE_STRIKES {
                tracing::warn!(user = %viewer.id, "disconnecting a socket that keeps flooding");
                // A Socket.IO DISCONNECT first: the client then does not reconnect on its own
                // straight into the same flood.
                self.push(session, wire::disconnect());
                self.close(session, CloseReason::Kicked);
                return None;
            }
            return Some(Err(EventError::RateLimited));
        }
        let Some((name, args)) = packet.event() else {
            self.close(session, CloseReason::ProtocolError);
            return None;
        };
        // Events of one socket run one at a time, in order.
        Some(match ClientEvent::parse(name, args) {
            Ok(event) => event.apply(&self.realtime, &viewer).await,
            Err(e) => Err(e),
        })
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
                    self.realtime.chat.sessions().unbind(&connected.binding);
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
                if state.connected.is_none() {
                    return self.close(session, CloseReason::ProtocolError);
                }
                let Some(outcome) = self.event(session, &mut state, &packet).await else {
                    return;
                };
                // Built even without an ack id: an internal error is logged either way.
                let body = wire::ack_body(outcome);
                if let Some(id) = packet.ack_id
                    && !self.push(session, wire::ack(id, &body))
                {
                    self.close(session, CloseReason::Lagging);
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
            self.realtime.chat.sessions().unbind(&connected.binding);
            self.realtime.send(Command::Detach {
                conn: connected.conn,
            });
            if reason.recoverable() {
                self.realtime
                    .parking
                    .park(connected.pid, connected.viewer.id, connected.since);
            }
        }
    }
}
