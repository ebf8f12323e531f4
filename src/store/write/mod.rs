//! Write operations. Each is a plain function over a write transaction (run by the writer
//! thread inside a group-commit batch) wrapped by an async method on `Store`. The ops live by
//! subject in `accounts`, `rooms` and `messages`; this module holds what they share.
//!
//! Rule for every op here: read and check first, write after. An op that returns a refusal
//! (`StoreError::NotFound`, `UsernameTaken`, …) must not have changed anything.

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

type MetaTable<'t> = Table<'t, &'static str, u64>;

/// Returns the next value of a counter (1 for a fresh store).
fn next_counter(meta: &mut MetaTable<'_>, key: &str) -> Result<u64, StoreError> {
    let next = meta.get(key)?.map(|v| v.value()).unwrap_or(1);
    meta.insert(key, next + 1)?;
    Ok(next)
}

thread_local! {
    /// Events appended by the ops of the batch the writer thread is running now. Published on
    /// the commit feed after the batch commits, dropped if it aborts. Only the writer thread
    /// runs ops, so a thread-local keeps op signatures plain.
    static BATCH_EVENTS: std::cell::RefCell<Vec<Committed>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One event of the durable log as the writer committed it, with the message it concerns
/// (for message events), so fanout needs no read.
#[derive(Clone, Debug)]
pub struct Committed {
    pub seq: EventSeq,
    pub event: EventRecord,
    pub message: Option<MessageRecord>,
}

/// Takes the events of the batch just run (called by the writer after commit or abort).
pub(super) fn take_batch_events() -> Vec<Committed> {
    BATCH_EVENTS.with(|events| std::mem::take(&mut *events.borrow_mut()))
}

fn append_event(
    txn: &WriteTransaction,
    event: &EventRecord,
    message: Option<&MessageRecord>,
) -> Result<EventSeq, StoreError> {
    let seq = next_counter(&mut txn.open_table(META)?, META_NEXT_EVENT_SEQ)?;
    txn.open_table(EVENTS)?
        .insert(seq, encode(event)?.as_slice())?;
    BATCH_EVENTS.with(|events| {
        events.borrow_mut().push(Committed {
            seq: EventSeq(seq),
            event: event.clone(),
            message: message.cloned(),
        });
    });
    Ok(EventSeq(seq))
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
