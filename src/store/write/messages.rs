//! Message writes: appending at a room's next seq (idempotent per client id), editing, and
//! deleting (a tombstone keeps the seq). Each change logs an event carrying the message.
//!
//! Must not: decide who may edit or delete what (that is `chat`); only "the sender is a member"
//! is checked here, because it must hold atomically with the append.

use redb::ReadableTable;

use super::{Batch, event, get_member, get_room, put_member, put_room};
use crate::clock::Timestamp;
use crate::ids::{ClientId, MessageSeq, RoomId, UserId};
use crate::store::records::{EventKind, MessageRecord, decode, encode};
use crate::store::tables::*;
use crate::store::{Store, StoreError};

pub struct NewMessage {
    pub room: RoomId,
    pub sender: UserId,
    pub body: String,
    pub client_id: Option<ClientId>,
    pub reply_to: Option<MessageSeq>,
}

pub struct AppendOutcome {
    pub seq: MessageSeq,
    pub message: MessageRecord,
    /// True when `client_id` matched an earlier send: nothing new was written.
    pub replayed: bool,
}

/// Reads a message, lets `change` check and change it, and stores and logs it if `change`
/// says it changed. `change` refuses by returning an error before touching the message.
fn change_message<F>(
    batch: &mut Batch<'_>,
    room: RoomId,
    seq: MessageSeq,
    actor: UserId,
    kind: EventKind,
    change: F,
) -> Result<MessageRecord, StoreError>
where
    F: FnOnce(&mut MessageRecord) -> Result<bool, StoreError>,
{
    let mut messages = batch.txn().open_table(MESSAGES)?;
    let found = messages
        .get((room.0, seq.0))?
        .map(|v| decode::<MessageRecord>(v.value()));
    let mut message = found.ok_or(StoreError::NotFound("message"))??;
    if !change(&mut message)? {
        return Ok(message);
    }
    messages.insert((room.0, seq.0), encode(&message)?.as_slice())?;
    drop(messages);
    batch.append_event(&event(room, kind, seq, actor), Some(&message))?;
    Ok(message)
}

impl Store {
    /// Appends a message at the room's next seq. The sender must be a member (checked here,
    /// atomically with the append). The sender's read position moves to their own message.
    pub async fn append_message(&self, new: NewMessage) -> Result<AppendOutcome, StoreError> {
        self.write(move |batch| {
            let txn = batch.txn();
            let mut room = get_room(txn, new.room)?;
            let Some(mut sender) = get_member(txn, new.room, new.sender)? else {
                return Err(StoreError::NotMember);
            };
            if let Some(client_id) = new.client_id {
                let earlier = txn
                    .open_table(CLIENT_IDS)?
                    .get((new.room.0, client_id.0))?
                    .map(|v| v.value());
                if let Some(seq) = earlier {
                    let messages = txn.open_table(MESSAGES)?;
                    let found = messages.get((new.room.0, seq))?.ok_or(StoreError::Corrupt(
                        "client id names a missing message".into(),
                    ))?;
                    let message: MessageRecord = decode(found.value())?;
                    if message.sender != new.sender {
                        return Err(StoreError::ClientIdConflict);
                    }
                    return Ok(AppendOutcome {
                        seq: MessageSeq(seq),
                        message,
                        replayed: true,
                    });
                }
            }
            if let Some(target) = new.reply_to
                && (target.0 == 0 || target > room.last_seq)
            {
                return Err(StoreError::BadReplyTarget);
            }
            // Checks done; from here on only writes.
            let seq = MessageSeq(room.last_seq.0 + 1);
            let now = Timestamp::now();
            let message = MessageRecord {
                sender: new.sender,
                created_at: now,
                body: new.body,
                attachments: Vec::new(),
                reply_to: new.reply_to,
                edited_at: None,
                deleted: false,
                client_id: new.client_id,
            };
            txn.open_table(MESSAGES)?
                .insert((new.room.0, seq.0), encode(&message)?.as_slice())?;
            if let Some(client_id) = new.client_id {
                txn.open_table(CLIENT_IDS)?
                    .insert((new.room.0, client_id.0), seq.0)?;
            }
            room.last_seq = seq;
            room.last_activity = now;
            put_room(txn, new.room, &room)?;
            sender.last_read = seq;
            put_member(txn, new.room, new.sender, &sender)?;
            batch.append_event(
                &event(new.room, EventKind::MessageNew, seq, new.sender),
                Some(&message),
            )?;
            Ok(AppendOutcome {
                seq,
                message,
                replayed: false,
            })
        })
        .await
    }

    pub async fn edit_message(
        &self,
        room: RoomId,
        seq: MessageSeq,
        actor: UserId,
        body: String,
    ) -> Result<MessageRecord, StoreError> {
        self.write(move |batch| {
            change_message(batch, room, seq, actor, EventKind::MessageUpdate, |m| {
                if m.deleted {
                    return Err(StoreError::MessageDeleted);
                }
                m.body = body;
                m.edited_at = Some(Timestamp::now());
                Ok(true)
            })
        })
        .await
    }

    /// Turns a message into a tombstone: it keeps its seq, sender and time; its content goes.
    /// Deleting a tombstone again changes nothing.
    pub async fn delete_message(
        &self,
        room: RoomId,
        seq: MessageSeq,
        actor: UserId,
    ) -> Result<MessageRecord, StoreError> {
        self.write(move |batch| {
            change_message(batch, room, seq, actor, EventKind::MessageDelete, |m| {
                if m.deleted {
                    return Ok(false);
                }
                m.deleted = true;
                m.body.clear();
                m.attachments.clear();
                Ok(true)
            })
        })
        .await
    }
}
