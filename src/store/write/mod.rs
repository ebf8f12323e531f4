//! Write operations. Each op is a plain function over a `Batch` (the write transaction of one
//! group-commit batch, shared by every op in it, plus the events the batch has logged so far),
//! run by the writer thread and wrapped by an async method on `Store`. The ops live by subject
//! in `accounts`, `rooms` and `messages`; this module holds the batch context and the helpers
//! they share.
//!
//! Rule for every op here: read and check first, write after. An op that returns a refusal
//! (`StoreError::NotFound`, `UsernameTaken`, …) must not have changed anything, because its
//! transaction is shared: the other ops of the batch still commit.
//!
//! Must not: commit, abort or publish (the writer loop in `store` does that), or decide who may
//! do what (that is `chat`).

mod accounts;
mod messages;
mod rooms;

pub use accounts::Admission;
pub use messages::{AppendOutcome, NewMessage};

use redb::{ReadableTable, Table, WriteTransaction};

use super::StoreError;
use super::records::{
    EventKind, EventRecord, MemberRecord, MessageRecord, RoomRecord, UserRecord, decode, encode,
};
use super::tables::*;
use crate::clock::Timestamp;
use crate::ids::{EventSeq, MessageSeq, RoomId, UserId};

/// One event of the durable log as the writer committed it, with the message it concerns
/// (for message events), so fanout needs no read.
#[derive(Clone, Debug)]
pub struct Committed {
    pub seq: EventSeq,
    pub event: EventRecord,
    pub message: Option<MessageRecord>,
}

/// What the ops of one group-commit batch share: its write transaction, and the events they
/// have logged in it. The writer makes one per batch; after the commit it publishes the
/// events on the commit feed, and if the batch aborts they are dropped with it.
pub struct Batch<'a> {
    txn: &'a WriteTransaction,
    events: Vec<Committed>,
}

impl<'a> Batch<'a> {
    pub(in crate::store) fn new(txn: &'a WriteTransaction) -> Batch<'a> {
        Batch {
            txn,
            events: Vec::new(),
        }
    }

    /// The batch's transaction. Every op of the batch writes to it, so check before writing.
    pub fn txn(&self) -> &'a WriteTransaction {
        self.txn
    }

    /// How many events the batch has logged so far.
    pub(in crate::store) fn events_logged(&self) -> usize {
        self.events.len()
    }

    pub(in crate::store) fn into_events(self) -> Vec<Committed> {
        self.events
    }

    /// Logs `event` in the durable log and keeps it for the commit feed.
    fn append_event(
        &mut self,
        event: &EventRecord,
        message: Option<&MessageRecord>,
    ) -> Result<EventSeq, StoreError> {
        let seq = next_counter(&mut self.txn.open_table(META)?, META_NEXT_EVENT_SEQ)?;
        self.txn
            .open_table(EVENTS)?
            .insert(seq, encode(event)?.as_slice())?;
        self.events.push(Committed {
            seq: EventSeq(seq),
            event: event.clone(),
            message: message.cloned(),
        });
        Ok(EventSeq(seq))
    }
}

type MetaTable<'t> = Table<'t, &'static str, u64>;

/// Returns the next value of a counter (1 for a fresh store).
fn next_counter(meta: &mut MetaTable<'_>, key: &str) -> Result<u64, StoreError> {
    let next = meta.get(key)?.map(|v| v.value()).unwrap_or(1);
    meta.insert(key, next + 1)?;
    Ok(next)
}

fn event(room: RoomId, kind: EventKind, seq: MessageSeq, user: UserId) -> EventRecord {
    EventRecord {
        room,
        kind,
        seq,
        user,
        at: Timestamp::now(),
    }
}

fn get_room(txn: &WriteTransaction, room: RoomId) -> Result<RoomRecord, StoreError> {
    let rooms = txn.open_table(ROOMS)?;
    let record = rooms.get(room.0)?.ok_or(StoreError::NotFound("room"))?;
    decode(record.value())
}

fn put_room(txn: &WriteTransaction, room: RoomId, record: &RoomRecord) -> Result<(), StoreError> {
    txn.open_table(ROOMS)?
        .insert(room.0, encode(record)?.as_slice())?;
    Ok(())
}

fn get_member(
    txn: &WriteTransaction,
    room: RoomId,
    user: UserId,
) -> Result<Option<MemberRecord>, StoreError> {
    let members = txn.open_table(MEMBERS)?;
    let found = members.get((room.0, user.0))?;
    found.map(|v| decode(v.value())).transpose()
}

fn put_member(
    txn: &WriteTransaction,
    room: RoomId,
    user: UserId,
    member: &MemberRecord,
) -> Result<(), StoreError> {
    txn.open_table(MEMBERS)?
        .insert((room.0, user.0), encode(member)?.as_slice())?;
    Ok(())
}

fn get_user(txn: &WriteTransaction, user: UserId) -> Result<UserRecord, StoreError> {
    let users = txn.open_table(USERS)?;
    let found = users.get(user.0)?.ok_or(StoreError::NotFound("user"))?;
    decode(found.value())
}

fn put_user(txn: &WriteTransaction, user: UserId, record: &UserRecord) -> Result<(), StoreError> {
    txn.open_table(USERS)?
        .insert(user.0, encode(record)?.as_slice())?;
    Ok(())
}
