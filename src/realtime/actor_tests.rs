//! The actor's timing rules under paused tokio time (typing expiry, the presence grace
//! period), and the attach ordering that `recovery` argues for: each event once, in order.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::*;
use crate::config::Config;
use crate::hub::TYPING_TTL;
use crate::store::Store;

#[derive(Default)]
struct Recorder {
    got: Mutex<Vec<Bytes>>,
    closed: AtomicBool,
}

impl Outlet for Recorder {
    fn push(&self, packet: Bytes) -> bool {
        self.got.lock().expect("lock").push(packet);
        true
    }

    fn close_lagging(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }
}

impl Recorder {
    fn texts(&self) -> Vec<String> {
        let got = self.got.lock().expect("lock");
        got.iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    /// What it got apart from presence (its own user going online on attach).
    fn log(&self) -> Vec<String> {
        let mut texts = self.texts();
        texts.retain(|t| !t.contains(r#""presence""#));
        texts
    }

    fn saw(&self, needle: &str) -> bool {
        self.texts().iter().any(|t| t.contains(needle))
    }
}

struct Harness {
    commands: mpsc::UnboundedSender<Command>,
    broadcasts: mpsc::Sender<Vec<Arc<Broadcast>>>,
    stats: Arc<RealtimeStats>,
    _dir: tempfile::TempDir,
}

fn start(applied: u64, presence_grace: Duration) -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("parley.redb")).expect("store");
    let chat = Arc::new(Chat::new(store, &Config::default()));
    let (commands, inbox) = mpsc::unbounded_channel();
    let (broadcasts, broadcasts_rx) = mpsc::channel(8);
    let stats = Arc::new(RealtimeStats::default());
    let actor = Actor {
        stats: Arc::clone(&stats),
        chat,
        hub: Hub::default(),
        applied: EventSeq(applied),
        recent: RecentEvents::new(EventSeq(applied)),
        pending: Vec::new(),
        commands: commands.clone(),
        presence_grace,
    };
    tokio::spawn(actor.run(broadcasts_rx, inbox));
    Harness {
        commands,
        broadcasts,
        stats,
        _dir: dir,
    }
}

impl Harness {
    fn attach(
        &self,
        conn: ConnId,
        user: u64,
        rooms: &[u64],
        through: u64,
        replay: Option<Vec<&'static str>>,
    ) -> Arc<Recorder> {
        let outlet = Arc::new(Recorder::default());
        let attach = Attach {
            conn,
            user: UserId(user),
            outlet: outlet.clone(),
            connect: Bytes::from(format!("connect {conn}")),
            through: EventSeq(through),
            rooms: rooms.iter().map(|r| RoomId(*r)).collect(),
            replay: replay.map(|r| {
                r.into_iter()
                    .map(|p| Bytes::from_static(p.as_bytes()))
                    .collect()
            }),
        };
        self.send(Command::Attach(attach));
        outlet
    }

    fn send(&self, command: Command) {
        self.commands.send(command).expect("actor alive");
    }

    async fn feed(&self, batch: Vec<Arc<Broadcast>>) {
        self.broadcasts.send(batch).await.expect("actor alive");
    }
}

fn event(seq: u64, kind: EventKind, room: u64, user: u64) -> Arc<Broadcast> {
    Arc::new(Broadcast {
        seq: EventSeq(seq),
        room: RoomId(room),
        kind,
        user: UserId(user),
        packet: Bytes::from(format!("e{seq}")),
        room_new: None,
    })
}

fn message(seq: u64, room: u64) -> Arc<Broadcast> {
    event(seq, EventKind::MessageNew, room, 99)
}

/// Lets the actor run everything it has been sent.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn typing_indicator_expires_after_its_ttl_and_not_before() {
    let h = start(0, Duration::from_secs(10));
    let typist = h.attach(1, 1, &[5], 0, None);
    let reader = h.attach(2, 2, &[5], 0, None);
    settle().await;
    h.send(Command::Typing {
        room: RoomId(5),
        user: UserId(1),
        typing: true,
    });
    settle().await;
    assert!(reader.saw(r#""typing",{"roomId":5,"userId":1,"typing":true}"#));
    assert!(!typist.saw(r#""typing""#), "not echoed to the typist");

    tokio::time::sleep(TYPING_TTL - Duration::from_secs(1)).await;
    settle().await;
    assert!(
        !reader.saw(r#""typing":false"#),
        "still typing before the TTL"
    );

    tokio::time::sleep(Duration::from_secs(1) + TYPING_TICK).await;
    settle().await;
    assert!(
        reader.saw(r#""typing",{"roomId":5,"userId":1,"typing":false}"#),
        "expired after the TTL: {:?}",
        reader.texts()
    );
}

#[tokio::test(start_paused = true)]
async fn presence_goes_offline_only_after_the_grace_period() {
    let grace = Duration::from_secs(2);
    let h = start(0, grace);
    h.attach(1, 1, &[5], 0, None);
    let watcher = h.attach(2, 2, &[5], 0, None);
    settle().await;
    let offline = r#""presence",{"userId":1,"status":"offline"}"#;

    h.send(Command::Detach { conn: 1 });
    tokio::time::sleep(grace - Duration::from_millis(100)).await;
    settle().await;
    assert!(!watcher.saw(offline), "within the grace period");
    tokio::time::sleep(Duration::from_millis(200)).await;
    settle().await;
    assert!(watcher.saw(offline), "after it: {:?}", watcher.texts());

    // A reconnect within the grace period keeps the user online.
    let back = h.attach(3, 1, &[5], 0, None);
    settle().await;
    h.send(Command::Detach { conn: 2 });
    tokio::time::sleep(grace / 2).await;
    h.attach(4, 2, &[5], 0, None);
    tokio::time::sleep(grace * 2).await;
    settle().await;
    assert!(!back.saw(r#""presence",{"userId":2,"status":"offline"}"#));
}

#[tokio::test]
async fn a_recovering_attach_gets_each_missed_event_once_in_order() {
    let h = start(0, Duration::from_secs(1));
    // The socket read the log up to 2; the feed has not brought 1 and 2 yet.
    let socket = h.attach(1, 1, &[5], 2, Some(vec!["e1", "e2"]));
    settle().await;
    assert!(socket.texts().is_empty(), "held until the feed reaches 2");
    h.feed(vec![message(1, 5), message(2, 5), message(3, 5)])
        .await;
    settle().await;
    h.feed(vec![message(4, 5), message(5, 6)]).await;
    settle().await;
    assert_eq!(socket.log(), ["connect 1", "e1", "e2", "e3", "e4"]);
}

#[tokio::test]
async fn a_fresh_attach_follows_a_join_it_missed_between_its_read_and_the_actor() {
    let h = start(0, Duration::from_secs(1));
    // User 1 joins room 6 (event 1) after their socket read its rooms (through 0).
    h.feed(vec![event(1, EventKind::MemberJoin, 6, 1), message(2, 6)])
        .await;
    settle().await;
    let socket = h.attach(1, 1, &[5], 0, None);
    settle().await;
    h.feed(vec![message(3, 6)]).await;
    settle().await;
    assert_eq!(socket.log(), ["connect 1", "e3"], "subscribed to room 6");
    assert_eq!(h.stats.attach_store_reads.get(), 0);
}

#[tokio::test]
async fn an_attach_older_than_recent_events_reads_the_store_instead() {
    let h = start(0, Duration::from_secs(1));
    let events: Vec<_> = (1..=recovery::RECENT_EVENTS as u64 + 1)
        .map(|seq| message(seq, 5))
        .collect();
    h.feed(events).await;
    settle().await;
    // Room 5 is not in the (empty) store: the store's answer wins over the stale read.
    let socket = h.attach(1, 1, &[5], 0, None);
    settle().await;
    h.feed(vec![message(recovery::RECENT_EVENTS as u64 + 2, 5)])
        .await;
    settle().await;
    assert_eq!(h.stats.attach_store_reads.get(), 1);
    assert_eq!(socket.log(), ["connect 1"]);
    assert!(!socket.closed.load(Ordering::Relaxed));
}

#[tokio::test]
async fn a_socket_that_leaves_before_its_attach_is_never_attached() {
    let h = start(0, Duration::from_secs(1));
    let socket = h.attach(1, 1, &[5], 1, None);
    h.send(Command::Detach { conn: 1 });
    settle().await;
    h.feed(vec![message(1, 5)]).await;
    h.feed(vec![message(2, 5)]).await;
    settle().await;
    assert!(socket.texts().is_empty(), "{:?}", socket.texts());
}
