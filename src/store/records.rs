//! The values stored in redb tables, encoded as MessagePack maps (field names included) so a
//! newer binary can add fields with `#[serde(default)]` and an older file still decodes.
//!
//! Must not: contain rules about who may do what (that is `chat`), or touch a transaction.

use crate::clock::Timestamp;
use crate::ids::{ClientId, MessageSeq, RoomId, UserId};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::StoreError;

pub fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>, StoreError> {
    rmp_serde::to_vec_named(record).map_err(|e| StoreError::Encode(e.to_string()))
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    rmp_serde::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    /// As the user typed it; uniqueness is on the lowercased form in `usernames`.
    pub username: String,
    pub display_name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    #[serde(default)]
    pub is_admin: bool,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub avatar: Option<String>,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub user: UserId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    #[serde(default)]
    pub last_seen: Option<Timestamp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoomKind {
    Group,
    Direct,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    Public,
    Private,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoomRecord {
    pub name: String,
    pub kind: RoomKind,
    pub visibility: Visibility,
    #[serde(default)]
    pub topic: Option<String>,
    pub created_at: Timestamp,
    pub created_by: UserId,
    /// Highest seq ever assigned in this room; the next message gets `last_seq + 1`.
    pub last_seq: MessageSeq,
    pub member_count: u64,
    /// Time of the newest message (or creation), for ordering room lists by activity.
    pub last_activity: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoomRole {
    Member,
    Admin,
    Owner,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberRecord {
    pub role: RoomRole,
    pub joined_at: Timestamp,
    /// Highest seq this member has read; never moves backwards.
    pub last_read: MessageSeq,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    /// Hex sha256 of the stored upload.
    pub upload: String,
    pub name: String,
    pub mime: String,
    pub size: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessageRecord {
    pub sender: UserId,
    pub created_at: Timestamp,
    pub body: String,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    #[serde(default)]
    pub reply_to: Option<MessageSeq>,
    #[serde(default)]
    pub edited_at: Option<Timestamp>,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub client_id: Option<ClientId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    MessageNew,
    MessageUpdate,
    MessageDelete,
    MemberJoin,
    MemberLeave,
    RoomUpdate,
    ReadMarker,
}

/// One entry of the durable event log: enough to re-read what changed, not a copy of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub room: RoomId,
    pub kind: EventKind,
    /// The message for message events, the read position for read markers, else 0.
    pub seq: MessageSeq,
    /// Who acted (the member for membership events).
    pub user: UserId,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InviteRecord {
    pub created_by: UserId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub uses_left: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_record_round_trips() {
        let m = MessageRecord {
            sender: UserId(7),
            created_at: Timestamp(1),
            body: "héllo 你好".into(),
            attachments: vec![],
            reply_to: Some(MessageSeq(3)),
            edited_at: None,
            deleted: false,
            client_id: Some(ClientId(42)),
        };
        let bytes = encode(&m).expect("encode");
        assert_eq!(decode::<MessageRecord>(&bytes).expect("decode"), m);
    }

    #[test]
    fn old_records_without_new_fields_still_decode() {
        #[derive(Serialize)]
        struct OldMessage {
            sender: UserId,
            created_at: Timestamp,
            body: String,
        }
        let bytes = encode(&OldMessage {
            sender: UserId(1),
            created_at: Timestamp(5),
            body: "hi".into(),
        })
        .expect("encode");
        let m: MessageRecord = decode(&bytes).expect("decode");
        assert_eq!(m.body, "hi");
        assert!(!m.deleted && m.reply_to.is_none() && m.attachments.is_empty());
    }

    #[test]
    fn garbage_is_a_corrupt_error_not_a_panic() {
        assert!(matches!(
            decode::<UserRecord>(&[0xc1, 0xff, 0x00]),
            Err(StoreError::Corrupt(_))
        ));
    }
}
