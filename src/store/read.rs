//! Read queries over one consistent snapshot (a redb read transaction). Each query opens the
//! tables it needs; history pages are one range scan each, whatever the room's size.

use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata};

use super::StoreError;
use super::records::{
    EventRecord, MemberRecord, MessageRecord, RoomKind, RoomRecord, SessionRecord, UserRecord,
    Visibility, decode,
};
use super::tables::*;
use crate::ids::{EventSeq, MessageSeq, RoomId, UserId};

/// Unread counting stops here: a badge says "999+" long before this matters, and the scan
/// stays bounded for a member who has not read a busy room in months.
const UNREAD_COUNT_CAP: u64 = 1000;

pub struct Snapshot {
    txn: ReadTransaction,
}

impl Snapshot {
    pub(super) fn new(txn: ReadTransaction) -> Snapshot {
        Snapshot { txn }
    }

    /// Whether the store answers at all (used by /healthz).
    pub fn ping(&self) -> Result<u64, StoreError> {
        Ok(self.txn.open_table(META)?.len()?)
    }

    pub fn user(&self, user: UserId) -> Result<Option<UserRecord>, StoreError> {
        let table = self.txn.open_table(USERS)?;
        table.get(user.0)?.map(|v| decode(v.value())).transpose()
    }

    pub fn user_id_by_name(&self, username: &str) -> Result<Option<UserId>, StoreError> {
        let table = self.txn.open_table(USERNAMES)?;
        let key = username.to_lowercase();
        Ok(table.get(key.as_str())?.map(|v| UserId(v.value())))
    }

    pub fn room_count(&self) -> Result<u64, StoreError> {
        Ok(self.txn.open_table(ROOMS)?.len()?)
    }

    pub fn user_count(&self) -> Result<u64, StoreError> {
        Ok(self.txn.open_table(USERS)?.len()?)
    }

    /// Users whose lowercased username starts with `prefix`, in username order.
    pub fn search_users(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(UserId, UserRecord)>, StoreError> {
        let names = self.txn.open_table(USERNAMES)?;
        let prefix = prefix.to_lowercase();
        let mut ids = Vec::new();
        for entry in names.range(prefix.as_str()..)? {
            let (name, id) = entry?;
            if !name.value().starts_with(prefix.as_str()) || ids.len() >= limit {
                break;
            }
            ids.push(UserId(id.value()));
        }
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(user) = self.user(id)? {
                found.push((id, user));
            }
        }
        Ok(found)
    }

    pub fn all_users(&self) -> Result<Vec<(UserId, UserRecord)>, StoreError> {
        let table = self.txn.open_table(USERS)?;
        let mut all = Vec::new();
        for entry in table.iter()? {
            let (id, bytes) = entry?;
            all.push((UserId(id.value()), decode(bytes.value())?));
        }
        Ok(all)
    }

    pub fn session(&self, token_hash: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError> {
        let table = self.txn.open_table(SESSIONS)?;
        table
            .get(token_hash)?
            .map(|v| decode(v.value()))
            .transpose()
    }

    /// Moves whenever a session is ended by any process (see `tables::META_SESSION_EPOCH`).
    pub fn session_epoch(&self) -> Result<u64, StoreError> {
        let meta = self.txn.open_table(META)?;
        Ok(meta.get(META_SESSION_EPOCH)?.map_or(0, |v| v.value()))
    }

    pub fn room(&self, room: RoomId) -> Result<Option<RoomRecord>, StoreError> {
        let table = self.txn.open_table(ROOMS)?;
        table.get(room.0)?.map(|v| decode(v.value())).transpose()
    }

    pub fn member(&self, room: RoomId, user: UserId) -> Result<Option<MemberRecord>, StoreError> {
        let table = self.txn.open_table(MEMBERS)?;
        table
            .get((room.0, user.0))?
            .map(|v| decode(v.value()))
            .transpose()
    }

    /// Every member of a room, in user id order.
    pub fn members(&self, room: RoomId) -> Result<Vec<(UserId, MemberRecord)>, StoreError> {
        let table = self.txn.open_table(MEMBERS)?;
        let mut members = Vec::new();
        for entry in table.range((room.0, 0)..=(room.0, u64::MAX))? {
            let (key, bytes) = entry?;
            members.push((UserId(key.value().1), decode(bytes.value())?));
        }
        Ok(members)
    }

    /// The rooms a user is a member of, in room id order.
    pub fn rooms_of(&self, user: UserId) -> Result<Vec<RoomId>, StoreError> {
        let table = self.txn.open_table(USER_ROOMS)?;
        let mut rooms = Vec::new();
        for entry in table.range((user.0, 0)..=(user.0, u64::MAX))? {
            rooms.push(RoomId(entry?.0.value().1));
        }
        Ok(rooms)
    }

    /// Every public group room. A full scan of `rooms`: fine for the hundreds of rooms a
    /// self-hosted team has; an index table is the step up if that changes.
    pub fn public_rooms(&self) -> Result<Vec<(RoomId, RoomRecord)>, StoreError> {
        let table = self.txn.open_table(ROOMS)?;
        let mut rooms = Vec::new();
        for entry in table.iter()? {
            let (id, bytes) = entry?;
            let room: RoomRecord = decode(bytes.value())?;
            if room.kind == RoomKind::Group && room.visibility == Visibility::Public {
                rooms.push((RoomId(id.value()), room));
            }
        }
        Ok(rooms)
    }

    pub fn message(
        &self,
        room: RoomId,
        seq: MessageSeq,
    ) -> Result<Option<MessageRecord>, StoreError> {
        let table = self.txn.open_table(MESSAGES)?;
        table
            .get((room.0, seq.0))?
            .map(|v| decode(v.value()))
            .transpose()
    }

    /// Up to `limit` messages with seq below `before`, newest first.
    pub fn messages_before(
        &self,
        room: RoomId,
        before: MessageSeq,
        limit: usize,
    ) -> Result<Vec<(MessageSeq, MessageRecord)>, StoreError> {
        let table = self.txn.open_table(MESSAGES)?;
        let mut page = Vec::with_capacity(limit.min(256));
        for entry in table
            .range((room.0, 0)..(room.0, before.0))?
            .rev()
            .take(limit)
        {
            let (key, bytes) = entry?;
            page.push((MessageSeq(key.value().1), decode(bytes.value())?));
        }
        Ok(page)
    }

    /// Up to `limit` messages with seq above `after`, oldest first.
    pub fn messages_after(
        &self,
        room: RoomId,
        after: MessageSeq,
        limit: usize,
    ) -> Result<Vec<(MessageSeq, MessageRecord)>, StoreError> {
        let table = self.txn.open_table(MESSAGES)?;
        let Some(start) = after.0.checked_add(1) else {
            return Ok(Vec::new());
        };
        let mut page = Vec::with_capacity(limit.min(256));
        for entry in table
            .range((room.0, start)..=(room.0, u64::MAX))?
            .take(limit)
        {
            let (key, bytes) = entry?;
            page.push((MessageSeq(key.value().1), decode(bytes.value())?));
        }
        Ok(page)
    }

    pub fn last_message(
        &self,
        room: RoomId,
    ) -> Result<Option<(MessageSeq, MessageRecord)>, StoreError> {
        Ok(self.messages_before(room, MessageSeq(u64::MAX), 1)?.pop())
    }

    /// Messages after `last_read` that `reader` did not send and that are not deleted,
    /// counted up to `UNREAD_COUNT_CAP`.
    pub fn unread_count(
        &self,
        room: RoomId,
        reader: UserId,
        last_read: MessageSeq,
    ) -> Result<u64, StoreError> {
        let table = self.txn.open_table(MESSAGES)?;
        let Some(start) = last_read.0.checked_add(1) else {
            return Ok(0);
        };
        let mut unread = 0;
        for entry in table.range((room.0, start)..=(room.0, u64::MAX))? {
            let (_, bytes) = entry?;
            let message: MessageRecord = decode(bytes.value())?;
            if message.sender != reader && !message.deleted {
                unread += 1;
                if unread >= UNREAD_COUNT_CAP {
                    break;
                }
            }
        }
        Ok(unread)
    }

    /// The newest event in the log (0 for an empty log).
    pub fn last_event_seq(&self) -> Result<EventSeq, StoreError> {
        let table = self.txn.open_table(EVENTS)?;
        Ok(EventSeq(table.last()?.map_or(0, |(seq, _)| seq.value())))
    }

    /// Up to `limit` events after `after`, in log order.
    pub fn events_after(
        &self,
        after: EventSeq,
        limit: usize,
    ) -> Result<Vec<(EventSeq, EventRecord)>, StoreError> {
        let table = self.txn.open_table(EVENTS)?;
        let mut events = Vec::new();
        for entry in table.range(after.0.saturating_add(1)..)?.take(limit) {
            let (seq, bytes) = entry?;
            events.push((EventSeq(seq.value()), decode(bytes.value())?));
        }
        Ok(events)
    }
}
