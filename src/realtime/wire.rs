//! Every packet the server sends a socket, encoded in one place: Socket.IO packets wrapped in
//! an Engine.IO message (`4…`), ready to queue as one `Bytes`. And the one mapping from an
//! `EventError` (or the `ChatError` inside it) to the body of an ack.
//!
//! Must not: decide anything. Callers pick what to send; this only spells it.

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};

use super::events::EventError;
use crate::chat::views::{MessageView, RoomView};
use crate::chat::{ChatError, SessionEnd};
use crate::hub::Status;
use crate::ids::{EventSeq, RoomId, UserId};
use crate::socketio;
use crate::store::Committed;
use crate::store::records::{EventKind, RoomRecord};

/// Wraps a Socket.IO packet in an Engine.IO message packet.
pub fn eio(socketio_packet: &str) -> Bytes {
    let mut text = String::with_capacity(socketio_packet.len() + 1);
    text.push('4');
    text.push_str(socketio_packet);
    Bytes::from(text)
}

/// `42["name",payload]`, with the event-log offset last when the event is recoverable.
fn event(name: &str, payload: &impl Serialize, offset: Option<EventSeq>) -> Bytes {
    let offset = offset.map(|o| o.0.to_string());
    let payload = serde_json::to_string(payload).unwrap_or_else(|_| "null".into());
    eio(&socketio::encode_event(
        name,
        &[&payload],
        offset.as_deref(),
    ))
}

/// The broadcast of one logged event, with its offset for recovery. `room` is the room as
/// it is now, for `room:update` (the log names the room, not its new state).
pub fn committed(committed: &Committed, room: Option<&RoomRecord>) -> Bytes {
    let event_record = &committed.event;
    let offset = Some(committed.seq);
    let message = |name: &str| match &committed.message {
        Some(m) => event(
            name,
            &MessageView::new(event_record.room, event_record.seq, m),
            offset,
        ),
        None => event(
            name,
            &json!({"roomId": event_record.room, "seq": event_record.seq}),
            offset,
        ),
    };
    match event_record.kind {
        EventKind::MessageNew => message("message:new"),
        EventKind::MessageUpdate => message("message:update"),
        EventKind::MessageDelete => message("message:delete"),
        EventKind::MemberJoin | EventKind::MemberLeave => event(
            "room:member",
            &json!({"roomId": event_record.room, "userId": event_record.user,
                    "joined": event_record.kind == EventKind::MemberJoin}),
            offset,
        ),
        EventKind::ReadMarker => event(
            "room:read",
            &json!({"roomId": event_record.room, "userId": event_record.user,
                    "seq": event_record.seq}),
            offset,
        ),
        EventKind::RoomUpdate => match room {
            Some(room) => event(
                "room:update",
                &RoomView::base(event_record.room, room),
                offset,
            ),
            None => event("room:update", &json!({"id": event_record.room}), offset),
        },
    }
}

/// `room:new`: a room the user just joined, as they see it.
pub fn room_new(view: &RoomView) -> Bytes {
    event("room:new", view, None)
}

pub fn presence(user: UserId, status: Status) -> Bytes {
    event(
        "presence",
        &json!({"userId": user, "status": status.as_str()}),
        None,
    )
}

pub fn typing(room: RoomId, user: UserId, typing: bool) -> Bytes {
    event(
        "typing",
        &json!({"roomId": room, "userId": user, "typing": typing}),
        None,
    )
}

/// `session:ended`: the session this socket signed in with is over (logged out, password
/// changed, account disabled, expired); sent just before the server's DISCONNECT.
pub fn session_ended(reason: SessionEnd) -> Bytes {
    event("session:ended", &json!({"reason": reason.as_str()}), None)
}

/// CONNECT accepted: the socket's id and its private id for recovery.
pub fn connected(sid: &str, pid: &str) -> Bytes {
    eio(&format!("0{}", json!({"sid": sid, "pid": pid})))
}

/// CONNECT_ERROR for a refused sign-in, with parley's error code in `data`.
pub fn connect_refused(error: &ChatError) -> Bytes {
    let refusal = json!({"message": error.public_message(), "data": {"code": error.code()}});
    eio(&format!("4{refusal}"))
}

/// CONNECT_ERROR for a namespace parley does not serve.
pub fn namespace_refused(namespace: &str) -> Bytes {
    eio(&format!(
        "4{namespace},{}",
        json!({"message": "Invalid namespace"})
    ))
}

/// DISCONNECT from the server: the official client then does not reconnect on its own.
pub fn disconnect() -> Bytes {
    eio("1")
}

/// The ack packet for a client event's ack id.
pub fn ack(ack_id: u64, body: &Value) -> Bytes {
    eio(&socketio::encode_ack("/", ack_id, &body.to_string()))
}

/// The ack body of an event's outcome: `{ok:true,…}` as the event built it, or
/// `{ok:false,error:{code,message[,field]}}` — the only place an error becomes an ack.
pub fn ack_body(outcome: Result<Value, EventError>) -> Value {
    match outcome {
        Ok(body) => body,
        Err(error) => {
            if let EventError::Chat(ChatError::Internal(detail)) = &error {
                tracing::error!(error = %detail, "internal error in socket event");
            }
            let mut body = json!({"code": error.code(), "message": error.public_message()});
            if let Some(field) = error.field() {
                body["field"] = json!(field);
            }
            json!({"ok": false, "error": body})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_become_one_ack_shape() {
        let body = ack_body(Err(EventError::Chat(ChatError::NotMember)));
        assert_eq!(body["ok"], false);
        assert_eq!(body["error"]["code"], "not_member");
        assert!(body["error"].get("field").is_none());
        let body = ack_body(Err(EventError::InvalidStatus));
        assert_eq!(body["error"]["code"], "invalid_status");
        assert_eq!(body["error"]["field"], "status");
        let body = ack_body(Err(EventError::Chat(ChatError::Internal(
            "disk on fire".into(),
        ))));
        assert_eq!(body["error"]["code"], "internal");
        assert!(
            !body.to_string().contains("disk on fire"),
            "internal detail stays in the log"
        );
    }

    #[test]
    fn packets_are_engine_io_messages() {
        assert_eq!(&disconnect()[..], b"41");
        assert_eq!(&ack(7, &json!({"ok": true}))[..], br#"437[{"ok":true}]"#);
        assert_eq!(
            &typing(RoomId(2), UserId(3), true)[..],
            br#"42["typing",{"roomId":2,"userId":3,"typing":true}]"#
        );
        assert_eq!(
            &namespace_refused("/admin")[..],
            br#"44/admin,{"message":"Invalid namespace"}"#
        );
    }
}
