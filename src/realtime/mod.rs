//! The Socket.IO side of parley: Engine.IO sessions become signed-in sockets, client events
//! become calls of the same `chat` functions the HTTP API uses, and committed store events
//! become broadcasts.
//!
//! | file | job |
//! | --- | --- |
//! | `socket.rs` | one socket: CONNECT (sign-in, the reads an attach needs), rate limit, dispatch, ack |
//! | `events.rs` | `ClientEvent`: parse each client event once, apply it through `chat` |
//! | `wire.rs` | every server-to-client packet, and the one error-to-ack mapping |
//! | `broadcast.rs` | the commit-feed subscriber: committed events encoded once, off the actor |
//! | `actor.rs` | the task that owns the hub: fanout, attach/detach, presence, typing |
//! | `recovery.rs` | pids of dropped sockets, replay from the event log, and why it is exact |
//!
//! Must not: touch redb directly (reads go through `Store::snapshot`), or parse Engine.IO.

mod actor;
mod broadcast;
mod events;
mod recovery;
mod socket;
mod wire;

pub use events::{ClientEvent, EVENT_NAMES, EventError};
pub use socket::{SocketHandler, SocketState};

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::chat::Chat;
use crate::engineio::{self, Engine};
use crate::feed::FeedReceiver;
use crate::hub::Hub;
use crate::ids::EventSeq;
use actor::{Actor, Command};
use recovery::{Parking, RecentEvents};

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

/// What the realtime layer has done, for `/metrics`.
#[derive(Default, Debug)]
pub struct RealtimeStats {
    /// Room broadcasts handed to a connection's queue.
    pub fanout_deliveries: crate::metrics::Counter,
    /// Connections closed because their queue was full.
    pub lagging_disconnects: crate::metrics::Counter,
    /// Attaches that fell so far behind live fanout that the actor read the store for them.
    pub attach_store_reads: crate::metrics::Counter,
}

/// What every socket of the endpoint shares.
struct Realtime {
    stats: Arc<RealtimeStats>,
    chat: Arc<Chat>,
    /// The actor's inbox. Unbounded because every command is small and answers something a
    /// socket did once (connect, disconnect, a rate-limited typing or presence change).
    commands: mpsc::UnboundedSender<Command>,
    parking: Parking,
    next_conn: AtomicU64,
    /// The endpoint, weakly: it owns us through its handler.
    engine: OnceLock<Weak<SocketEngine>>,
}

impl Realtime {
    fn weak_engine(&self) -> Weak<SocketEngine> {
        self.engine.get().cloned().unwrap_or_default()
    }

    fn engine(&self) -> Option<Arc<SocketEngine>> {
        self.engine.get().and_then(Weak::upgrade)
    }

    fn send(&self, command: Command) {
        let _ = self.commands.send(command);
    }
}

/// Builds the realtime layer: the Engine.IO endpoint, the encoder that subscribes to the
/// commit feed, and the actor behind them.
pub fn start(
    chat: Arc<Chat>,
    feed: FeedReceiver,
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
        parking: Parking::new(recovery_window),
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
    // Everything committed before now is history; the feed brings what comes after.
    let applied = chat
        .store()
        .snapshot()
        .and_then(|s| s.last_event_seq())
        .unwrap_or(EventSeq(0));
    let (encoded, broadcasts) = mpsc::channel(broadcast::ENCODED_DEPTH);
    broadcast::spawn_encoder(Arc::clone(&chat), feed, encoded);
    let actor = Actor {
        stats,
        chat,
        hub: Hub::default(),
        applied,
        recent: RecentEvents::new(applied),
        pending: Vec::new(),
        commands,
        presence_grace,
    };
    tokio::spawn(actor.run(broadcasts, inbox));
    engine
}
