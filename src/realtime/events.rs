//! Client-to-server events: one `ClientEvent` enum, parsed in one place
//! (`ClientEvent::parse(name, args)`, pure: JSON in, a typed event or an `EventError` out), and
//! one `apply` that runs each event through the same `chat` rule as its HTTP route.
//!
//! A new event is a new variant, a new arm in `parse`, and a new arm in `apply`; its ack body
//! on failure comes from `wire::ack_body`, never from here.
//!
//! Must not: touch the socket or the hub directly (typing and presence go to the actor as
//! commands), or encode packets.

use std::collections::HashMap;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::actor::Command;
use super::{Realtime, SYNC_MAX_MESSAGES, SYNC_MAX_ROOMS};
use crate::chat::views::Viewer;
use crate::chat::{Chat, ChatError, HistoryQuery, SendMessage};
use crate::hub::Status;
use crate::ids::{MessageSeq, RoomId};

/// Why an event was refused before or while it ran. Each has the code and message the ack
/// carries (`wire::ack_body`).
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The payload is not the shape the event takes.
    #[error("{event}: {detail}")]
    InvalidPayload { event: &'static str, detail: String },
    #[error("unknown event {0:?}")]
    UnknownEvent(String),
    #[error("status must be online or away")]
    InvalidStatus,
    #[error("sync at most {SYNC_MAX_ROOMS} rooms at once")]
    TooManySyncRooms,
    #[error("too many events; slow down")]
    RateLimited,
    #[error("binary attachments are not supported")]
    BinaryUnsupported,
    #[error(transparent)]
    Chat(#[from] ChatError),
}

impl EventError {
    pub fn code(&self) -> &'static str {
        match self {
            EventError::InvalidPayload { .. } | EventError::TooManySyncRooms => "invalid_payload",
            EventError::UnknownEvent(_) => "unknown_event",
            EventError::InvalidStatus => "invalid_status",
            EventError::RateLimited => "rate_limited",
            EventError::BinaryUnsupported => "binary_unsupported",
            EventError::Chat(e) => e.code(),
        }
    }

    /// The message a client may see.
    pub fn public_message(&self) -> String {
        match self {
            EventError::Chat(e) => e.public_message(),
            other => other.to_string(),
        }
    }

    /// The payload field at fault, when one is.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            EventError::InvalidStatus => Some("status"),
            EventError::Chat(ChatError::Invalid { field, .. }) => Some(field),
            _ => None,
        }
    }
}

/// One client event, parsed.
#[derive(Debug)]
pub enum ClientEvent {
    /// `message:send`
    SendMessage(SendMessage),
    /// `message:edit`
    EditMessage {
        room: RoomId,
        seq: MessageSeq,
        content: String,
    },
    /// `message:delete`
    DeleteMessage { room: RoomId, seq: MessageSeq },
    /// `room:read`
    MarkRead { room: RoomId, seq: MessageSeq },
    /// `typing:start` / `typing:stop`
    Typing { room: RoomId, typing: bool },
    /// `presence:set`
    SetPresence(Status),
    /// `sync`: per room as the client spelled it, the last seq it has.
    Sync(Vec<(String, u64)>),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendPayload {
    room_id: u64,
    content: String,
    client_id: Option<String>,
    reply_to: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EditPayload {
    room_id: u64,
    seq: u64,
    content: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageRef {
    room_id: u64,
    seq: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoomRef {
    room_id: u64,
}

#[derive(Deserialize)]
struct PresencePayload {
    status: String,
}

#[derive(Deserialize)]
struct SyncPayload {
    rooms: HashMap<String, u64>,
}

/// The first argument as `T`; a missing one reads as `null`.
fn payload<T: DeserializeOwned>(event: &'static str, args: &[Value]) -> Result<T, EventError> {
    let arg = args.first().cloned().unwrap_or(Value::Null);
    serde_json::from_value(arg).map_err(|e| EventError::InvalidPayload {
        event,
        detail: e.to_string(),
    })
}

/// Every event a client may send, by name. `ClientEvent::parse` takes no other, and the
/// authorization matrix test (tests/api/authz_matrix.rs) walks this list, so an event cannot be
/// added without saying who may send it.
pub const EVENT_NAMES: &[&str] = &[
    "message:send",
    "message:edit",
    "message:delete",
    "room:read",
    "typing:start",
    "typing:stop",
    "presence:set",
    "sync",
];

impl ClientEvent {
    /// Parses an event by name from its arguments (the ack callback is not among them).
    pub fn parse(name: &str, args: &[Value]) -> Result<ClientEvent, EventError> {
        if !EVENT_NAMES.contains(&name) {
            return Err(EventError::UnknownEvent(name.to_owned()));
        }
        Ok(match name {
            "message:send" => {
                let p: SendPayload = payload("message:send", args)?;
                ClientEvent::SendMessage(SendMessage {
                    room: RoomId(p.room_id),
                    content: p.content,
                    client_id: p.client_id,
                    reply_to: p.reply_to,
                })
            }
            "message:edit" => {
                let p: EditPayload = payload("message:edit", args)?;
                ClientEvent::EditMessage {
                    room: RoomId(p.room_id),
                    seq: MessageSeq(p.seq),
                    content: p.content,
                }
            }
            "message:delete" => {
                let p: MessageRef = payload("message:delete", args)?;
                ClientEvent::DeleteMessage {
                    room: RoomId(p.room_id),
                    seq: MessageSeq(p.seq),
                }
            }
            "room:read" => {
                let p: MessageRef = payload("room:read", args)?;
                ClientEvent::MarkRead {
                    room: RoomId(p.room_id),
                    seq: MessageSeq(p.seq),
                }
            }
            "typing:start" | "typing:stop" => {
                let event = if name == "typing:start" {
                    "typing:start"
                } else {
                    "typing:stop"
                };
                let p: RoomRef = payload(event, args)?;
                ClientEvent::Typing {
                    room: RoomId(p.room_id),
                    typing: name == "typing:start",
                }
            }
            "presence:set" => {
                let p: PresencePayload = payload("presence:set", args)?;
                ClientEvent::SetPresence(match p.status.as_str() {
                    "online" => Status::Online,
                    "away" => Status::Away,
                    _ => return Err(EventError::InvalidStatus),
                })
            }
            "sync" => {
                let p: SyncPayload = payload("sync", args)?;
                if p.rooms.len() > SYNC_MAX_ROOMS {
                    return Err(EventError::TooManySyncRooms);
                }
                ClientEvent::Sync(p.rooms.into_iter().collect())
            }
            other => return Err(EventError::UnknownEvent(other.to_owned())),
        })
    }

    /// Runs the event for `viewer` and returns the ack body of a success.
    pub(super) async fn apply(
        self,
        realtime: &Realtime,
        viewer: &Viewer,
    ) -> Result<Value, EventError> {
        let chat = &realtime.chat;
        match self {
            ClientEvent::SendMessage(input) => {
                let (message, _replayed) = chat.send_message(viewer, input).await?;
                Ok(json!({"ok": true, "message": message}))
            }
            ClientEvent::EditMessage { room, seq, content } => {
                let message = chat.edit_message(viewer, room, seq, &content).await?;
                Ok(json!({"ok": true, "message": message}))
            }
            ClientEvent::DeleteMessage { room, seq } => {
                let message = chat.delete_message(viewer, room, seq).await?;
                Ok(json!({"ok": true, "message": message}))
            }
            ClientEvent::MarkRead { room, seq } => {
                let read = chat.mark_read(viewer, room, seq).await?;
                Ok(json!({"ok": true, "lastReadSeq": read.last_read_seq}))
            }
            ClientEvent::Typing { room, typing } => {
                chat.require_membership(viewer, room)?;
                realtime.send(Command::Typing {
                    room,
                    user: viewer.id,
                    typing,
                });
                Ok(json!({"ok": true}))
            }
            ClientEvent::SetPresence(status) => {
                realtime.send(Command::Presence {
                    user: viewer.id,
                    status,
                });
                Ok(json!({"ok": true}))
            }
            ClientEvent::Sync(rooms) => Ok(sync(chat, viewer, rooms)),
        }
    }
}

/// Missed messages per room; a room the viewer may not read answers with its own error and
/// the others still come back.
fn sync(chat: &Chat, viewer: &Viewer, rooms: Vec<(String, u64)>) -> Value {
    let mut answers = serde_json::Map::new();
    for (room, last_seq) in rooms {
        let Ok(room_id) = room.parse::<u64>() else {
            continue;
        };
        let page = chat.history(
            viewer,
            RoomId(room_id),
            HistoryQuery {
                cursor: None,
                after: Some(last_seq),
                limit: Some(SYNC_MAX_MESSAGES),
            },
        );
        let answer = match page {
            Ok(page) => json!({"items": page.items, "hasMore": page.next_cursor.is_some()}),
            Err(e) => super::wire::ack_body(Err(e.into())),
        };
        answers.insert(room, answer);
    }
    json!({"ok": true, "rooms": answers})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_event_is_parsed() {
        for name in EVENT_NAMES {
            let refused = ClientEvent::parse(name, &[]).err();
            assert!(
                !matches!(refused, Some(EventError::UnknownEvent(_))),
                "{name} is listed but parse does not know it"
            );
        }
    }

    fn parse(name: &str, payload: Value) -> Result<ClientEvent, EventError> {
        ClientEvent::parse(name, &[payload])
    }

    #[test]
    fn send_parses_every_field() {
        let event = parse(
            "message:send",
            json!({"roomId": 3, "content": "hi", "clientId": "c-1", "replyTo": 2}),
        )
        .expect("valid");
        let ClientEvent::SendMessage(send) = event else {
            panic!("wrong variant: {event:?}");
        };
        assert_eq!(send.room, RoomId(3));
        assert_eq!(send.content, "hi");
        assert_eq!(send.client_id.as_deref(), Some("c-1"));
        assert_eq!(send.reply_to, Some(2));
    }

    #[test]
    fn optional_fields_may_be_absent_or_null() {
        let event = parse(
            "message:send",
            json!({"roomId": 3, "content": "hi", "clientId": null}),
        );
        assert!(matches!(event, Ok(ClientEvent::SendMessage(s)) if s.client_id.is_none()));
    }

    #[test]
    fn wrong_shapes_name_the_event() {
        for (name, payload) in [
            ("message:send", json!({"roomId": "3", "content": "hi"})),
            ("message:send", json!({"content": "hi"})),
            (
                "message:edit",
                json!({"roomId": 1, "seq": -1, "content": "x"}),
            ),
            ("message:delete", json!("1/2")),
            ("room:read", Value::Null),
            ("typing:start", json!({"roomId": 1.5})),
            ("presence:set", json!({"status": 1})),
            ("sync", json!({"rooms": {"1": "x"}})),
        ] {
            let error = parse(name, payload.clone()).expect_err("refused");
            assert_eq!(error.code(), "invalid_payload", "{name} {payload}");
            assert!(error.public_message().starts_with(name), "{error}");
        }
        let missing = ClientEvent::parse("room:read", &[]).expect_err("no argument");
        assert_eq!(missing.code(), "invalid_payload");
    }

    #[test]
    fn typing_and_presence() {
        assert!(matches!(
            parse("typing:start", json!({"roomId": 4})),
            Ok(ClientEvent::Typing {
                room: RoomId(4),
                typing: true
            })
        ));
        assert!(matches!(
            parse("typing:stop", json!({"roomId": 4})),
            Ok(ClientEvent::Typing { typing: false, .. })
        ));
        assert!(matches!(
            parse("presence:set", json!({"status": "away"})),
            Ok(ClientEvent::SetPresence(Status::Away))
        ));
        let offline = parse("presence:set", json!({"status": "offline"})).expect_err("refused");
        assert_eq!(
            (offline.code(), offline.field()),
            ("invalid_status", Some("status"))
        );
    }

    #[test]
    fn sync_is_capped_and_keeps_the_spelling() {
        let rooms: serde_json::Map<String, Value> = (0..=SYNC_MAX_ROOMS)
            .map(|i| (i.to_string(), json!(0)))
            .collect();
        let too_many = parse("sync", json!({ "rooms": rooms })).expect_err("over the cap");
        assert_eq!(too_many.code(), "invalid_payload");
        let Ok(ClientEvent::Sync(rooms)) = parse("sync", json!({"rooms": {"07": 3}})) else {
            panic!("valid sync");
        };
        assert_eq!(rooms, vec![("07".to_owned(), 3)]);
    }

    #[test]
    fn unknown_events_are_refused_by_name() {
        let error = ClientEvent::parse("message:sned", &[]).expect_err("unknown");
        assert_eq!(error.code(), "unknown_event");
        assert_eq!(error.public_message(), r#"unknown event "message:sned""#);
    }
}
