//! Typed identifiers. Every id that crosses a module boundary is one of these newtypes, so a
//! room id can never be passed where a user id is expected.
//!
//! Must not: know about storage layout or the wire format beyond plain numbers/strings.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_newtype!(
    /// A user account. Assigned from 1 upwards, never reused.
    UserId
);
id_newtype!(
    /// A room (group or direct). Assigned from 1 upwards, never reused.
    RoomId
);
id_newtype!(
    /// A message's position in its room: dense, starts at 1, never reused (a deleted message
    /// stays as a tombstone).
    MessageSeq
);
id_newtype!(
    /// Position in the global durable event log that reconnect recovery replays.
    EventSeq
);

/// The largest id we hand out on the wire: JSON numbers are exact below 2^53.
pub const MAX_WIRE_ID: u64 = (1 << 53) - 1;

/// A client-chosen idempotency key for sends: a UUID, stored as its 128 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(pub u128);

impl ClientId {
    /// Accepts the canonical `8-4-4-4-12` UUID form or 32 bare hex digits, any case.
    pub fn parse(text: &str) -> Option<ClientId> {
        let hex: String = match text.len() {
            36 => {
                let dashes_ok = text
                    .char_indices()
                    .all(|(i, c)| matches!(i, 8 | 13 | 18 | 23) == (c == '-'));
                if !dashes_ok {
                    return None;
                }
                text.chars().filter(|c| *c != '-').collect()
            }
            32 => text.to_owned(),
            _ => return None,
        };
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u128::from_str_radix(&hex, 16).ok().map(ClientId)
    }
}

impl fmt::Display for ClientId {
    /// Always the canonical lowercase UUID form, whatever form the client sent.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = format!("{:032x}", self.0);
        write!(
            f,
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_id_accepts_uuid_and_bare_hex_and_prints_canonical() {
        let a = ClientId::parse("123E4567-e89b-12d3-a456-426614174000").expect("uuid");
        let b = ClientId::parse("123e4567e89b12d3a456426614174000").expect("hex");
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "123e4567-e89b-12d3-a456-426614174000");
    }

    #[test]
    fn client_id_rejects_malformed() {
        for bad in [
            "",
            "xyz",
            "123e4567-e89b-12d3-a456-42661417400g",
            "123e4567e-89b-12d3-a456-426614174000",
            "+23e4567e89b12d3a456426614174000",
            "123e4567-e89b-12d3-a456-4266141740000",
        ] {
            assert!(ClientId::parse(bad).is_none(), "{bad:?}");
        }
    }
}
