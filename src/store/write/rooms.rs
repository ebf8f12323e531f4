//! Room writes: creating group and direct rooms, changing them, membership, and members' read
//! positions. Every change a room's members should hear about logs an event.
//!
//! Must not: decide who may create, join or change a room (that is `chat`); membership here is
//! only checked where the store alone can check it atomically.

use redb::{ReadableTable, WriteTransaction};

use super::{Batch, event, get_member, get_room, get_user, next_counter, put_member, put_room};
use crate::clock::Timestamp;
use crate::ids::{MessageSeq, RoomId, UserId};
use crate::store::records::{EventKind, MemberRecord, RoomKind, RoomRecord, RoomRole, Visibility};
use crate::store::tables::*;
use crate::store::{Store, StoreError};

/// The key of a direct room: the pair in ascending order, so (a, b) and (b, a) meet.
fn direct_key(a: UserId, b: UserId) -> (u64, u64) {
    (a.0.min(b.0), a.0.max(b.0))
}

fn new_room_id(txn: &WriteTransaction) -> Result<RoomId, StoreError> {
    Ok(RoomId(next_counter(
        &mut txn.open_table(META)?,
        META_NEXT_ROOM_ID,
    )?))
}

/// Adds a member to a room that exists, bumping the count. Caller has checked it is not one.
fn insert_member(
    batch: &mut Batch<'_>,
    room: RoomId,
    record: &mut RoomRecord,
    user: UserId,
    role: RoomRole,
    now: Timestamp,
) -> Result<MemberRecord, StoreError> {
    let txn = batch.txn();
    let member = MemberRecord {
        role,
        joined_at: now,
        // Joining does not make old history unread.
        last_read: record.last_seq,
    };
    put_member(txn, room, user, &member)?;
    txn.open_table(USER_ROOMS)?.insert((user.0, room.0), ())?;
    record.member_count += 1;
    batch.append_event(
        &event(room, EventKind::MemberJoin, MessageSeq(0), user),
        None,
    )?;
    Ok(member)
}

impl Store {
    /// Creates a group room with `creator` as its owner.
    pub async fn create_room(
        &self,
        name: String,
        visibility: Visibility,
        topic: Option<String>,
        creator: UserId,
    ) -> Result<(RoomId, RoomRecord), StoreError> {
        self.write(move |batch| {
            get_user(batch.txn(), creator)?;
            let id = new_room_id(batch.txn())?;
            let now = Timestamp::now();
            let mut record = RoomRecord {
                name,
                kind: RoomKind::Group,
                visibility,
                topic,
                created_at: now,
                created_by: creator,
                last_seq: MessageSeq(0),
                member_count: 0,
                last_activity: now,
            };
            insert_member(batch, id, &mut record, creator, RoomRole::Owner, now)?;
            put_room(batch.txn(), id, &record)?;
            Ok((id, record))
        })
        .await
    }

    /// The direct room between two users, created on first use. `bool` is true if created.
    pub async fn open_direct(
        &self,
        a: UserId,
        b: UserId,
    ) -> Result<(RoomId, RoomRecord, bool), StoreError> {
        self.write(move |batch| {
            let txn = batch.txn();
            let key = direct_key(a, b);
            let existing = txn.open_table(DIRECT_ROOMS)?.get(key)?.map(|v| v.value());
            if let Some(id) = existing {
                let id = RoomId(id);
                return Ok((id, get_room(txn, id)?, false));
            }
            get_user(txn, a)?;
            get_user(txn, b)?;
            let id = new_room_id(txn)?;
            let now = Timestamp::now();
            let mut record = RoomRecord {
                name: String::new(),
                kind: RoomKind::Direct,
                visibility: Visibility::Private,
                topic: None,
                created_at: now,
                created_by: a,
                last_seq: MessageSeq(0),
                member_count: 0,
                last_activity: now,
            };
            insert_member(batch, id, &mut record, a, RoomRole::Member, now)?;
            insert_member(batch, id, &mut record, b, RoomRole::Member, now)?;
            put_room(txn, id, &record)?;
            txn.open_table(DIRECT_ROOMS)?.insert(key, id.0)?;
            Ok((id, record, true))
        })
        .await
    }

    /// `topic: Some(None)` clears the topic; `None` leaves a field as it is.
    pub async fn update_room(
        &self,
        room: RoomId,
        actor: UserId,
        name: Option<String>,
        topic: Option<Option<String>>,
    ) -> Result<RoomRecord, StoreError> {
        self.write(move |batch| {
            let mut record = get_room(batch.txn(), room)?;
            if let Some(name) = name {
                record.name = name;
            }
            if let Some(topic) = topic {
                record.topic = topic;
            }
            put_room(batch.txn(), room, &record)?;
            batch.append_event(
                &event(room, EventKind::RoomUpdate, MessageSeq(0), actor),
                None,
            )?;
            Ok(record)
        })
        .await
    }

    pub async fn add_member(
        &self,
        room: RoomId,
        user: UserId,
        role: RoomRole,
    ) -> Result<MemberRecord, StoreError> {
        self.write(move |batch| {
            let txn = batch.txn();
            let mut record = get_room(txn, room)?;
            get_user(txn, user)?;
            if get_member(txn, room, user)?.is_some() {
                return Err(StoreError::AlreadyMember);
            }
            let member = insert_member(batch, room, &mut record, user, role, Timestamp::now())?;
            put_room(txn, room, &record)?;
            Ok(member)
        })
        .await
    }

    pub async fn remove_member(&self, room: RoomId, user: UserId) -> Result<(), StoreError> {
        self.write(move |batch| {
            let txn = batch.txn();
            let mut record = get_room(txn, room)?;
            if get_member(txn, room, user)?.is_none() {
                return Err(StoreError::NotMember);
            }
            txn.open_table(MEMBERS)?.remove((room.0, user.0))?;
            txn.open_table(USER_ROOMS)?.remove((user.0, room.0))?;
            record.member_count = record.member_count.saturating_sub(1);
            put_room(txn, room, &record)?;
            batch.append_event(
                &event(room, EventKind::MemberLeave, MessageSeq(0), user),
                None,
            )?;
            Ok(())
        })
        .await
    }

    /// Moves the member's read position forward to `seq` (clamped to the room's last seq);
    /// never backwards. Returns the position after the call.
    pub async fn mark_read(
        &self,
        room: RoomId,
        user: UserId,
        seq: MessageSeq,
    ) -> Result<MessageSeq, StoreError> {
        self.write(move |batch| {
            let txn = batch.txn();
            let record = get_room(txn, room)?;
            let mut member = get_member(txn, room, user)?.ok_or(StoreError::NotMember)?;
            let target = seq.min(record.last_seq);
            if target <= member.last_read {
                return Ok(member.last_read);
            }
            member.last_read = target;
            put_member(txn, room, user, &member)?;
            batch.append_event(&event(room, EventKind::ReadMarker, target, user), None)?;
            Ok(target)
        })
        .await
    }
}
