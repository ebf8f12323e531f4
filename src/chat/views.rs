//! Wire shapes: what a client sees of users, rooms and messages. The same `MessageView` goes
//! out over HTTP and over the socket. Built from store records plus the viewer's position.

use serde::Serialize;

use crate::clock::Timestamp;
use crate::ids::{MessageSeq, RoomId, UserId};
use crate::store::records::{
    MemberRecord, MessageRecord, RoomKind, RoomRecord, RoomRole, UserRecord, Visibility,
};

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub avatar: Option<String>,
    /// online | away | offline — live presence, filled by the realtime layer.
    pub status: &'static str,
    pub is_admin: bool,
    pub disabled: bool,
}

impl UserView {
    pub fn new(id: UserId, user: &UserRecord) -> UserView {
        UserView {
            id,
            username: user.username.clone(),
            display_name: user.display_name.clone(),
            avatar: user.avatar.clone(),
            status: "offline",
            is_admin: user.is_admin,
            disabled: user.disabled,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentView {
    pub upload: String,
    pub name: String,
    pub mime: String,
    pub size: u64,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    pub room_id: RoomId,
    pub seq: MessageSeq,
    pub sender_id: UserId,
    pub content: String,
    pub created_at: String,
    pub edited_at: Option<String>,
    pub deleted: bool,
    pub reply_to: Option<MessageSeq>,
    pub attachments: Vec<AttachmentView>,
    pub client_id: Option<String>,
}

impl MessageView {
    pub fn new(room: RoomId, seq: MessageSeq, m: &MessageRecord) -> MessageView {
        MessageView {
            room_id: room,
            seq,
            sender_id: m.sender,
            content: m.body.clone(),
            created_at: m.created_at.to_rfc3339(),
            edited_at: m.edited_at.map(Timestamp::to_rfc3339),
            deleted: m.deleted,
            reply_to: m.reply_to,
            attachments: m
                .attachments
                .iter()
                .map(|a| AttachmentView {
                    upload: a.upload.clone(),
                    name: a.name.clone(),
                    mime: a.mime.clone(),
                    size: a.size,
                })
                .collect(),
            client_id: m.client_id.map(|c| c.to_string()),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomView {
    pub id: RoomId,
    pub name: String,
    pub kind: RoomKind,
    pub visibility: Visibility,
    pub topic: Option<String>,
    pub created_at: String,
    pub last_seq: MessageSeq,
    pub member_count: u64,
    pub joined: bool,
    pub role: Option<RoomRole>,
    pub unread: Option<u64>,
    pub last_read_seq: Option<MessageSeq>,
    pub last_message: Option<MessageView>,
    /// The other person, for a direct room.
    pub peer: Option<UserView>,
    /// Not on the wire: orders room lists by activity.
    #[serde(skip)]
    pub last_activity: Timestamp,
}

impl RoomView {
    pub fn base(id: RoomId, room: &RoomRecord) -> RoomView {
        RoomView {
            id,
            name: room.name.clone(),
            kind: room.kind,
            visibility: room.visibility,
            topic: room.topic.clone(),
            created_at: room.created_at.to_rfc3339(),
            last_seq: room.last_seq,
            member_count: room.member_count,
            joined: false,
            role: None,
            unread: None,
            last_read_seq: None,
            last_message: None,
            peer: None,
            last_activity: room.last_activity,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    pub user: UserView,
    pub role: RoomRole,
    pub joined_at: String,
    pub last_read_seq: MessageSeq,
}

impl MemberView {
    pub fn new(id: UserId, user: &UserRecord, member: &MemberRecord) -> MemberView {
        MemberView {
            user: UserView::new(id, user),
            role: member.role,
            joined_at: member.joined_at.to_rfc3339(),
            last_read_seq: member.last_read,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    pub items: Vec<MessageView>,
    pub next_cursor: Option<MessageSeq>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadState {
    pub room_id: RoomId,
    pub last_read_seq: MessageSeq,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerInfo {
    pub name: &'static str,
    pub version: &'static str,
    pub registration: &'static str,
    pub needs_setup: bool,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InviteView {
    pub token: String,
    pub expires_at: String,
    pub max_uses: u32,
}

/// A signed-in user: the token they presented (as stored) and who they are.
#[derive(Clone, Debug)]
pub struct Viewer {
    pub id: UserId,
    pub user: UserRecord,
    pub token_hash: [u8; 32],
}

/// What register and login return: the user and a new session token.
#[derive(Clone, Debug, Serialize)]
pub struct SignedIn {
    pub user: UserView,
    pub token: String,
}
