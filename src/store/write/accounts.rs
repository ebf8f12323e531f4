//! Account writes: users, sessions, invites, passwords, disabling. None of these log an
//! event; sessions and invites are stored by the sha256 of their token, never the token.
//!
//! Must not: hash passwords or make tokens (that is `auth`), or judge a password or name
//! (that is `chat`).

use redb::{ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::{get_user, next_counter, put_user};
use crate::clock::Timestamp;
use crate::ids::UserId;
use crate::store::records::{InviteRecord, SessionRecord, UserRecord, decode, encode};
use crate::store::tables::*;
use crate::store::{Store, StoreError};

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

/// Records that sessions ended in this transaction (see `META_SESSION_EPOCH`).
fn bump_session_epoch(txn: &WriteTransaction) -> Result<(), StoreError> {
    let mut meta = txn.open_table(META)?;
    let epoch = meta.get(META_SESSION_EPOCH)?.map_or(0, |v| v.value());
    meta.insert(META_SESSION_EPOCH, epoch.wrapping_add(1))?;
    Ok(())
}

fn delete_sessions_of(
    txn: &WriteTransaction,
    user: UserId,
    keep: Option<[u8; 32]>,
) -> Result<(), StoreError> {
    bump_session_epoch(txn)?;
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
        self.write(move |batch| {
            let txn = batch.txn();
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
        self.write(move |batch| {
            let txn = batch.txn();
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
        self.write(move |batch| {
            let txn = batch.txn();
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
        self.write(move |batch| {
            let txn = batch.txn();
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
        self.write(move |batch| {
            let txn = batch.txn();
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
        self.write(move |batch| {
            let txn = batch.txn();
            let mut sessions = txn.open_table(SESSIONS)?;
            let removed = sessions.remove(token_hash)?;
            if let Some(bytes) = removed {
                let session: SessionRecord = decode(bytes.value())?;
                drop(bytes);
                txn.open_table(USER_SESSIONS)?
                    .remove((session.user.0, token_hash))?;
                bump_session_epoch(txn)?;
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
        self.write(move |batch| {
            let mut sessions = batch.txn().open_table(SESSIONS)?;
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
        self.write(move |batch| {
            batch
                .txn()
                .open_table(INVITES)?
                .insert(token_hash, encode(&invite)?.as_slice())?;
            Ok(())
        })
        .await
    }
}
