//! The fanout actor: the one task that owns the hub. It applies encoded broadcasts in commit
//! order (subscriptions follow joins and leaves), attaches and detaches sockets (see
//! `recovery` for why that makes recovery exact), and keeps presence and typing.
//!
//! Its loop does no store read and builds no JSON on the common path: broadcasts arrive
//! encoded (`broadcast`), sockets arrive with their rooms and missed events already read
//! (`socket`). The one exception is an attach that fell too far behind `RecentEvents`, which
//! reads the store here (counted as `attach_store_reads`).
//!
//! Must not: await anything but its inputs (a slow socket is closed, never waited for).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::RealtimeStats;
use super::broadcast::Broadcast;
use super::recovery::{self, RecentEvents, ReplayBudget};
use super::wire;
use crate::chat::Chat;
use crate::hub::{ConnId, Hub, Outlet, Status};
use crate::ids::{EventSeq, RoomId, UserId};
use crate::store::records::EventKind;

/// How often typing indicators are checked for expiry.
const TYPING_TICK: Duration = Duration::from_millis(500);

/// A signed-in socket, handed to the actor with what it read from the store.
pub struct Attach {
    pub conn: ConnId,
    pub user: UserId,
    pub outlet: Arc<dyn Outlet>,
    /// CONNECT, pushed first.
    pub connect: Bytes,
    /// The log head of the snapshot the socket read `rooms` and `replay` from.
    pub through: EventSeq,
    /// The user's rooms as of `through`.
    pub rooms: HashSet<RoomId>,
    /// For a recovering socket: the packets of what it missed up to `through`.
    pub replay: Option<Vec<Bytes>>,
}

pub enum Command {
    Attach(Attach),
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
    /// The presence grace period of a user's last connection has ended.
    OfflineCheck {
        user: UserId,
        generation: u64,
        rooms: Vec<RoomId>,
    },
}

pub struct Actor {
    pub stats: Arc<RealtimeStats>,
    /// For the presence board, and the rare attach that must read the store.
    pub chat: Arc<Chat>,
    pub hub: Hub,
    /// The newest committed event already fanned out.
    pub applied: EventSeq,
    pub recent: RecentEvents,
    /// Attaches whose snapshot is newer than `applied`, waiting for the feed to catch up.
    pub pending: Vec<Attach>,
    /// To send ourselves the offline check when a grace period ends.
    pub commands: mpsc::UnboundedSender<Command>,
    pub presence_grace: Duration,
}

/// The clock typing deadlines are measured on: tokio's, so tests can pause it.
fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

impl Actor {
    pub async fn run(
        mut self,
        mut broadcasts: mpsc::Receiver<Vec<Arc<Broadcast>>>,
        mut inbox: mpsc::UnboundedReceiver<Command>,
    ) {
        let mut tick = tokio::time::interval(TYPING_TICK);
        loop {
            tokio::select! {
                batch = broadcasts.recv() => match batch {
                    Some(batch) => {
                        for event in batch {
                            self.live(event);
                        }
                        self.attach_pending();
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

    fn live(&mut self, event: Arc<Broadcast>) {
        self.applied = self.applied.max(event.seq);
        match event.kind {
            EventKind::MemberJoin => {
                self.hub.subscribe(event.user, event.room);
                self.publish(event.room, &event.packet, None);
                if let Some(packet) = &event.room_new {
                    self.close_lagging(self.hub.send_to_user(event.user, packet));
                }
            }
            EventKind::MemberLeave => {
                // Published while the leaver is still subscribed, so their other tabs hear it.
                self.publish(event.room, &event.packet, None);
                self.hub.unsubscribe(event.user, event.room);
            }
            _ => self.publish(event.room, &event.packet, None),
        }
        self.recent.push(event);
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
            Command::Attach(attach) => self.attach(attach),
            Command::Detach { conn } => self.detach(conn),
            Command::OfflineCheck {
                user,
                generation,
                rooms,
            } => {
                if self.hub.offline_confirmed(user, generation) {
                    self.set_board(user, None);
                    self.broadcast_presence(user, Status::Offline, &rooms);
                }
            }
            Command::Presence { user, status } => {
                if self.hub.set_status(user, status) {
                    self.set_board(user, Some(status));
                    self.broadcast_presence(user, status, &self.hub.rooms_of(user));
                }
            }
            Command::Typing { room, user, typing } => {
                let changed = if typing {
                    self.hub.typing_start(room, user, now())
                } else {
                    self.hub.typing_stop(room, user)
                };
                if changed {
                    self.broadcast_typing(room, user, typing);
                }
            }
        }
    }

    fn attach_pending(&mut self) {
        if self.pending.iter().all(|a| a.through > self.applied) {
            return;
        }
        let applied = self.applied;
        let (ready, waiting) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|a| a.through <= applied);
        self.pending = waiting;
        for attach in ready {
            self.attach(attach);
        }
    }

    fn attach(&mut self, attach: Attach) {
        if attach.through > self.applied {
            self.pending.push(attach);
            return;
        }
        let Attach {
            conn,
            user,
            outlet,
            connect,
            through,
            mut rooms,
            replay,
        } = attach;
        let recovering = replay.is_some();
        let mut packets = vec![connect];
        packets.extend(replay.unwrap_or_default());
        match self.recent.since(through) {
            Some(missed) => {
                for event in missed {
                    if recovering && event.concerns(user, &rooms) {
                        packets.push(event.packet.clone());
                        if event.kind == EventKind::MemberJoin
                            && event.user == user
                            && let Some(room_new) = &event.room_new
                        {
                            packets.push(room_new.clone());
                        }
                    }
                    recovery::follow_membership(&mut rooms, user, event);
                }
            }
            None => match self.read_since(through, user, recovering) {
                Some((now_rooms, missed)) => {
                    rooms = now_rooms;
                    packets.extend(missed);
                }
                None => return outlet.close_lagging(),
            },
        }
        for packet in packets {
            if !outlet.push(packet) {
                return outlet.close_lagging();
            }
        }
        let rooms: Vec<RoomId> = rooms.into_iter().collect();
        let (_, first) = self.hub.attach(conn, user, outlet, rooms.iter().copied());
        if first && self.hub.set_status(user, Status::Online) {
            self.set_board(user, Some(Status::Online));
            self.broadcast_presence(user, Status::Online, &rooms);
        }
    }

    /// The slow path of an attach whose `(through, applied]` is no longer in memory: the
    /// user's rooms now, and (when recovering) what they missed, read from the store.
    fn read_since(
        &self,
        through: EventSeq,
        user: UserId,
        recovering: bool,
    ) -> Option<(HashSet<RoomId>, Vec<Bytes>)> {
        self.stats.attach_store_reads.add(1);
        let snapshot = self.chat.store().snapshot().ok()?;
        let rooms: HashSet<RoomId> = snapshot.rooms_of(user).ok()?.into_iter().collect();
        let missed = if recovering {
            let unbounded = ReplayBudget {
                packets: usize::MAX,
                bytes: usize::MAX,
            };
            recovery::read_missed(
                &self.chat,
                &snapshot,
                through,
                self.applied,
                user,
                &rooms,
                unbounded,
            )?
        } else {
            Vec::new()
        };
        Some((rooms, missed))
    }

    fn detach(&mut self, conn: ConnId) {
        self.pending.retain(|a| a.conn != conn);
        let Some(detached) = self.hub.detach(conn) else {
            return;
        };
        let user = detached.user;
        if let Some(generation) = detached.last_generation {
            for room in self.hub.typing_stop_all(user) {
                self.broadcast_typing(room, user, false);
            }
            let commands = self.commands.clone();
            let grace = self.presence_grace;
            let rooms = detached.rooms;
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                let _ = commands.send(Command::OfflineCheck {
                    user,
                    generation,
                    rooms,
                });
            });
        }
    }

    fn set_board(&self, user: UserId, status: Option<Status>) {
        if let Ok(mut board) = self.chat.presence().write() {
            match status {
                Some(status) => board.insert(user, status),
                None => board.remove(&user),
            };
        }
    }

    /// Tells everyone sharing one of `rooms` (the user's rooms) about their presence.
    fn broadcast_presence(&self, user: UserId, status: Status, rooms: &[RoomId]) {
        let packet = wire::presence(user, status);
        self.close_lagging(self.hub.send_to_peers(user, rooms, &packet));
    }

    fn broadcast_typing(&self, room: RoomId, user: UserId, typing: bool) {
        self.publish(room, &wire::typing(room, user, typing), Some(user));
    }

    fn expire_typing(&mut self) {
        for (room, user) in self.hub.typing_expired(now()) {
            self.broadcast_typing(room, user, false);
        }
    }
}

#[cfg(test)]
#[path = "actor_tests.rs"]
mod tests;
