//! The registry of every redb table: names, key and value types. Nothing else in the crate
//! names a table. Values are MessagePack records from `records`; keys are fixed-width integers
//! (or tuples of them) so range scans walk in order.
//!
//! Every table is declared once, in the `tables!` list below, which generates its constant,
//! `create_all` (so a fresh file has every table) and `for_each_table` (so backup copies every
//! table). Adding a table is one line there, plus its row in docs/STORAGE.md.
//!
//! Must not: hold data or logic beyond the table list.

use redb::{Key, TableDefinition, Value, WriteTransaction};

use super::StoreError;

/// Something that wants to see every table (backup copies each one).
pub trait TableVisitor {
    fn visit<K: Key + 'static, V: Value + 'static>(
        &mut self,
        table: TableDefinition<'static, K, V>,
    ) -> Result<(), StoreError>;
}

macro_rules! tables {
    ($($(#[$doc:meta])* $name:ident: $key:ty => $value:ty = $table:literal;)*) => {
        $($(#[$doc])* pub const $name: TableDefinition<$key, $value> = TableDefinition::new($table);)*

        /// Opens every table once so that read transactions never meet a missing table.
        pub fn create_all(txn: &WriteTransaction) -> Result<(), redb::TableError> {
            $(txn.open_table($name)?;)*
            Ok(())
        }

        /// Shows `visitor` every table, in registry order.
        pub fn for_each_table(visitor: &mut impl TableVisitor) -> Result<(), StoreError> {
            $(visitor.visit($name)?;)*
            Ok(())
        }
    };
}

tables! {
    /// `schema_version`, `next_user_id`, `next_room_id`, `next_event_seq`, `session_epoch`.
    META: &str => u64 = "meta";
    /// user id -> `UserRecord`.
    USERS: u64 => &[u8] = "users";
    /// lowercased username -> user id.
    USERNAMES: &str => u64 = "usernames";
    /// sha256(session token) -> `SessionRecord`. The token itself is never stored.
    SESSIONS: [u8; 32] => &[u8] = "sessions";
    /// (user, sha256(token)) -> () — lets a password change or a disable end every session.
    USER_SESSIONS: (u64, [u8; 32]) => () = "user_sessions";
    /// room id -> `RoomRecord`.
    ROOMS: u64 => &[u8] = "rooms";
    /// (room, user) -> `MemberRecord`.
    MEMBERS: (u64, u64) => &[u8] = "members";
    /// (user, room) -> () — the reverse of `members`, for "my rooms".
    USER_ROOMS: (u64, u64) => () = "user_rooms";
    /// (room, seq) -> `MessageRecord`.
    MESSAGES: (u64, u64) => &[u8] = "messages";
    /// (room, client id) -> seq — a retried send returns the first result.
    CLIENT_IDS: (u64, u128) => u64 = "client_ids";
    /// global event seq -> `EventRecord` — the durable log behind reconnect recovery.
    EVENTS: u64 => &[u8] = "events";
    /// (lower user id, higher user id) -> room id — one direct room per pair.
    DIRECT_ROOMS: (u64, u64) => u64 = "direct_rooms";
    /// sha256(invite token) -> `InviteRecord`.
    INVITES: [u8; 32] => &[u8] = "invites";
}

pub const META_SCHEMA_VERSION: &str = "schema_version";
pub const META_NEXT_USER_ID: &str = "next_user_id";
pub const META_NEXT_ROOM_ID: &str = "next_room_id";
pub const META_NEXT_EVENT_SEQ: &str = "next_event_seq";
/// Moves on every commit that ends a session (logout, password change, disable), from any
/// process: a running server polls this one key to learn that the admin CLI ended sessions.
pub const META_SESSION_EPOCH: &str = "session_epoch";
