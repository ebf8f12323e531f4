//! Committed events become `Broadcast`s here: each encoded once into the `Bytes` every
//! subscriber will share, with what the actor needs to route it. The store reads an event
//! needs (the room's new state for `room:update`, the joiner's own view for `room:new`) are
//! done here too, on the encoder's task (or the recovering socket's), so that the actor that
//! owns the hub never reads the store and never builds JSON.
//!
//! Must not: touch the hub or any connection.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::wire;
use crate::chat::Chat;
use crate::feed::FeedReceiver;
use crate::ids::{EventSeq, RoomId, UserId};
use crate::store::records::EventKind;
use crate::store::{Committed, Snapshot};

/// One logged event, ready for fanout.
#[derive(Debug)]
pub struct Broadcast {
    pub seq: EventSeq,
    pub room: RoomId,
    pub kind: EventKind,
    /// Who acted (the member, for membership events).
    pub user: UserId,
    /// The packet for the room, with its offset.
    pub packet: Bytes,
    /// For a join: `room:new` for the member who joined (their own view of the room).
    pub room_new: Option<Bytes>,
}

impl Broadcast {
    /// Whether a socket of `user`, member of `rooms`, is owed this event.
    pub fn concerns(&self, user: UserId, rooms: &HashSet<RoomId>) -> bool {
        rooms.contains(&self.room) || self.user == user
    }
}

/// Encodes one committed event. `snapshot` is a read of the store at least as new as the
/// event, for the kinds that need one (`needs_read`); without one they go out without what
/// the read would have added (the room id alone), as before a store failure.
pub fn encode(chat: &Chat, snapshot: Option<&Snapshot>, committed: &Committed) -> Broadcast {
    let event = &committed.event;
    let room = match (event.kind, snapshot) {
        (EventKind::RoomUpdate, Some(snapshot)) => snapshot.room(event.room).ok().flatten(),
        _ => None,
    };
    let room_new = match (event.kind, snapshot) {
        (EventKind::MemberJoin, Some(snapshot)) => room_new(chat, snapshot, event.user, event.room),
        _ => None,
    };
    Broadcast {
        seq: committed.seq,
        room: event.room,
        kind: event.kind,
        user: event.user,
        packet: wire::committed(committed, room.as_ref()),
        room_new,
    }
}

/// `room:new` for `user`, who just joined `room`.
pub fn room_new(chat: &Chat, snapshot: &Snapshot, user: UserId, room: RoomId) -> Option<Bytes> {
    let record = snapshot.room(room).ok()??;
    let view = chat.room_view(snapshot, user, room, &record).ok()?;
    Some(wire::room_new(&view))
}

fn needs_read(kind: EventKind) -> bool {
    matches!(kind, EventKind::RoomUpdate | EventKind::MemberJoin)
}

/// Encoded batches waiting for the actor before the encoder waits for it.
pub const ENCODED_DEPTH: usize = 64;

/// The realtime layer's subscriber of the commit feed: encodes each batch, in order, and
/// hands it to the actor. Lossless end to end: it waits for the actor rather than drop.
pub fn spawn_encoder(
    chat: Arc<Chat>,
    mut feed: FeedReceiver,
    actor: mpsc::Sender<Vec<Arc<Broadcast>>>,
) {
    tokio::spawn(async move {
        while let Some(batch) = feed.recv().await {
            let snapshot = batch
                .iter()
                .any(|c| needs_read(c.event.kind))
                .then(|| chat.store().snapshot().ok())
                .flatten();
            let encoded = batch
                .iter()
                .map(|c| Arc::new(encode(&chat, snapshot.as_ref(), c)))
                .collect();
            if actor.send(encoded).await.is_err() {
                break;
            }
        }
        tracing::debug!("realtime encoder stopped");
    });
}
