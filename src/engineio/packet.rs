//! Engine.IO v4 packets and polling payloads: pure functions, no I/O.
//!
//! A packet is a type digit and data: `0` open, `1` close, `2` ping, `3` pong, `4` message,
//! `5` upgrade, `6` noop. Over WebSocket each frame is one packet (binary frames are binary
//! messages, with no type byte). Over polling, packets are joined with `\x1e` and a binary
//! message is `b` followed by its base64.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;

pub const SEPARATOR: char = '\x1e';

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    Open(String),
    Close,
    Ping(String),
    Pong(String),
    Message(String),
    Binary(Bytes),
    Upgrade,
    Noop,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("empty packet")]
    Empty,
    #[error("unknown packet type {0:?}")]
    UnknownType(char),
    #[error("binary packet is not valid base64")]
    BadBase64,
}

impl Packet {
    /// The text form (for a WebSocket text frame or inside a polling payload). Binary
    /// messages are `b` + base64 here; over WebSocket they go as binary frames instead.
    pub fn encode(&self) -> String {
        match self {
            Packet::Open(json) => format!("0{json}"),
            Packet::Close => "1".into(),
            Packet::Ping(data) => format!("2{data}"),
            Packet::Pong(data) => format!("3{data}"),
            Packet::Message(text) => format!("4{text}"),
            Packet::Binary(bytes) => format!("b{}", STANDARD.encode(bytes)),
            Packet::Upgrade => "5".into(),
            Packet::Noop => "6".into(),
        }
    }

    /// Parses one text packet (a WebSocket text frame, or one piece of a polling payload).
    pub fn decode(text: &str) -> Result<Packet, PacketError> {
        let mut chars = text.chars();
        let kind = chars.next().ok_or(PacketError::Empty)?;
        let data = chars.as_str();
        Ok(match kind {
            '0' => Packet::Open(data.to_owned()),
            '1' => Packet::Close,
            '2' => Packet::Ping(data.to_owned()),
            '3' => Packet::Pong(data.to_owned()),
            '4' => Packet::Message(data.to_owned()),
            '5' => Packet::Upgrade,
            '6' => Packet::Noop,
            'b' => Packet::Binary(Bytes::from(
                STANDARD.decode(data).map_err(|_| PacketError::BadBase64)?,
            )),
            other => return Err(PacketError::UnknownType(other)),
        })
    }
}

/// Splits a polling POST body into packets.
pub fn decode_payload(body: &str) -> Result<Vec<Packet>, PacketError> {
    body.split(SEPARATOR).map(Packet::decode).collect()
}

/// Joins already-encoded packets into one polling GET body.
pub fn encode_payload<'a>(packets: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for (i, packet) in packets.into_iter().enumerate() {
        if i > 0 {
            out.push(SEPARATOR);
        }
        out.push_str(packet);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_type() {
        for packet in [
            Packet::Open(r#"{"sid":"x"}"#.into()),
            Packet::Close,
            Packet::Ping("probe".into()),
            Packet::Pong(String::new()),
            Packet::Message("2[\"a\"]".into()),
            Packet::Binary(Bytes::from_static(&[0, 1, 2, 255])),
            Packet::Upgrade,
            Packet::Noop,
        ] {
            assert_eq!(Packet::decode(&packet.encode()), Ok(packet));
        }
    }

    #[test]
    fn payloads_split_on_the_record_separator() {
        let body = "4hello\x1ebAQID\x1e2";
        assert_eq!(
            decode_payload(body),
            Ok(vec![
                Packet::Message("hello".into()),
                Packet::Binary(Bytes::from_static(&[1, 2, 3])),
                Packet::Ping(String::new()),
            ])
        );
        assert_eq!(encode_payload(["4a", "4b"]), "4a\x1e4b");
        assert_eq!(decode_payload(""), Err(PacketError::Empty));
        assert_eq!(decode_payload("4a\x1e"), Err(PacketError::Empty));
        assert_eq!(decode_payload("7"), Err(PacketError::UnknownType('7')));
        assert_eq!(decode_payload("b!!"), Err(PacketError::BadBase64));
    }
}
