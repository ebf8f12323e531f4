//! Messages: send (idempotent on clientId), edit, delete (tombstone), history pages, read
//! positions.

use super::views::{MessageView, Page, ReadState, Viewer};
use super::{Chat, ChatError, validate};
use crate::ids::{ClientId, MessageSeq, RoomId};
use crate::store::records::{MemberRecord, RoomRecord, RoomRole};
use crate::store::{NewMessage, Snapshot};

pub const HISTORY_DEFAULT_LIMIT: usize = 50;
pub const HISTORY_MAX_LIMIT: usize = 200;

/// One history request: `cursor` pages backwards (newest first), `after` forwards.
#[derive(Clone, Copy, Debug, Default)]
pub struct HistoryQuery {
    pub cursor: Option<u64>,
    pub after: Option<u64>,
    pub limit: Option<usize>,
}

/// A message to send, filled in the same way by the HTTP route and the `message:send` socket
/// event, so both go through one rule.
#[derive(Clone, Debug)]
pub struct SendMessage {
    pub room: RoomId,
    pub content: String,
    /// The client's own id for this send: a retry with the same id returns the first result.
    pub client_id: Option<String>,
    /// The seq of the message this one answers, in the same room.
    pub reply_to: Option<u64>,
}

fn require_member(
    snapshot: &Snapshot,
    room: RoomId,
    viewer: &Viewer,
) -> Result<(RoomRecord, MemberRecord), ChatError> {
    let record = snapshot.room(room)?.ok_or(ChatError::NotFound("room"))?;
    let member = snapshot
        .member(room, viewer.id)?
        .ok_or(ChatError::NotMember)?;
    Ok((record, member))
}

impl Chat {
    /// Refuses with `NotMember`/`NotFound` unless `viewer` is a member of `room`.
    pub fn require_membership(&self, viewer: &Viewer, room: RoomId) -> Result<(), ChatError> {
        require_member(&self.store.snapshot()?, room, viewer).map(|_| ())
    }

    /// Sends a message. With a `client_id` seen before in this room from the same sender, the
    /// first result comes back and `bool` is true (a replay); nothing new is stored.
    pub async fn send_message(
        &self,
        viewer: &Viewer,
        input: SendMessage,
    ) -> Result<(MessageView, bool), ChatError> {
        let SendMessage {
            room,
            content,
            client_id,
            reply_to,
        } = input;
        let body = validate::content(&content)?;
        let client_id = client_id
            .as_deref()
            .map(|c| {
                ClientId::parse(c).ok_or_else(|| {
                    ChatError::invalid("invalid_client_id", "clientId", "clientId must be a UUID")
                })
            })
            .transpose()?;
        let outcome = self
            .store
            .append_message(NewMessage {
                room,
                sender: viewer.id,
                body,
                client_id,
                reply_to: reply_to.map(MessageSeq),
            })
            .await?;
        Ok((
            MessageView::new(room, outcome.seq, &outcome.message),
            outcome.replayed,
        ))
    }

    pub fn message(
        &self,
        viewer: &Viewer,
        room: RoomId,
        seq: MessageSeq,
    ) -> Result<MessageView, ChatError> {
        let snapshot = self.store.snapshot()?;
        require_member(&snapshot, room, viewer)?;
        let message = snapshot
            .message(room, seq)?
            .ok_or(ChatError::NotFound("message"))?;
        Ok(MessageView::new(room, seq, &message))
    }

    /// Authors edit their own messages; nobody else can.
    pub async fn edit_message(
        &self,
        viewer: &Viewer,
        room: RoomId,
        seq: MessageSeq,
        content: &str,
    ) -> Result<MessageView, ChatError> {
        let body = validate::content(content)?;
        {
            let snapshot = self.store.snapshot()?;
            require_member(&snapshot, room, viewer)?;
            let message = snapshot
                .message(room, seq)?
                .ok_or(ChatError::NotFound("message"))?;
            if message.sender != viewer.id {
                return Err(ChatError::Forbidden("only the author can edit a message"));
            }
        }
        let message = self.store.edit_message(room, seq, viewer.id, body).await?;
        Ok(MessageView::new(room, seq, &message))
    }

    /// The author, the room's owner and admins, and server admins may delete a message.
    pub async fn delete_message(
        &self,
        viewer: &Viewer,
        room: RoomId,
        seq: MessageSeq,
    ) -> Result<MessageView, ChatError> {
        {
            let snapshot = self.store.snapshot()?;
            // Server admins moderate rooms they have not joined; the tombstone they get back
            // shows no content.
            let role = if viewer.user.is_admin {
                snapshot.room(room)?.ok_or(ChatError::NotFound("room"))?;
                None
            } else {
                Some(require_member(&snapshot, room, viewer)?.1.role)
            };
            let message = snapshot
                .message(room, seq)?
                .ok_or(ChatError::NotFound("message"))?;
            let moderator =
                viewer.user.is_admin || matches!(role, Some(RoomRole::Owner | RoomRole::Admin));
            if message.sender != viewer.id && !moderator {
                return Err(ChatError::Forbidden(
                    "only the author or a room admin can delete a message",
                ));
            }
        }
        let message = self.store.delete_message(room, seq, viewer.id).await?;
        Ok(MessageView::new(room, seq, &message))
    }

    /// One page of history: one range scan, whatever the room's size.
    pub fn history(
        &self,
        viewer: &Viewer,
        room: RoomId,
        query: HistoryQuery,
    ) -> Result<Page, ChatError> {
        let limit = query.limit.unwrap_or(HISTORY_DEFAULT_LIMIT);
        if limit == 0 || limit > HISTORY_MAX_LIMIT {
            return Err(ChatError::invalid(
                "bad_query",
                "limit",
                format!("limit must be 1 to {HISTORY_MAX_LIMIT}"),
            ));
        }
        let snapshot = self.store.snapshot()?;
        let (record, _) = require_member(&snapshot, room, viewer)?;
        match (query.cursor, query.after) {
            (Some(_), Some(_)) => Err(ChatError::invalid(
                "bad_query",
                "cursor",
                "give cursor (older pages) or after (newer pages), not both",
            )),
            (None, Some(after)) => {
                let rows = snapshot.messages_after(room, MessageSeq(after), limit)?;
                let next_cursor = match rows.last() {
                    Some((seq, _)) if *seq < record.last_seq => Some(*seq),
                    _ => None,
                };
                Ok(Page {
                    items: rows
                        .iter()
                        .map(|(seq, m)| MessageView::new(room, *seq, m))
                        .collect(),
                    next_cursor,
                })
            }
            (cursor, None) => {
                let before = MessageSeq(cursor.unwrap_or(u64::MAX));
                let rows = snapshot.messages_before(room, before, limit)?;
                // Seqs are dense from 1, so anything above 1 has older messages below it.
                let next_cursor = match rows.last() {
                    Some((seq, _)) if seq.0 > 1 => Some(*seq),
                    _ => None,
                };
                Ok(Page {
                    items: rows
                        .iter()
                        .map(|(seq, m)| MessageView::new(room, *seq, m))
                        .collect(),
                    next_cursor,
                })
            }
        }
    }

    pub async fn mark_read(
        &self,
        viewer: &Viewer,
        room: RoomId,
        seq: MessageSeq,
    ) -> Result<ReadState, ChatError> {
        let last_read_seq = self.store.mark_read(room, viewer.id, seq).await?;
        Ok(ReadState {
            room_id: room,
            last_read_seq,
        })
    }
}
