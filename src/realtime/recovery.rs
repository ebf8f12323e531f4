//! Connection state recovery: which private session id (`pid`) belonged to whom and when it
//! dropped, reading what a recovering socket missed from the durable `events` log, and the
//! short memory of recent broadcasts that joins that read to live fanout.
//!
//! ## Why a recovering socket gets every event once, in order
//!
//! Event seqs are assigned by the store writer in commit order, and the actor applies
//! committed events in that order, so "the actor has applied everything up to `applied`" is
//! one number. A socket that signs in does its store reads on its own task, never on the
//! actor's: one snapshot at log head `through` gives its rooms and, when recovering, the
//! packets for every logged event in `(offset, through]` that concerns it. It then hands the
//! actor an attach carrying `through`. The actor, which alone changes `applied` and the
//! subscriptions:
//!
//! 1. if `through > applied` (the snapshot saw commits the feed has not brought yet), keeps
//!    the attach pending and finishes it right after applying the batch that reaches
//!    `through`;
//! 2. pushes CONNECT, then the packets read from the snapshot (`(offset, through]`);
//! 3. pushes the events in `(through, applied]` from `RecentEvents` — already fanned out, but
//!    not to this socket, which was not subscribed — following the joins and leaves among
//!    them so the socket's rooms are as of `applied`;
//! 4. subscribes the socket, in the same step: everything after `applied` reaches it live.
//!
//! Each event is in exactly one of `(offset, through]`, `(through, applied]` and
//! `(applied, …)`, so none is missed or sent twice. If `RecentEvents` no longer holds all of
//! `(through, applied]` (the socket took long enough for thousands of events to pass), the
//! actor reads that range itself from a fresh snapshot: correct, and rare enough to count in
//! `/metrics` rather than to avoid.
//!
//! Must not: touch the hub or an outlet (the actor pushes; this reads and remembers).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::MAX_REPLAY_EVENTS;
use super::broadcast::{self, Broadcast};
use crate::chat::Chat;
use crate::ids::{EventSeq, RoomId, UserId};
use crate::store::records::{EventKind, EventRecord};
use crate::store::{Committed, Snapshot, StoreError};

/// A socket that dropped without saying goodbye, waiting to be recovered.
struct Parked {
    user: UserId,
    /// The log head its session started from: a client that received no event carrying an
    /// offset (the official client then sends `{pid}` alone) missed everything after this.
    since: EventSeq,
    at: Instant,
}

/// Private session ids of sockets that dropped, for the recovery window.
pub struct Parking {
    parked: Mutex<HashMap<String, Parked>>,
    window: Duration,
}

impl Parking {
    pub fn new(window: Duration) -> Parking {
        Parking {
            parked: Mutex::new(HashMap::new()),
            window,
        }
    }

    pub fn park(&self, pid: String, user: UserId, since: EventSeq) {
        let mut parked = self.parked.lock().unwrap_or_else(|e| e.into_inner());
        let window = self.window;
        parked.retain(|_, p| p.at.elapsed() <= window);
        parked.insert(
            pid,
            Parked {
                user,
                since,
                at: Instant::now(),
            },
        );
    }

    /// Where the session started (once), if `pid` names a socket of `user` that dropped
    /// within the window.
    pub fn claim(&self, pid: &str, user: UserId) -> Option<EventSeq> {
        let parked = self
            .parked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(pid)?;
        (parked.user == user && parked.at.elapsed() <= self.window).then_some(parked.since)
    }
}

/// How much one replay may queue for a socket: past this it could never be delivered (the
/// connection's outbox would overflow), so the socket starts fresh instead.
#[derive(Clone, Copy, Debug)]
pub struct ReplayBudget {
    pub packets: usize,
    pub bytes: usize,
}

/// Packets for every logged event in `(after, through]` that concerns `user` (a member of
/// `rooms` as of `through`), in log order; `None` when that is more than `budget` or
/// `MAX_REPLAY_EVENTS` events, or the log cannot be read.
pub fn read_missed(
    chat: &Chat,
    snapshot: &Snapshot,
    after: EventSeq,
    through: EventSeq,
    user: UserId,
    rooms: &HashSet<RoomId>,
    budget: ReplayBudget,
) -> Option<Vec<Bytes>> {
    if after > through || through.0 - after.0 > MAX_REPLAY_EVENTS {
        return None;
    }
    let mut packets = Vec::new();
    let mut bytes = 0;
    let mut push = |packet: Bytes| {
        bytes += packet.len();
        packets.push(packet);
        packets.len() <= budget.packets && bytes <= budget.bytes
    };
    for committed in logged(snapshot, after, through) {
        let committed = committed.ok()?;
        let event = broadcast::encode(chat, Some(snapshot), &committed);
        if !event.concerns(user, rooms) {
            continue;
        }
        if !push(event.packet) {
            return None;
        }
        if event.kind == EventKind::MemberJoin
            && event.user == user
            && let Some(room_new) = event.room_new
            && !push(room_new)
        {
            return None;
        }
    }
    Some(packets)
}

/// The logged events in `(after, through]` with the message each concerns, read page by page.
fn logged(
    snapshot: &Snapshot,
    after: EventSeq,
    through: EventSeq,
) -> impl Iterator<Item = Result<Committed, StoreError>> + '_ {
    const PAGE: usize = 500;
    let mut cursor = after;
    let mut page: std::vec::IntoIter<(EventSeq, EventRecord)> = Vec::new().into_iter();
    std::iter::from_fn(move || {
        loop {
            if let Some((seq, event)) = page.next() {
                if seq > through {
                    return None;
                }
                cursor = seq;
                let message = match event.kind {
                    EventKind::MessageNew | EventKind::MessageUpdate | EventKind::MessageDelete => {
                        match snapshot.message(event.room, event.seq) {
                            Ok(message) => message,
                            Err(e) => return Some(Err(e)),
                        }
                    }
                    _ => None,
                };
                return Some(Ok(Committed {
                    seq,
                    event,
                    message,
                }));
            }
            if cursor >= through {
                return None;
            }
            match snapshot.events_after(cursor, PAGE) {
                Ok(events) if events.is_empty() => return None,
                Ok(events) => page = events.into_iter(),
                Err(e) => return Some(Err(e)),
            }
        }
    })
}

/// Brings `rooms` (a user's rooms before `event`) up to date with it.
pub fn follow_membership(rooms: &mut HashSet<RoomId>, user: UserId, event: &Broadcast) {
    if event.user != user {
        return;
    }
    match event.kind {
        EventKind::MemberJoin => {
            rooms.insert(event.room);
        }
        EventKind::MemberLeave => {
            rooms.remove(&event.room);
        }
        _ => {}
    }
}

/// Most broadcasts remembered, and most bytes of packets they may hold.
pub const RECENT_EVENTS: usize = 4096;
pub const RECENT_BYTES: usize = 8 * 1024 * 1024;

/// The latest broadcasts the actor applied, oldest first: what a socket attaching now missed
/// between its snapshot and the actor's present.
pub struct RecentEvents {
    events: VecDeque<Arc<Broadcast>>,
    bytes: usize,
    /// Every event up to here is gone from memory (or was applied before the actor started).
    forgotten_through: EventSeq,
}

impl RecentEvents {
    /// Remembers nothing yet; events up to `start` happened before.
    pub fn new(start: EventSeq) -> RecentEvents {
        RecentEvents {
            events: VecDeque::new(),
            bytes: 0,
            forgotten_through: start,
        }
    }

    pub fn push(&mut self, event: Arc<Broadcast>) {
        self.bytes += weight(&event);
        self.events.push_back(event);
        while self.events.len() > RECENT_EVENTS || self.bytes > RECENT_BYTES {
            let Some(old) = self.events.pop_front() else {
                break;
            };
            self.bytes -= weight(&old);
            self.forgotten_through = old.seq;
        }
    }

    /// Every remembered event after `through`, if none after `through` has been forgotten.
    pub fn since(&self, through: EventSeq) -> Option<impl Iterator<Item = &Arc<Broadcast>>> {
        (through >= self.forgotten_through)
            .then(|| self.events.iter().filter(move |e| e.seq > through))
    }
}

fn weight(event: &Broadcast) -> usize {
    event.packet.len() + event.room_new.as_ref().map_or(0, Bytes::len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broadcast(seq: u64, kind: EventKind, room: u64, user: u64) -> Arc<Broadcast> {
        Arc::new(Broadcast {
            seq: EventSeq(seq),
            room: RoomId(room),
            kind,
            user: UserId(user),
            packet: Bytes::from(vec![b'x'; 10]),
            room_new: None,
        })
    }

    #[test]
    fn recent_events_answer_only_for_ranges_they_still_hold() {
        let mut recent = RecentEvents::new(EventSeq(100));
        assert_eq!(recent.since(EventSeq(100)).map(Iterator::count), Some(0));
        assert!(
            recent.since(EventSeq(99)).is_none(),
            "before the actor started"
        );
        for seq in 101..=100 + RECENT_EVENTS as u64 + 5 {
            recent.push(broadcast(seq, EventKind::MessageNew, 1, 1));
        }
        let newest = 100 + RECENT_EVENTS as u64 + 5;
        assert!(recent.since(EventSeq(104)).is_none(), "forgotten");
        let kept: Vec<u64> = recent
            .since(EventSeq(105))
            .expect("still held")
            .map(|e| e.seq.0)
            .collect();
        assert_eq!(kept, (106..=newest).collect::<Vec<_>>());
        assert_eq!(recent.since(EventSeq(newest)).map(Iterator::count), Some(0));
    }

    #[test]
    fn recent_events_are_bounded_in_bytes_too() {
        let mut recent = RecentEvents::new(EventSeq(0));
        let big = |seq| {
            Arc::new(Broadcast {
                seq: EventSeq(seq),
                room: RoomId(1),
                kind: EventKind::MessageNew,
                user: UserId(1),
                packet: Bytes::from(vec![b'x'; RECENT_BYTES / 2]),
                room_new: None,
            })
        };
        recent.push(big(1));
        recent.push(big(2));
        recent.push(big(3));
        assert!(recent.since(EventSeq(0)).is_none());
        assert_eq!(recent.since(EventSeq(1)).map(Iterator::count), Some(2));
    }

    #[test]
    fn membership_follows_the_users_own_joins_and_leaves() {
        let mut rooms = HashSet::from([RoomId(1)]);
        follow_membership(
            &mut rooms,
            UserId(7),
            &broadcast(1, EventKind::MemberJoin, 2, 7),
        );
        follow_membership(
            &mut rooms,
            UserId(7),
            &broadcast(2, EventKind::MemberJoin, 3, 8),
        );
        follow_membership(
            &mut rooms,
            UserId(7),
            &broadcast(3, EventKind::MemberLeave, 1, 7),
        );
        follow_membership(
            &mut rooms,
            UserId(7),
            &broadcast(4, EventKind::MessageNew, 4, 7),
        );
        assert_eq!(rooms, HashSet::from([RoomId(2)]));
    }

    #[test]
    fn parked_pids_are_claimed_once_by_their_owner() {
        let parking = Parking::new(Duration::from_secs(60));
        parking.park("p1".into(), UserId(1), EventSeq(3));
        assert_eq!(parking.claim("p1", UserId(2)), None, "someone else's pid");
        assert_eq!(
            parking.claim("p1", UserId(1)),
            None,
            "gone after a failed claim"
        );
        parking.park("p2".into(), UserId(1), EventSeq(7));
        assert_eq!(parking.claim("p2", UserId(1)), Some(EventSeq(7)));
        assert_eq!(parking.claim("p2", UserId(1)), None, "once");
        assert_eq!(parking.claim("never", UserId(1)), None);
    }
}
