//! Socket.IO v5 packet codec: pure functions, text in, packets out (and back). No I/O, no
//! state, no knowledge of chat: fuzzed on its own (`fuzz/`).
//!
//! Wire form: `<type>[<attachments>-][<namespace>,][<ack id>][<JSON payload>]`, e.g.
//! `2["message:send",{"roomId":1}]`, `2/admin,13["x"]`, `31[{"ok":true}]`, `0{"token":"…"}`.

use serde_json::Value;

/// Longest namespace we accept (`/` plus a name).
pub const MAX_NAMESPACE_LEN: usize = 128;
/// Binary attachments a packet may announce. parley's events carry none; the cap keeps a
/// hostile count from mattering.
pub const MAX_ATTACHMENTS: u32 = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketKind {
    Connect = 0,
    Disconnect = 1,
    Event = 2,
    Ack = 3,
    ConnectError = 4,
    BinaryEvent = 5,
    BinaryAck = 6,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Packet {
    pub kind: PacketKind,
    pub namespace: String,
    pub ack_id: Option<u64>,
    pub data: Option<Value>,
    pub attachments: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty packet")]
    Empty,
    #[error("unknown packet type {0:?}")]
    UnknownType(char),
    #[error("bad attachment count")]
    BadAttachments,
    #[error("namespace too long or malformed")]
    BadNamespace,
    #[error("ack id out of range")]
    BadAckId,
    #[error("payload is not valid JSON: {0}")]
    BadJson(String),
    #[error("payload has the wrong shape for this packet type")]
    BadPayload,
}

impl Packet {
    /// The event name and arguments of an EVENT packet.
    pub fn event(&self) -> Option<(&str, &[Value])> {
        match (&self.kind, &self.data) {
            (PacketKind::Event | PacketKind::BinaryEvent, Some(Value::Array(items))) => {
                let (name, args) = items.split_first()?;
                Some((name.as_str()?, args))
            }
            _ => None,
        }
    }
}

pub fn decode(text: &str) -> Result<Packet, DecodeError> {
    let mut rest = text;
    let kind = match rest.chars().next().ok_or(DecodeError::Empty)? {
        '0' => PacketKind::Connect,
        '1' => PacketKind::Disconnect,
        '2' => PacketKind::Event,
        '3' => PacketKind::Ack,
        '4' => PacketKind::ConnectError,
        '5' => PacketKind::BinaryEvent,
        '6' => PacketKind::BinaryAck,
        other => return Err(DecodeError::UnknownType(other)),
    };
    rest = &rest[1..];

    let mut attachments = 0;
    if matches!(kind, PacketKind::BinaryEvent | PacketKind::BinaryAck) {
        let (count, after) = rest.split_once('-').ok_or(DecodeError::BadAttachments)?;
        attachments = count.parse().map_err(|_| DecodeError::BadAttachments)?;
        if attachments > MAX_ATTACHMENTS || !count.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DecodeError::BadAttachments);
        }
        rest = after;
    }

    let mut namespace = "/".to_owned();
    if rest.starts_with('/') {
        let end = rest.find(',').unwrap_or(rest.len());
        let candidate = &rest[..end];
        if candidate.len() > MAX_NAMESPACE_LEN || candidate.chars().any(char::is_control) {
            return Err(DecodeError::BadNamespace);
        }
        namespace = candidate.to_owned();
        rest = rest.get(end + 1..).unwrap_or("");
    }

    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let ack_id = if digits > 0 {
        let id = rest[..digits].parse().map_err(|_| DecodeError::BadAckId)?;
        rest = &rest[digits..];
        Some(id)
    } else {
        None
    };

    let data = if rest.is_empty() {
        None
    } else {
        Some(serde_json::from_str::<Value>(rest).map_err(|e| DecodeError::BadJson(e.to_string()))?)
    };

    let shape_ok = match kind {
        PacketKind::Connect => matches!(data, None | Some(Value::Object(_))),
        PacketKind::Disconnect => data.is_none(),
        PacketKind::Event | PacketKind::BinaryEvent => matches!(
            &data,
            Some(Value::Array(items)) if matches!(items.first(), Some(Value::String(_)))
        ),
        PacketKind::Ack | PacketKind::BinaryAck => {
            ack_id.is_some() && matches!(data, Some(Value::Array(_)))
        }
        PacketKind::ConnectError => matches!(data, Some(Value::Object(_) | Value::String(_))),
    };
    if !shape_ok {
        return Err(DecodeError::BadPayload);
    }
    Ok(Packet {
        kind,
        namespace,
        ack_id,
        data,
        attachments,
    })
}

/// Writes the packet header: type, namespace (when not `/`) and ack id.
fn header(out: &mut String, kind: PacketKind, namespace: &str, ack_id: Option<u64>) {
    out.push(char::from(b'0' + kind as u8));
    if namespace != "/" {
        out.push_str(namespace);
        out.push(',');
    }
    if let Some(id) = ack_id {
        out.push_str(&id.to_string());
    }
}

pub fn encode(packet: &Packet) -> String {
    let mut out = String::new();
    out.push(char::from(b'0' + packet.kind as u8));
    if matches!(packet.kind, PacketKind::BinaryEvent | PacketKind::BinaryAck) {
        out.push_str(&packet.attachments.to_string());
        out.push('-');
    }
    if packet.namespace != "/" {
        out.push_str(&packet.namespace);
        out.push(',');
    }
    if let Some(id) = packet.ack_id {
        out.push_str(&id.to_string());
    }
    if let Some(data) = &packet.data {
        out.push_str(&data.to_string());
    }
    out
}

/// An EVENT on the default namespace from already-serialized JSON arguments, optionally
/// followed by a recovery offset (a JSON string the client keeps as its last seen position).
/// Built once per broadcast and shared by every subscriber.
pub fn encode_event(name: &str, args_json: &[&str], offset: Option<&str>) -> String {
    let mut out = String::with_capacity(
        16 + name.len() + args_json.iter().map(|a| a.len() + 1).sum::<usize>(),
    );
    header(&mut out, PacketKind::Event, "/", None);
    out.push('[');
    out.push_str(&Value::String(name.to_owned()).to_string());
    for arg in args_json {
        out.push(',');
        out.push_str(arg);
    }
    if let Some(offset) = offset {
        out.push(',');
        out.push_str(&Value::String(offset.to_owned()).to_string());
    }
    out.push(']');
    out
}

/// An ACK for `ack_id` with one already-serialized JSON argument.
pub fn encode_ack(namespace: &str, ack_id: u64, arg_json: &str) -> String {
    let mut out = String::with_capacity(8 + arg_json.len());
    header(&mut out, PacketKind::Ack, namespace, Some(ack_id));
    out.push('[');
    out.push_str(arg_json);
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_the_spec_examples() {
        let p = decode("0").expect("connect");
        assert_eq!(
            (p.kind, p.namespace.as_str(), p.data),
            (PacketKind::Connect, "/", None)
        );
        let p = decode(r#"0/admin,{"token":"123"}"#).expect("connect ns");
        assert_eq!(p.namespace, "/admin");
        assert_eq!(p.data, Some(json!({"token": "123"})));
        let p = decode(r#"2["hello",1]"#).expect("event");
        assert_eq!(
            p.event().map(|(n, a)| (n.to_owned(), a.len())),
            Some(("hello".into(), 1))
        );
        let p = decode(r#"2/admin,456["project:delete",123]"#).expect("event ack");
        assert_eq!((p.namespace.as_str(), p.ack_id), ("/admin", Some(456)));
        let p = decode(r#"3/admin,456[]"#).expect("ack");
        assert_eq!(p.kind, PacketKind::Ack);
        let p = decode(r#"51-["hello",{"_placeholder":true,"num":0}]"#).expect("binary");
        assert_eq!((p.kind, p.attachments), (PacketKind::BinaryEvent, 1));
        assert_eq!(
            decode("1").expect("disconnect").kind,
            PacketKind::Disconnect
        );
        assert_eq!(
            decode("1/admin,").expect("disconnect ns").namespace,
            "/admin"
        );
    }

    #[test]
    fn refuses_malformed_packets() {
        for bad in [
            "",
            "9",
            "x",
            "2",
            "2{}",
            "2[1]",
            "2[]",
            "3[]",
            "31",
            "1[]",
            "0[1]",
            "5[\"a\"]",
            "599-[\"a\"]",
            "2[\"a\"",
            "299999999999999999999999[\"a\"]",
            "4",
        ] {
            assert!(decode(bad).is_err(), "{bad:?} should not decode");
        }
        let long_ns = format!("2/{},[\"a\"]", "n".repeat(200));
        assert_eq!(decode(&long_ns), Err(DecodeError::BadNamespace));
    }

    #[test]
    fn encode_round_trips() {
        for text in [
            "0",
            r#"0{"sid":"abc"}"#,
            r#"2["m",{"a":1}]"#,
            r#"2/chat,7["m"]"#,
            r#"37[{"ok":true}]"#,
            r#"44{"message":"nope"}"#,
            "1",
        ] {
            assert_eq!(encode(&decode(text).expect(text)), text);
        }
    }

    /// Found by the fuzzer: numbers past u64 become floats, which must survive a round trip
    /// (serde_json's `float_roundtrip`).
    #[test]
    fn regression_large_numbers_round_trip_exactly() {
        let text = "32[[30000000000004000002]]";
        let packet = decode(text).expect("decodes");
        assert_eq!(decode(&encode(&packet)).expect("again"), packet);
    }

    #[test]
    fn event_and_ack_builders() {
        assert_eq!(
            encode_event("message:new", &[r#"{"seq":1}"#], Some("42")),
            r#"2["message:new",{"seq":1},"42"]"#
        );
        assert_eq!(encode_event("x\"y", &[], None), r#"2["x\"y"]"#);
        assert_eq!(encode_ack("/", 12, r#"{"ok":true}"#), r#"312[{"ok":true}]"#);
        let built = encode_event("typing", &[r#"{"roomId":1}"#], None);
        assert!(decode(&built).is_ok());
    }
}
