//! Write operations. Each is a plain function over a write transaction (run by the writer
//! thread inside a group-commit batch) wrapped by an async method on `Store`.
//!
//! Rule for every op here: read and check first, write after. An op that returns a refusal
//! (`StoreError::NotFound`, `UsernameTaken`, …) must not have changed anything.

use redb::{ReadableTable, ReadableTableMetadata, Table, WriteTransaction};

use super::read::direct_key;
use super::records::{
    EventKind, EventRecord, InviteRecord, MemberRecord, MessageRecord, RoomKind, RoomRecord,
    RoomRole, SessionRecord, UserRecord, Visibility, decode, encode,
};
use super::tables::*;
use super::{Store, StoreError};
use crate::clock::Timestamp;
use crate::ids::{ClientId, EventSeq, MessageSeq, RoomId, UserId};

/// Who may create an account right now. The very first account is always admitted, and is the
/// admin, whatever this says: that is how a fresh server is set up from the browser.
#[derive(Clone, Copy, Debug)]
pub enum Admission {
    Open,
    /// Registration needs an invite; this is sha256 of the one offered, if any.
    InviteOnly(Option<[u8; 32]>),
    Closed,
    /// The operator on the command line: always admitted.
    Operator {
        admin: bool,
    },
}

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

/// Adds a member to a room that exists, bumping the count. Caller has checked it is not one.
fn insert_member(
    txn: &WriteTransaction,
    room: RoomId,
    record: &mut RoomRecord,
    user: UserId,
    role: RoomRole,
    now: Timestamp,
) -> Result<MemberRecord, StoreError> {
    let member = MemberRecord {
        role,
        joined_at: now,
        // Joining does not make old history unread.
        last_read: record.last_seq,
    };
    put_member(txn, room, user, &member)?;
    txn.open_table(USER_ROOMS)?.insert((user.0, room.0), ())?;
    record.member_count += 1;
    append_event(
        txn,
        &event(room, EventKind::MemberJoin, MessageSeq(0), user),
        None,
    )?;
    Ok(member)
}

fn delete_sessions_of(
    txn: &WriteTransaction,
    user: UserId,
    keep: Option<[u8; 32]>,
) -> Result<(), StoreError> {
    let mut by_user = txn.open_table(USER_SESSIONS)?;
    let mut sessions = txn.open_table(SESSIONS)?;
    let mut doomed = Vec::new();
    for entry in by_user.range((user.0, [0u8; 32])..=(user.0, [0xffu8; 32]))? {
        let hash = entry?.0.value().1;
        if Some(hash) != keep {
            doomed.push(hash);
        }
    }
    for hash in doomed {
        by_user.remove((user.0, hash))?;
        sessions.remove(hash)?;
    }
    Ok(())
}

impl Store {
    pub async fn create_user(
        &self,
        username: String,
        display_name: String,
        password_hash: String,
        admission: Admission,
    ) -> Result<(UserId, UserRecord), StoreError> {
        self.write(move |txn| {
            let key = username.to_lowercase();
            let first_account = txn.open_table(USERS)?.is_empty()?;
            if txn.open_table(USERNAMES)?.get(key.as_str())?.is_some() {
                return Err(StoreError::UsernameTaken);
            }
            let mut invite_to_consume = None;
            let is_admin = match admission {
                _ if first_account => true,
                Admission::Open => false,
                Admission::Closed => return Err(StoreError::RegistrationClosed),
                Admission::Operator { admin } => admin,
                Admission::InviteOnly(None) => return Err(StoreError::InvalidInvite),
                Admission::InviteOnly(Some(hash)) => {
                    let invites = txn.open_table(INVITES)?;
                    let found = invites.get(hash)?.ok_or(StoreError::InvalidInvite)?;
                    let invite: InviteRecord = decode(found.value())?;
                    if invite.uses_left == 0 || invite.expires_at <= Timestamp::now() {
                        return Err(StoreError::InvalidInvite);
                    }
                    invite_to_consume = Some((hash, invite));
                    false
                }
            };
            // Checks done; from here on only writes.
            let id = UserId(next_counter(&mut txn.open_table(META)?, META_NEXT_USER_ID)?);
            let record = UserRecord {
                username,
                display_name,
                password_hash,
                is_admin,
                disabled: false,
                avatar: None,
                created_at: Timestamp::now(),
            };
            put_user(txn, id, &record)?;
            txn.open_table(USERNAMES)?.insert(key.as_str(), id.0)?;
            if let Some((hash, mut invite)) = invite_to_consume {
                let mut invites = txn.open_table(INVITES)?;
                invite.uses_left -= 1;
                if invite.uses_left == 0 {
                    invites.remove(hash)?;
                } else {
                    invites.insert(hash, encode(&invite)?.as_slice())?;
                }
            }
            Ok((id, record))
        })
        .await
    }

    /// `avatar: Some(None)` clears the avatar; `None` leaves a field as it is.
    pub async fn update_user(
        &self,
        user: UserId,
        display_name: Option<String>,
        avatar: Option<Option<String>>,
    ) -> Result<UserRecord, StoreError> {
        self.write(move |txn| {
            let mut record = get_user(txn, user)?;
            if let Some(name) = display_name {
                record.display_name = name;
            }
            if let Some(avatar) = avatar {
                record.avatar = avatar;
            }
            put_user(txn, user, &record)?;
            Ok(record)
        })
        .await
    }

    /// Sets a new password hash and ends every session of the user except `keep`.
    pub async fn set_password(
        &self,
        user: UserId,
        password_hash: String,
        keep: Option<[u8; 32]>,
    ) -> Result<(), StoreError> {
        self.write(move |txn| {
            let mut record = get_user(txn, user)?;
            record.password_hash = password_hash;
            put_user(txn, user, &record)?;
            delete_sessions_of(txn, user, keep)
        })
        .await
    }

    /// Disabling also ends every session of the user.
    pub async fn set_disabled(
        &self,
        user: UserId,
        disabled: bool,
    ) -> Result<UserRecord, StoreError> {
        self.write(move |txn| {
            let mut record = get_user(txn, user)?;
            record.disabled = disabled;
            put_user(txn, user, &record)?;
            if disabled {
                delete_sessions_of(txn, user, None)?;
            }
            Ok(record)
        })
        .await
    }

    pub async fn create_session(
        &self,
        token_hash: [u8; 32],
        session: SessionRecord,
    ) -> Result<(), StoreError> {
        self.write(move |txn| {
            get_user(txn, session.user)?;
            txn.open_table(SESSIONS)?
                .insert(token_hash, encode(&session)?.as_slice())?;
            txn.open_table(USER_SESSIONS)?
                .insert((session.user.0, token_hash), ())?;
            Ok(())
        })
        .await
    }

    pub async fn delete_session(&self, token_hash: [u8; 32]) -> Result<(), StoreError> {
        self.write(move |txn| {
            let mut sessions = txn.open_table(SESSIONS)?;
            let removed = sessions.remove(token_hash)?;
            if let Some(bytes) = removed {
                let session: SessionRecord = decode(bytes.value())?;
                drop(bytes);
                txn.open_table(USER_SESSIONS)?
                    .remove((session.user.0, token_hash))?;
            }
            Ok(())
        })
        .await
    }

    /// Records activity and slides the expiry forward (callers rate-limit this).
    pub async fn touch_session(
        &self,
        token_hash: [u8; 32],
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.write(move |txn| {
            let mut sessions = txn.open_table(SESSIONS)?;
            let found = sessions.get(token_hash)?.map(|v| decode(v.value()));
            let Some(session) = found else {
                return Ok(());
            };
            let mut session: SessionRecord = session?;
            session.last_seen = Some(now);
            session.expires_at = expires_at;
            sessions.insert(token_hash, encode(&session)?.as_slice())?;
            Ok(())
        })
        .await
    }

    pub async fn create_invite(
        &self,
        token_hash: [u8; 32],
        invite: InviteRecord,
    ) -> Result<(), StoreError> {
        self.write(move |txn| {
            txn.open_table(INVITES)?
                .insert(token_hash, encode(&invite)?.as_slice())?;
            Ok(())
        })
        .await
    }

    /// Creates a group room with `creator` as its owner.
    pub async fn create_room(
        &self,
        name: String,
        visibility: Visibility,
        topic: Option<String>,
        creator: UserId,
    ) -> Result<(RoomId, RoomRecord), StoreError> {
        self.write(move |txn| {
            get_user(txn, creator)?;
            let id = RoomId(next_counter(&mut txn.open_table(META)?, META_NEXT_ROOM_ID)?);
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
            insert_member(txn, id, &mut record, creator, RoomRole::Owner, now)?;
            put_room(txn, id, &record)?;
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
        self.write(move |txn| {
            let key = direct_key(a, b);
            let existing = txn.open_table(DIRECT_ROOMS)?.get(key)?.map(|v| v.value());
            if let Some(id) = existing {
                let id = RoomId(id);
                return Ok((id, get_room(txn, id)?, false));
            }
            get_user(txn, a)?;
            get_user(txn, b)?;
            let id = RoomId(next_counter(&mut txn.open_table(META)?, META_NEXT_ROOM_ID)?);
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
            insert_member(txn, id, &mut record, a, RoomRole::Member, now)?;
            insert_member(txn, id, &mut record, b, RoomRole::Member, now)?;
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
        self.write(move |txn| {
            let mut record = get_room(txn, room)?;
            if let Some(name) = name {
                record.name = name;
            }
            if let Some(topic) = topic {
                record.topic = topic;
            }
            put_room(txn, room, &record)?;
            append_event(
                txn,
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
        self.write(move |txn| {
            let mut record = get_room(txn, room)?;
            get_user(txn, user)?;
            if get_member(txn, room, user)?.is_some() {
                return Err(StoreError::AlreadyMember);
            }
            let member = insert_member(txn, room, &mut record, user, role, Timestamp::now())?;
            put_room(txn, room, &record)?;
            Ok(member)
        })
        .await
    }

    pub async fn remove_member(&self, room: RoomId, user: UserId) -> Result<(), StoreError> {
        self.write(move |txn| {
            let mut record = get_room(txn, room)?;
            if get_member(txn, room, user)?.is_none() {
                return Err(StoreError::NotMember);
            }
            txn.open_table(MEMBERS)?.remove((room.0, user.0))?;
            txn.open_table(USER_ROOMS)?.remove((user.0, room.0))?;
            record.member_count = record.member_count.saturating_sub(1);
            put_room(txn, room, &record)?;
            append_event(
                txn,
                &event(room, EventKind::MemberLeave, MessageSeq(0), user),
                None,
            )?;
            Ok(())
        })
        .await
    }

    /// Appends a message at the room's next seq. The sender must be a member (checked here,
    /// atomically with the append). The sender's read position moves to their own message.
    pub async fn append_message(&self, new: NewMessage) -> Result<AppendOutcome, StoreError> {
        self.write(move |txn| {
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
            append_event(
                txn,
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

    fn change_message<F>(
        txn: &WriteTransaction,
        room: RoomId,
        seq: MessageSeq,
        actor: UserId,
        kind: EventKind,
        change: F,
    ) -> Result<MessageRecord, StoreError>
    where
        F: FnOnce(&mut MessageRecord) -> Result<bool, StoreError>,
    {
        let mut messages = txn.open_table(MESSAGES)?;
        let found = messages
            .get((room.0, seq.0))?
            .map(|v| decode::<MessageRecord>(v.value()));
        let mut message = found.ok_or(StoreError::NotFound("message"))??;
        if !change(&mut message)? {
            return Ok(message);
        }
        messages.insert((room.0, seq.0), encode(&message)?.as_slice())?;
        drop(messages);
        append_event(txn, &event(room, kind, seq, actor), Some(&message))?;
        Ok(message)
    }

    pub async fn edit_message(
        &self,
        room: RoomId,
        seq: MessageSeq,
        actor: UserId,
        body: String,
    ) -> Result<MessageRecord, StoreError> {
        self.write(move |txn| {
            Self::change_message(txn, room, seq, actor, EventKind::MessageUpdate, |m| {
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
        self.write(move |txn| {
            Self::change_message(txn, room, seq, actor, EventKind::MessageDelete, |m| {
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

    /// Moves the member's read position forward to `seq` (clamped to the room's last seq);
    /// never backwards. Returns the position after the call.
    pub async fn mark_read(
        &self,
        room: RoomId,
        user: UserId,
        seq: MessageSeq,
    ) -> Result<MessageSeq, StoreError> {
        self.write(move |txn| {
            let record = get_room(txn, room)?;
            let mut member = get_member(txn, room, user)?.ok_or(StoreError::NotMember)?;
            let target = seq.min(record.last_seq);
            if target <= member.last_read {
                return Ok(member.last_read);
            }
            member.last_read = target;
            put_member(txn, room, user, &member)?;
            append_event(txn, &event(room, EventKind::ReadMarker, target, user), None)?;
            Ok(target)
        })
        .await
    }
}
