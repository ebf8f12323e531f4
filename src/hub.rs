//! The hub: which connection listens to which room, who is online, who is typing; and fanout
//! of already-encoded packets to bounded per-connection queues.
//!
//! A plain data structure driven by one task (the realtime actor), so there are no locks here.
//! Fanout hands every subscriber a clone of the same `Bytes`, and never waits: a connection
//! whose queue is full is reported back as lagging, for the caller to close.
//!
//! Must not: know about chat rules, the store, or the wire format of what it carries.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::ids::{RoomId, UserId};

pub type ConnId = u64;

/// Where a connection's packets go. `push` must not block; `false` means the queue is full
/// (or the connection is gone).
pub trait Outlet: Send + Sync {
    fn push(&self, packet: Bytes) -> bool;
    /// Closes the connection because it could not keep up (it will reconnect and recover).
    fn close_lagging(&self);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Online,
    Away,
    Offline,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Online => "online",
            Status::Away => "away",
            Status::Offline => "offline",
        }
    }
}

struct Conn {
    user: UserId,
    outlet: Arc<dyn Outlet>,
    rooms: HashSet<RoomId>,
}

#[derive(Default)]
struct UserEntry {
    conns: HashSet<ConnId>,
    /// Bumped on every attach, so a pending "went offline" from before a reconnect is ignored.
    generation: u64,
    status: Option<Status>,
}

/// A connection the hub has let go of.
#[derive(Debug)]
pub struct Detached {
    pub user: UserId,
    /// When it was the user's last connection: the generation to check when the offline
    /// grace period ends.
    pub last_generation: Option<u64>,
    /// The rooms it was subscribed to (for the last one: who to tell the user went offline).
    pub rooms: Vec<RoomId>,
}

/// How long a typing indicator lives without a refresh or a stop.
pub const TYPING_TTL: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct Hub {
    /// Room broadcasts delivered since the owner last asked.
    delivered: std::cell::Cell<u64>,
    conns: HashMap<ConnId, Conn>,
    rooms: HashMap<RoomId, HashSet<ConnId>>,
    users: HashMap<UserId, UserEntry>,
    typing: HashMap<(RoomId, UserId), Instant>,
}

impl Hub {
    /// Registers a connection subscribed to `rooms`. Returns the user's new generation and
    /// whether this is their first live connection.
    pub fn attach(
        &mut self,
        conn: ConnId,
        user: UserId,
        outlet: Arc<dyn Outlet>,
        rooms: impl IntoIterator<Item = RoomId>,
    ) -> (u64, bool) {
        let rooms: HashSet<RoomId> = rooms.into_iter().collect();
        for room in &rooms {
            self.rooms.entry(*room).or_default().insert(conn);
        }
        self.conns.insert(
            conn,
            Conn {
                user,
                outlet,
                rooms,
            },
        );
        let entry = self.users.entry(user).or_default();
        let first = entry.conns.is_empty();
        entry.conns.insert(conn);
        entry.generation += 1;
        (entry.generation, first)
    }

    /// Removes a connection: who it was, and whether it was their last (see `Detached`).
    pub fn detach(&mut self, conn: ConnId) -> Option<Detached> {
        let removed = self.conns.remove(&conn)?;
        for room in &removed.rooms {
            if let Some(subscribers) = self.rooms.get_mut(room) {
                subscribers.remove(&conn);
                if subscribers.is_empty() {
                    self.rooms.remove(room);
                }
            }
        }
        let entry = self.users.get_mut(&removed.user)?;
        entry.conns.remove(&conn);
        let last_generation = entry.conns.is_empty().then_some(entry.generation);
        Some(Detached {
            user: removed.user,
            last_generation,
            rooms: removed.rooms.into_iter().collect(),
        })
    }

    /// Every room some connection of `user` is subscribed to.
    pub fn rooms_of(&self, user: UserId) -> Vec<RoomId> {
        let mut rooms = HashSet::new();
        if let Some(entry) = self.users.get(&user) {
            for conn in &entry.conns {
                if let Some(c) = self.conns.get(conn) {
                    rooms.extend(c.rooms.iter().copied());
                }
            }
        }
        rooms.into_iter().collect()
    }

    /// True when the user has no connection and `generation` is still current: the grace
    /// period ended without a reconnect.
    pub fn offline_confirmed(&mut self, user: UserId, generation: u64) -> bool {
        match self.users.get(&user) {
            Some(entry) if entry.conns.is_empty() && entry.generation == generation => {
                self.users.remove(&user);
                true
            }
            _ => false,
        }
    }

    /// Sets a connected user's status; returns true if it changed.
    pub fn set_status(&mut self, user: UserId, status: Status) -> bool {
        match self.users.get_mut(&user) {
            Some(entry) if entry.status != Some(status) => {
                entry.status = Some(status);
                true
            }
            _ => false,
        }
    }

    /// Subscribes every connection of `user` to `room`.
    pub fn subscribe(&mut self, user: UserId, room: RoomId) {
        let Some(entry) = self.users.get(&user) else {
            return;
        };
        for conn in &entry.conns {
            if let Some(c) = self.conns.get_mut(conn) {
                c.rooms.insert(room);
                self.rooms.entry(room).or_default().insert(*conn);
            }
        }
    }

    pub fn unsubscribe(&mut self, user: UserId, room: RoomId) {
        let Some(entry) = self.users.get(&user) else {
            return;
        };
        for conn in &entry.conns {
            if let Some(c) = self.conns.get_mut(conn) {
                c.rooms.remove(&room);
            }
            if let Some(subscribers) = self.rooms.get_mut(&room) {
                subscribers.remove(conn);
            }
        }
        self.typing.remove(&(room, user));
    }

    /// Sends `packet` to every connection in `room` except those of `skip`. Returns the
    /// connections that could not take it (lagging).
    pub fn publish(&self, room: RoomId, packet: &Bytes, skip: Option<UserId>) -> Vec<ConnId> {
        let mut lagging = Vec::new();
        let Some(subscribers) = self.rooms.get(&room) else {
            return lagging;
        };
        for conn_id in subscribers {
            let Some(conn) = self.conns.get(conn_id) else {
                continue;
            };
            if Some(conn.user) == skip {
                continue;
            }
            if conn.outlet.push(packet.clone()) {
                self.delivered.set(self.delivered.get() + 1);
            } else {
                lagging.push(*conn_id);
            }
        }
        lagging
    }

    /// Room broadcasts delivered since the last call (read by the owning task).
    pub fn take_delivered(&self) -> u64 {
        self.delivered.replace(0)
    }

    /// Sends `packet` to every connection of `user`.
    pub fn send_to_user(&self, user: UserId, packet: &Bytes) -> Vec<ConnId> {
        let mut lagging = Vec::new();
        if let Some(entry) = self.users.get(&user) {
            for conn_id in &entry.conns {
                if let Some(conn) = self.conns.get(conn_id)
                    && !conn.outlet.push(packet.clone())
                {
                    lagging.push(*conn_id);
                }
            }
        }
        lagging
    }

    /// Sends `packet` once to every connection that shares a room with `user` (and to the
    /// user's own connections): who should hear about their presence.
    pub fn send_to_peers(&self, user: UserId, rooms: &[RoomId], packet: &Bytes) -> Vec<ConnId> {
        let mut seen = HashSet::new();
        let mut lagging = Vec::new();
        let own = self
            .users
            .get(&user)
            .map(|e| e.conns.iter().copied().collect::<Vec<_>>());
        let in_rooms = rooms
            .iter()
            .filter_map(|room| self.rooms.get(room))
            .flat_map(|subscribers| subscribers.iter().copied());
        for conn_id in in_rooms.chain(own.unwrap_or_default()) {
            if !seen.insert(conn_id) {
                continue;
            }
            if let Some(conn) = self.conns.get(&conn_id)
                && !conn.outlet.push(packet.clone())
            {
                lagging.push(conn_id);
            }
        }
        lagging
    }

    /// Marks `user` typing in `room` until `now + TYPING_TTL`. True if they were not already.
    pub fn typing_start(&mut self, room: RoomId, user: UserId, now: Instant) -> bool {
        self.typing.insert((room, user), now + TYPING_TTL).is_none()
    }

    /// True if they were typing.
    pub fn typing_stop(&mut self, room: RoomId, user: UserId) -> bool {
        self.typing.remove(&(room, user)).is_some()
    }

    /// Typing indicators whose time is up, removed.
    pub fn typing_expired(&mut self, now: Instant) -> Vec<(RoomId, UserId)> {
        let expired: Vec<_> = self
            .typing
            .iter()
            .filter(|(_, deadline)| **deadline <= now)
            .map(|(key, _)| *key)
            .collect();
        for key in &expired {
            self.typing.remove(key);
        }
        expired
    }

    /// Stops every typing indicator of `user` (their last connection went away).
    pub fn typing_stop_all(&mut self, user: UserId) -> Vec<RoomId> {
        let rooms: Vec<RoomId> = self
            .typing
            .keys()
            .filter(|(_, u)| *u == user)
            .map(|(room, _)| *room)
            .collect();
        for room in &rooms {
            self.typing.remove(&(*room, user));
        }
        rooms
    }

    pub fn close_lagging(&self, conn: ConnId) {
        if let Some(c) = self.conns.get(&conn) {
            c.outlet.close_lagging();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder {
        got: Mutex<Vec<Bytes>>,
        full: bool,
    }

    impl Outlet for Recorder {
        fn push(&self, packet: Bytes) -> bool {
            if self.full {
                return false;
            }
            self.got.lock().expect("lock").push(packet);
            true
        }

        fn close_lagging(&self) {}
    }

    fn count(r: &Recorder) -> usize {
        r.got.lock().expect("lock").len()
    }

    #[test]
    fn publish_reaches_subscribers_only_and_shares_bytes() {
        let mut hub = Hub::default();
        let a = Arc::new(Recorder::default());
        let b = Arc::new(Recorder::default());
        let c = Arc::new(Recorder::default());
        hub.attach(1, UserId(1), a.clone(), [RoomId(10)]);
        hub.attach(2, UserId(2), b.clone(), [RoomId(10)]);
        hub.attach(3, UserId(3), c.clone(), [RoomId(11)]);
        let packet = Bytes::from_static(b"42[\"x\"]");
        assert!(hub.publish(RoomId(10), &packet, None).is_empty());
        assert_eq!((count(&a), count(&b), count(&c)), (1, 1, 0));
        assert_eq!(
            a.got.lock().expect("lock")[0].as_ptr(),
            packet.as_ptr(),
            "same bytes, no copy"
        );
        hub.publish(RoomId(10), &packet, Some(UserId(1)));
        assert_eq!((count(&a), count(&b)), (1, 2), "skip the sender");
    }

    #[test]
    fn a_full_outlet_is_reported_lagging() {
        let mut hub = Hub::default();
        let slow = Arc::new(Recorder {
            full: true,
            ..Recorder::default()
        });
        let fast = Arc::new(Recorder::default());
        hub.attach(1, UserId(1), slow, [RoomId(1)]);
        hub.attach(2, UserId(2), fast.clone(), [RoomId(1)]);
        assert_eq!(
            hub.publish(RoomId(1), &Bytes::from_static(b"x"), None),
            vec![1]
        );
        assert_eq!(
            count(&fast),
            1,
            "the slow one does not hold up the fast one"
        );
    }

    #[test]
    fn presence_generations_survive_a_quick_reconnect() {
        let mut hub = Hub::default();
        let (_, first) = hub.attach(1, UserId(7), Arc::new(Recorder::default()), []);
        assert!(first);
        let detached = hub.detach(1).expect("was attached");
        let generation = detached.last_generation.expect("last connection");
        let (_, first_again) = hub.attach(2, UserId(7), Arc::new(Recorder::default()), []);
        assert!(first_again);
        assert!(
            !hub.offline_confirmed(UserId(7), generation),
            "reconnected within grace"
        );
        let detached = hub.detach(2).expect("attached");
        assert!(hub.offline_confirmed(UserId(7), detached.last_generation.expect("last")));
    }

    #[test]
    fn subscriptions_follow_membership_changes() {
        let mut hub = Hub::default();
        let a = Arc::new(Recorder::default());
        hub.attach(1, UserId(1), a.clone(), []);
        hub.subscribe(UserId(1), RoomId(5));
        hub.publish(RoomId(5), &Bytes::from_static(b"x"), None);
        hub.unsubscribe(UserId(1), RoomId(5));
        hub.publish(RoomId(5), &Bytes::from_static(b"y"), None);
        assert_eq!(count(&a), 1);
    }

    #[test]
    fn typing_is_coalesced_and_expires() {
        let mut hub = Hub::default();
        let t0 = Instant::now();
        assert!(hub.typing_start(RoomId(1), UserId(1), t0));
        assert!(
            !hub.typing_start(RoomId(1), UserId(1), t0),
            "refresh, no new broadcast"
        );
        assert!(hub.typing_expired(t0 + Duration::from_secs(1)).is_empty());
        assert_eq!(
            hub.typing_expired(t0 + TYPING_TTL),
            vec![(RoomId(1), UserId(1))]
        );
        assert!(!hub.typing_stop(RoomId(1), UserId(1)));
    }
}
