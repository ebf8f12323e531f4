//! Model-based test of the store: seeded random sequences of ops run through the real `Store`
//! on a real redb file, and the same ops run on a plain in-memory model of what the store
//! promises. After every step the two must agree: each op's result, every room's history and
//! members, the durable event log and the commit feed. At the end the file is reopened and
//! checked again.
//!
//! Some steps issue several ops at once so they share a group-commit batch. They are sent in a
//! known order (each op's future is polled once, in turn, and that first poll queues it), so
//! the model can apply them in the same order, and a parked write holds the writer until all
//! of them are queued, so they really do land in one batch.
//!
//! A failure prints its seed; `STORE_MODEL_SEED=<seed>` reruns just that one.
//! `STORE_MODEL_SEEDS` and `STORE_MODEL_OPS` change how many seeds and ops per seed run.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::task::Poll;

use parley::ids::{ClientId, EventSeq, MessageSeq, RoomId, UserId};
use parley::store::records::{
    EventKind, MemberRecord, MessageRecord, RoomKind, RoomRole, Visibility,
};
use parley::store::{
    Admission, AppendOutcome, CommitFeed, Committed, NewMessage, Store, StoreError,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DEFAULT_SEEDS: u64 = 20;
const DEFAULT_OPS: usize = 300;
/// Usernames are drawn from this many, in varying case, so some registrations collide.
const NAME_POOL: u64 = 14;

#[derive(Clone, Debug)]
enum Op {
    CreateUser {
        username: String,
    },
    CreateRoom {
        creator: UserId,
        name: String,
    },
    OpenDirect {
        a: UserId,
        b: UserId,
    },
    UpdateRoom {
        room: RoomId,
        actor: UserId,
        topic: Option<String>,
    },
    AddMember {
        room: RoomId,
        user: UserId,
        role: RoomRole,
    },
    RemoveMember {
        room: RoomId,
        user: UserId,
    },
    Append {
        room: RoomId,
        sender: UserId,
        body: String,
        client_id: Option<u128>,
        reply_to: Option<u64>,
    },
    Edit {
        room: RoomId,
        seq: u64,
        actor: UserId,
        body: String,
    },
    Delete {
        room: RoomId,
        seq: u64,
        actor: UserId,
    },
    MarkRead {
        room: RoomId,
        user: UserId,
        seq: u64,
    },
}

/// What an op returned, reduced to what the store promises (times are left out).
#[derive(Clone, Debug, PartialEq)]
enum Value {
    User {
        id: UserId,
        is_admin: bool,
    },
    Room {
        id: RoomId,
        created: bool,
    },
    RoomUpdated {
        name: String,
        topic: Option<String>,
    },
    Member {
        role: RoomRole,
        last_read: u64,
    },
    Unit,
    Appended {
        seq: u64,
        replayed: bool,
        message: Msg,
    },
    Message(Msg),
    ReadUpTo(u64),
}

/// A refusal, by its debug form (`NotFound("room")`, `NotMember`, …).
type Outcome = Result<Value, String>;

fn refused(e: StoreError) -> Outcome {
    Err(format!("{e:?}"))
}

#[derive(Clone, Debug, PartialEq)]
struct Msg {
    sender: UserId,
    body: String,
    client_id: Option<u128>,
    reply_to: Option<u64>,
    edited: bool,
    deleted: bool,
}

impl Msg {
    fn of(m: &MessageRecord) -> Msg {
        Msg {
            sender: m.sender,
            body: m.body.clone(),
            client_id: m.client_id.map(|c| c.0),
            reply_to: m.reply_to.map(|s| s.0),
            edited: m.edited_at.is_some(),
            deleted: m.deleted,
        }
    }
}

#[derive(Clone, Debug)]
struct ModelRoom {
    kind: RoomKind,
    name: String,
    topic: Option<String>,
    /// user -> (role, last read seq).
    members: BTreeMap<UserId, (RoomRole, u64)>,
    /// Index i holds seq i + 1.
    messages: Vec<Msg>,
    client_ids: HashMap<u128, u64>,
}

/// (kind, room, seq, user) of one logged event, plus the message a message event carries.
type ModelEvent = (EventKind, RoomId, u64, UserId, Option<Msg>);

#[derive(Default)]
struct Model {
    /// Lowercased username -> id; ids are dense from 1.
    usernames: HashMap<String, UserId>,
    users: u64,
    rooms: BTreeMap<RoomId, ModelRoom>,
    directs: HashMap<(UserId, UserId), RoomId>,
    events: Vec<ModelEvent>,
}

impl Model {
    fn user_exists(&self, user: UserId) -> bool {
        (1..=self.users).contains(&user.0)
    }

    fn new_room(&mut self, kind: RoomKind, name: String, topic: Option<String>) -> RoomId {
        let id = RoomId(self.rooms.len() as u64 + 1);
        self.rooms.insert(
            id,
            ModelRoom {
                kind,
                name,
                topic,
                members: BTreeMap::new(),
                messages: Vec::new(),
                client_ids: HashMap::new(),
            },
        );
        id
    }

    fn join(&mut self, room: RoomId, user: UserId, role: RoomRole) -> u64 {
        let r = self.rooms.get_mut(&room).expect("model room");
        // Joining does not make old history unread.
        let last_read = r.messages.len() as u64;
        r.members.insert(user, (role, last_read));
        self.events
            .push((EventKind::MemberJoin, room, 0, user, None));
        last_read
    }

    /// Applies `op` as the store documents it and returns what the store must answer.
    fn apply(&mut self, op: &Op) -> Outcome {
        match op.clone() {
            Op::CreateUser { username } => {
                let key = username.to_lowercase();
                if self.usernames.contains_key(&key) {
                    return refused(StoreError::UsernameTaken);
                }
                self.users += 1;
                let id = UserId(self.users);
                self.usernames.insert(key, id);
                Ok(Value::User {
                    id,
                    is_admin: id == UserId(1),
                })
            }
            Op::CreateRoom { creator, name } => {
                if !self.user_exists(creator) {
                    return refused(StoreError::NotFound("user"));
                }
                let id = self.new_room(RoomKind::Group, name, None);
                self.join(id, creator, RoomRole::Owner);
                Ok(Value::Room { id, created: true })
            }
            Op::OpenDirect { a, b } => {
                let key = (a.min(b), a.max(b));
                if let Some(id) = self.directs.get(&key) {
                    return Ok(Value::Room {
                        id: *id,
                        created: false,
                    });
                }
                if !self.user_exists(a) || !self.user_exists(b) {
                    return refused(StoreError::NotFound("user"));
                }
                let id = self.new_room(RoomKind::Direct, String::new(), None);
                self.join(id, a, RoomRole::Member);
                self.join(id, b, RoomRole::Member);
                self.directs.insert(key, id);
                Ok(Value::Room { id, created: true })
            }
            Op::UpdateRoom { room, actor, topic } => {
                let Some(r) = self.rooms.get_mut(&room) else {
                    return refused(StoreError::NotFound("room"));
                };
                r.topic = topic;
                let value = Value::RoomUpdated {
                    name: r.name.clone(),
                    topic: r.topic.clone(),
                };
                self.events
                    .push((EventKind::RoomUpdate, room, 0, actor, None));
                Ok(value)
            }
            Op::AddMember { room, user, role } => {
                let Some(r) = self.rooms.get(&room) else {
                    return refused(StoreError::NotFound("room"));
                };
                if !self.user_exists(user) {
                    return refused(StoreError::NotFound("user"));
                }
                if r.members.contains_key(&user) {
                    return refused(StoreError::AlreadyMember);
                }
                let last_read = self.join(room, user, role);
                Ok(Value::Member { role, last_read })
            }
            Op::RemoveMember { room, user } => {
                let Some(r) = self.rooms.get_mut(&room) else {
                    return refused(StoreError::NotFound("room"));
                };
                if r.members.remove(&user).is_none() {
                    return refused(StoreError::NotMember);
                }
                self.events
                    .push((EventKind::MemberLeave, room, 0, user, None));
                Ok(Value::Unit)
            }
            Op::Append {
                room,
                sender,
                body,
                client_id,
                reply_to,
            } => {
                let Some(r) = self.rooms.get_mut(&room) else {
                    return refused(StoreError::NotFound("room"));
                };
                if !r.members.contains_key(&sender) {
                    return refused(StoreError::NotMember);
                }
                if let Some(seq) = client_id.and_then(|c| r.client_ids.get(&c)) {
                    let earlier = &r.messages[*seq as usize - 1];
                    if earlier.sender != sender {
                        return refused(StoreError::ClientIdConflict);
                    }
                    return Ok(Value::Appended {
                        seq: *seq,
                        replayed: true,
                        message: earlier.clone(),
                    });
                }
                let last_seq = r.messages.len() as u64;
                if let Some(target) = reply_to
                    && (target == 0 || target > last_seq)
                {
                    return refused(StoreError::BadReplyTarget);
                }
                let seq = last_seq + 1;
                let message = Msg {
                    sender,
                    body,
                    client_id,
                    reply_to,
                    edited: false,
                    deleted: false,
                };
                r.messages.push(message.clone());
                if let Some(c) = client_id {
                    r.client_ids.insert(c, seq);
                }
                if let Some(member) = r.members.get_mut(&sender) {
                    member.1 = seq;
                }
                self.events.push((
                    EventKind::MessageNew,
                    room,
                    seq,
                    sender,
                    Some(message.clone()),
                ));
                Ok(Value::Appended {
                    seq,
                    replayed: false,
                    message,
                })
            }
            Op::Edit {
                room,
                seq,
                actor,
                body,
            } => {
                let Some(m) = self.message_mut(room, seq) else {
                    return refused(StoreError::NotFound("message"));
                };
                if m.deleted {
                    return refused(StoreError::MessageDeleted);
                }
                m.body = body;
                m.edited = true;
                let m = m.clone();
                self.events
                    .push((EventKind::MessageUpdate, room, seq, actor, Some(m.clone())));
                Ok(Value::Message(m))
            }
            Op::Delete { room, seq, actor } => {
                let Some(m) = self.message_mut(room, seq) else {
                    return refused(StoreError::NotFound("message"));
                };
                if m.deleted {
                    return Ok(Value::Message(m.clone()));
                }
                m.deleted = true;
                m.body.clear();
                let m = m.clone();
                self.events
                    .push((EventKind::MessageDelete, room, seq, actor, Some(m.clone())));
                Ok(Value::Message(m))
            }
            Op::MarkRead { room, user, seq } => {
                let Some(r) = self.rooms.get_mut(&room) else {
                    return refused(StoreError::NotFound("room"));
                };
                let last_seq = r.messages.len() as u64;
                let Some(member) = r.members.get_mut(&user) else {
                    return refused(StoreError::NotMember);
                };
                let target = seq.min(last_seq);
                if target <= member.1 {
                    return Ok(Value::ReadUpTo(member.1));
                }
                member.1 = target;
                self.events
                    .push((EventKind::ReadMarker, room, target, user, None));
                Ok(Value::ReadUpTo(target))
            }
        }
    }

    fn message_mut(&mut self, room: RoomId, seq: u64) -> Option<&mut Msg> {
        let r = self.rooms.get_mut(&room)?;
        let index = usize::try_from(seq.checked_sub(1)?).ok()?;
        r.messages.get_mut(index)
    }
}

/// Draws the next op from the model's current state: mostly valid ops, with a steady share
/// of refusals (missing rooms and users, non-members, bad reply targets, reused client ids).
fn random_op(rng: &mut StdRng, model: &Model, step: usize) -> Op {
    // One that does not exist (yet) a tenth of the time.
    let any_user = |rng: &mut StdRng| match rng.random_bool(0.1) {
        true => UserId(model.users + 1),
        false => UserId(rng.random_range(1..=model.users)),
    };
    let any_room = |rng: &mut StdRng| {
        let rooms = model.rooms.len() as u64;
        match rng.random_bool(0.1) {
            true => RoomId(rooms + 1),
            false => RoomId(rng.random_range(1..=rooms)),
        }
    };
    // A member of `room` most of the time, when it has one.
    let member_of = |rng: &mut StdRng, room: RoomId| match model.rooms.get(&room) {
        Some(r) if !r.members.is_empty() && rng.random_bool(0.8) => {
            let i = rng.random_range(0..r.members.len());
            *r.members.keys().nth(i).expect("in range")
        }
        _ => any_user(rng),
    };
    let last_seq = |room: RoomId| {
        model
            .rooms
            .get(&room)
            .map_or(0, |r| r.messages.len() as u64)
    };
    if model.users < 2 {
        return Op::CreateUser {
            username: format!("user{}", model.users),
        };
    }
    if model.rooms.is_empty() {
        return Op::CreateRoom {
            creator: UserId(1),
            name: "first".into(),
        };
    }
    match rng.random_range(0..100) {
        0..6 => {
            let n = rng.random_range(0..NAME_POOL);
            let username = if rng.random_bool(0.3) {
                format!("User{n}")
            } else {
                format!("user{n}")
            };
            Op::CreateUser { username }
        }
        6..11 => Op::CreateRoom {
            creator: any_user(rng),
            name: format!("room at step {step}"),
        },
        11..14 => {
            let a = any_user(rng);
            let mut b = any_user(rng);
            if a == b {
                b = UserId(a.0 % (model.users + 1) + 1);
            }
            Op::OpenDirect { a, b }
        }
        14..17 => Op::UpdateRoom {
            room: any_room(rng),
            actor: any_user(rng),
            topic: rng.random_bool(0.7).then(|| format!("topic {step}")),
        },
        17..30 => Op::AddMember {
            room: any_room(rng),
            user: any_user(rng),
            role: if rng.random_bool(0.2) {
                RoomRole::Admin
            } else {
                RoomRole::Member
            },
        },
        30..36 => {
            let room = any_room(rng);
            Op::RemoveMember {
                room,
                user: member_of(rng, room),
            }
        }
        36..70 => {
            let room = any_room(rng);
            let last = last_seq(room);
            Op::Append {
                room,
                sender: member_of(rng, room),
                body: format!("message at step {step}"),
                // A small pool per room, so retries and conflicts happen.
                client_id: rng.random_bool(0.5).then(|| rng.random_range(1..12u128)),
                reply_to: if rng.random_bool(0.25) {
                    Some(rng.random_range(0..=last + 1))
                } else {
                    None
                },
            }
        }
        70..78 => {
            let room = any_room(rng);
            Op::Edit {
                room,
                seq: rng.random_range(0..=last_seq(room) + 1),
                actor: member_of(rng, room),
                body: format!("edited at step {step}"),
            }
        }
        78..85 => {
            let room = any_room(rng);
            Op::Delete {
                room,
                seq: rng.random_range(0..=last_seq(room) + 1),
                actor: member_of(rng, room),
            }
        }
        _ => {
            let room = any_room(rng);
            let last = last_seq(room);
            Op::MarkRead {
                room,
                user: member_of(rng, room),
                // Forward, backward, and past the end.
                seq: rng.random_range(0..=last + 3),
            }
        }
    }
}

type OpFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// The store call for `op`, not yet polled.
fn issue(store: &Store, op: Op) -> OpFuture {
    let store = store.clone();
    Box::pin(async move {
        let outcome = match op {
            Op::CreateUser { username } => store
                .create_user(
                    username.clone(),
                    username,
                    "not a real hash".into(),
                    Admission::Open,
                )
                .await
                .map(|(id, record)| Value::User {
                    id,
                    is_admin: record.is_admin,
                }),
            Op::CreateRoom { creator, name } => store
                .create_room(name, Visibility::Public, None, creator)
                .await
                .map(|(id, _)| Value::Room { id, created: true }),
            Op::OpenDirect { a, b } => store
                .open_direct(a, b)
                .await
                .map(|(id, _, created)| Value::Room { id, created }),
            Op::UpdateRoom { room, actor, topic } => store
                .update_room(room, actor, None, Some(topic))
                .await
                .map(|r| Value::RoomUpdated {
                    name: r.name,
                    topic: r.topic,
                }),
            Op::AddMember { room, user, role } => {
                store
                    .add_member(room, user, role)
                    .await
                    .map(|m: MemberRecord| Value::Member {
                        role: m.role,
                        last_read: m.last_read.0,
                    })
            }
            Op::RemoveMember { room, user } => {
                store.remove_member(room, user).await.map(|()| Value::Unit)
            }
            Op::Append {
                room,
                sender,
                body,
                client_id,
                reply_to,
            } => store
                .append_message(NewMessage {
                    room,
                    sender,
                    body,
                    client_id: client_id.map(ClientId),
                    reply_to: reply_to.map(MessageSeq),
                })
                .await
                .map(|o: AppendOutcome| Value::Appended {
                    seq: o.seq.0,
                    replayed: o.replayed,
                    message: Msg::of(&o.message),
                }),
            Op::Edit {
                room,
                seq,
                actor,
                body,
            } => store
                .edit_message(room, MessageSeq(seq), actor, body)
                .await
                .map(|m| Value::Message(Msg::of(&m))),
            Op::Delete { room, seq, actor } => store
                .delete_message(room, MessageSeq(seq), actor)
                .await
                .map(|m| Value::Message(Msg::of(&m))),
            Op::MarkRead { room, user, seq } => store
                .mark_read(room, user, MessageSeq(seq))
                .await
                .map(|s| Value::ReadUpTo(s.0)),
        };
        outcome.map_err(|e| format!("{e:?}"))
    })
}

/// Polls every future once, in order (each first poll queues its write), then drives them all
/// to completion. Returns the outputs in the same order. A stand-in for `join_all`.
async fn in_order(mut futures: Vec<OpFuture>) -> Vec<Outcome> {
    let mut outputs: Vec<Option<Outcome>> = vec![None; futures.len()];
    std::future::poll_fn(|cx| {
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none()
                && let Poll::Ready(value) = future.as_mut().poll(cx)
            {
                *output = Some(value);
            }
        }
        if outputs.iter().all(Option::is_some) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("finished")).collect()
}

/// Runs `ops` in one group-commit batch: a parked write holds the writer thread until all of
/// them are queued behind it. Returns each op's outcome, in order.
async fn in_one_batch(store: &Store, ops: Vec<Op>) -> Vec<Outcome> {
    let wait = std::time::Duration::from_secs(30);
    let (parked_tx, parked_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let parker = store.clone();
    let mut futures: Vec<OpFuture> = vec![
        Box::pin(async move {
            parker
                .write(move |_| {
                    let _ = parked_tx.send(());
                    // Bounded, so a bug cannot hang the test forever.
                    let _ = release_rx.recv_timeout(wait);
                    Ok(())
                })
                .await
                .map(|()| Value::Unit)
                .map_err(|e| format!("{e:?}"))
        }),
        // Blocks this (test) thread until the writer thread is inside the parked write, so
        // the ops below cannot join the parked write's batch.
        Box::pin(async move {
            parked_rx.recv_timeout(wait).expect("the parked write runs");
            Ok(Value::Unit)
        }),
    ];
    futures.extend(ops.into_iter().map(|op| issue(store, op)));
    // Polled last in the first pass, after every op is queued.
    futures.push(Box::pin(async move {
        let _ = release_tx.send(());
        Ok(Value::Unit)
    }));
    let mut outcomes = in_order(futures).await;
    outcomes.pop();
    let of_ops = outcomes.split_off(2);
    assert_eq!(outcomes[0], Ok(Value::Unit), "the parked write");
    of_ops
}

/// Everything published on the feed so far, one entry per committed batch.
fn drain(feed: &mut CommitFeed) -> Vec<Vec<Committed>> {
    let mut batches = Vec::new();
    while let Ok(batch) = feed.try_recv() {
        batches.push(batch);
    }
    batches
}

fn as_model_event(c: &Committed) -> ModelEvent {
    (
        c.event.kind,
        c.event.room,
        c.event.seq.0,
        c.event.user,
        c.message.as_ref().map(Msg::of),
    )
}

/// Read positions by (room, user), as the store reports them.
type ReadMarkers = BTreeMap<(RoomId, UserId), u64>;

/// Checks the store's whole visible state against the model; returns the read positions.
fn check_state(store: &Store, model: &Model, context: &str) -> ReadMarkers {
    let mut markers = ReadMarkers::new();
    let snap = store.snapshot().expect("snapshot");
    assert_eq!(snap.user_count().expect("users"), model.users, "{context}");
    for (name, id) in &model.usernames {
        assert_eq!(
            snap.user_id_by_name(&name.to_uppercase()).expect("lookup"),
            Some(*id),
            "{context}: username {name}"
        );
    }
    assert_eq!(
        snap.room_count().expect("rooms"),
        model.rooms.len() as u64,
        "{context}"
    );
    let mut rooms_of: BTreeMap<UserId, Vec<RoomId>> = BTreeMap::new();
    for (id, want) in &model.rooms {
        let got = snap.room(*id).expect("read").expect("room exists");
        let last_seq = want.messages.len() as u64;
        assert_eq!(got.kind, want.kind, "{context}: room {id}");
        assert_eq!(got.topic, want.topic, "{context}: room {id}");
        assert_eq!(got.last_seq, MessageSeq(last_seq), "{context}: room {id}");
        assert_eq!(
            got.member_count,
            want.members.len() as u64,
            "{context}: room {id}"
        );
        let members: BTreeMap<UserId, (RoomRole, u64)> = snap
            .members(*id)
            .expect("members")
            .into_iter()
            .map(|(user, m)| (user, (m.role, m.last_read.0)))
            .collect();
        assert_eq!(members, want.members, "{context}: members of room {id}");
        for (user, (_, last_read)) in &members {
            assert!(
                *last_read <= last_seq,
                "{context}: read marker past the end"
            );
            rooms_of.entry(*user).or_default().push(*id);
            markers.insert((*id, *user), *last_read);
        }
        // Seqs are dense from 1: the history is exactly the model's list, in order.
        let history = snap
            .messages_after(*id, MessageSeq(0), usize::MAX)
            .expect("history");
        let got: Vec<(u64, Msg)> = history.iter().map(|(s, m)| (s.0, Msg::of(m))).collect();
        let want_history: Vec<(u64, Msg)> = want
            .messages
            .iter()
            .enumerate()
            .map(|(i, m)| (i as u64 + 1, m.clone()))
            .collect();
        assert_eq!(got, want_history, "{context}: history of room {id}");
        let backwards: Vec<u64> = snap
            .messages_before(*id, MessageSeq(u64::MAX), usize::MAX)
            .expect("page")
            .iter()
            .map(|(s, _)| s.0)
            .collect();
        assert!(
            backwards.iter().rev().copied().eq(1..=last_seq),
            "{context}: room {id} read backwards"
        );
    }
    let next_room = RoomId(model.rooms.len() as u64 + 1);
    assert!(snap.room(next_room).expect("read").is_none(), "{context}");
    for user in 1..=model.users {
        let user = UserId(user);
        assert_eq!(
            snap.rooms_of(user).expect("rooms of"),
            rooms_of.remove(&user).unwrap_or_default(),
            "{context}: rooms of user {user}"
        );
    }
    // The durable log: gapless from 1, and exactly the model's events.
    let log = snap.events_after(EventSeq(0), usize::MAX).expect("events");
    assert_eq!(
        snap.last_event_seq().expect("last"),
        EventSeq(model.events.len() as u64),
        "{context}"
    );
    for (i, (seq, _)) in log.iter().enumerate() {
        assert_eq!(*seq, EventSeq(i as u64 + 1), "{context}: event log gap");
    }
    let got: Vec<_> = log
        .iter()
        .map(|(_, e)| (e.kind, e.room, e.seq.0, e.user))
        .collect();
    let want: Vec<_> = model
        .events
        .iter()
        .map(|(kind, room, seq, user, _)| (*kind, *room, *seq, *user))
        .collect();
    assert_eq!(got, want, "{context}: event log");
    markers
}

/// Read positions never move backwards, not even across leaving and rejoining (a rejoin
/// starts at the room's last seq, which no earlier position can exceed).
fn check_monotonic(before: &ReadMarkers, after: &ReadMarkers, context: &str) {
    for (key, now) in after {
        if let Some(earlier) = before.get(key) {
            assert!(
                now >= earlier,
                "{context}: read marker {key:?} went back from {earlier} to {now}"
            );
        }
    }
}

/// Checks that the feed published exactly the events logged since `from` (an index into the
/// model's events), in order, and returns how many batches carried them.
fn check_feed(feed: &mut CommitFeed, model: &Model, from: usize, context: &str) -> usize {
    let batches = drain(feed);
    let published: Vec<&Committed> = batches.iter().flatten().collect();
    assert_eq!(
        published.len(),
        model.events.len() - from,
        "{context}: feed vs log ({published:?})"
    );
    for (i, committed) in published.iter().enumerate() {
        assert_eq!(
            committed.seq,
            EventSeq((from + i) as u64 + 1),
            "{context}: feed order"
        );
        assert_eq!(
            as_model_event(committed),
            model.events[from + i],
            "{context}: feed event {}",
            committed.seq
        );
    }
    batches.iter().filter(|b| !b.is_empty()).count()
}

/// Prints the seed when the run it guards panics.
struct SeedGuard(u64);

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "store_model failed with seed {0}; rerun only it with STORE_MODEL_SEED={0}",
                self.0
            );
        }
    }
}

/// How often each (op, outcome) pair came up, e.g. `("Append", "BadReplyTarget")`.
type Tally = BTreeMap<(String, String), usize>;

fn tally(tally: &mut Tally, op: &Op, outcome: &Outcome) {
    let op = format!("{op:?}");
    let op = op.split([' ', '{']).next().unwrap_or_default().to_owned();
    let outcome = match outcome {
        Ok(Value::Appended { replayed: true, .. }) => "replayed".to_owned(),
        Ok(_) => "ok".to_owned(),
        Err(e) => e.clone(),
    };
    *tally.entry((op, outcome)).or_default() += 1;
}

async fn run_seed(seed: u64, ops: usize, dir: &Path, seen: &mut Tally) {
    let _guard = SeedGuard(seed);
    let path = dir.join(format!("model-{seed}.redb"));
    let (store, mut feed) = Store::open_with_feed(&path).expect("open");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut model = Model::default();
    let mut done = 0;
    let mut step = 0;
    let mut shared_batches = 0;
    let mut markers = ReadMarkers::new();
    while done < ops {
        step += 1;
        let events_before = model.events.len();
        let group = if rng.random_bool(0.25) {
            rng.random_range(2..=8).min(ops - done)
        } else {
            1
        };
        let mut batch = Vec::with_capacity(group);
        let mut expected = Vec::with_capacity(group);
        for _ in 0..group {
            let op = random_op(&mut rng, &model, step);
            expected.push(model.apply(&op));
            batch.push(op);
        }
        done += group;
        let context = format!("seed {seed} step {step} ops {batch:?}");
        let commits_before = store.stats().commits.get();
        let outcomes = if group == 1 {
            vec![issue(&store, batch[0].clone()).await]
        } else {
            in_one_batch(&store, batch.clone()).await
        };
        for ((op, got), want) in batch.iter().zip(&outcomes).zip(&expected) {
            assert_eq!(got, want, "seed {seed} step {step}: result of {op:?}");
            tally(seen, op, got);
        }
        if group > 1 {
            // The parked write's batch, then one batch holding every op of the group.
            assert_eq!(
                store.stats().commits.get() - commits_before,
                2,
                "{context}: the group shared a batch"
            );
        }
        if expected.iter().all(Result::is_err) {
            assert_eq!(model.events.len(), events_before, "{context}");
        }
        let now = check_state(&store, &model, &context);
        check_monotonic(&markers, &now, &context);
        markers.extend(now);
        let batches = check_feed(&mut feed, &model, events_before, &context);
        assert!(
            batches <= 1,
            "{context}: one step's events came in {batches} feed batches"
        );
        shared_batches += usize::from(group > 1);
    }
    assert!(shared_batches > 0, "seed {seed}: no step shared a batch");
    store.close().await;
    drop(store);
    drop(feed);

    // Durability: everything acknowledged is there after a reopen, and the store goes on.
    let (store, mut feed) = Store::open_with_feed(&path).expect("reopen");
    let context = format!("seed {seed} after reopen");
    check_state(&store, &model, &context);
    let events_before = model.events.len();
    let room = RoomId(1);
    let sender = *model.rooms[&room]
        .members
        .keys()
        .next()
        .unwrap_or(&UserId(1));
    let op = Op::Append {
        room,
        sender,
        body: "after reopen".into(),
        client_id: None,
        reply_to: None,
    };
    let want = model.apply(&op);
    assert_eq!(issue(&store, op).await, want, "{context}");
    check_state(&store, &model, &context);
    check_feed(&mut feed, &model, events_before, &context);
    store.close().await;
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}"))
    })
}

#[test]
fn store_agrees_with_the_model() {
    let seeds: Vec<u64> = match env_number("STORE_MODEL_SEED") {
        Some(seed) => vec![seed],
        None => (0..env_number("STORE_MODEL_SEEDS").unwrap_or(DEFAULT_SEEDS)).collect(),
    };
    let ops = env_number("STORE_MODEL_OPS").map_or(DEFAULT_OPS, |n| n as usize);
    let dir = tempfile::tempdir().expect("tempdir");
    // One thread: the test's own tasks run in a known order; the store's writer has its own.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut seen = Tally::new();
    let whole_run = seeds.len() as u64 == DEFAULT_SEEDS && ops == DEFAULT_OPS;
    for seed in seeds {
        runtime.block_on(run_seed(seed, ops, dir.path(), &mut seen));
    }
    for ((op, outcome), n) in &seen {
        println!("{op:>12} {outcome:<22} {n}");
    }
    if whole_run {
        // The generator must keep reaching every kind of answer, or the model proves little.
        for (op, outcome) in [
            ("CreateUser", "UsernameTaken"),
            ("CreateRoom", "NotFound(\"user\")"),
            ("OpenDirect", "ok"),
            ("AddMember", "AlreadyMember"),
            ("AddMember", "NotFound(\"room\")"),
            ("RemoveMember", "NotMember"),
            ("Append", "ok"),
            ("Append", "replayed"),
            ("Append", "NotMember"),
            ("Append", "ClientIdConflict"),
            ("Append", "BadReplyTarget"),
            ("Edit", "MessageDeleted"),
            ("Edit", "NotFound(\"message\")"),
            ("Delete", "ok"),
            ("MarkRead", "ok"),
            ("MarkRead", "NotMember"),
        ] {
            assert!(
                seen.contains_key(&(op.to_owned(), outcome.to_owned())),
                "no {op} ever answered {outcome}"
            );
        }
    }
}
