//! The registry of every redb table: names, key and value types. Nothing else in the crate
//! names a table. Values are MessagePack records from `records`; keys are fixed-width integers
//! (or tuples of them) so range scans walk in order.
//!
//! Adding a table: add it here, to `ALL_TABLES_CREATED_AT_OPEN` via `create_all`, and to the
//! backup copy list in `backup.rs`; describe it in docs/STORAGE.md.

use redb::{TableDefinition, WriteTransaction};

/// `schema_version`, `next_user_id`, `next_room_id`, `next_event_seq`.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// user id -> `UserRecord`.
pub const USERS: TableDefinition<u64, &[u8]> = TableDefinition::new("users");
/// lowercased username -> user id.
pub const USERNAMES: TableDefinition<&str, u64> = TableDefinition::new("usernames");
/// sha256(session token) -> `SessionRecord`. The token itself is never stored.
pub const SESSIONS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("sessions");
/// (user, sha256(token)) -> () — lets a password change or a disable end every session.
pub const USER_SESSIONS: TableDefinition<(u64, [u8; 32]), ()> =
    TableDefinition::new("user_sessions");
/// room id -> `RoomRecord`.
pub const ROOMS: TableDefinition<u64, &[u8]> = TableDefinition::new("rooms");
/// (room, user) -> `MemberRecord`.
pub const MEMBERS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("members");
/// (user, room) -> () — the reverse of `members`, for "my rooms".
pub const USER_ROOMS: TableDefinition<(u64, u64), ()> = TableDefinition::new("user_rooms");
/// (room, seq) -> `MessageRecord`.
pub const MESSAGES: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("messages");
/// (room, client id) -> seq — a retried send returns the first result.
pub const CLIENT_IDS: TableDefinition<(u64, u128), u64> = TableDefinition::new("client_ids");
/// global event seq -> `EventRecord` — the durable log behind reconnect recovery.
pub const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// (lower user id, higher user id) -> room id — one direct room per pair.
pub const DIRECT_ROOMS: TableDefinition<(u64, u64), u64> = TableDefinition::new("direct_rooms");
/// sha256(invite token) -> `InviteRecord`.
pub const INVITES: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("invites");

pub const META_SCHEMA_VERSION: &str = "schema_version";
pub const META_NEXT_USER_ID: &str = "next_user_id";
pub const META_NEXT_ROOM_ID: &str = "next_room_id";
pub const META_NEXT_EVENT_SEQ: &str = "next_event_seq";

/// Opens every table once so that read transactions never meet a missing table.
pub fn create_all(txn: &WriteTransaction) -> Result<(), redb::TableError> {
    txn.open_table(META)?;
    txn.open_table(USERS)?;
    txn.open_table(USERNAMES)?;
    txn.open_table(SESSIONS)?;
    txn.open_table(USER_SESSIONS)?;
    txn.open_table(ROOMS)?;
    txn.open_table(MEMBERS)?;
    txn.open_table(USER_ROOMS)?;
    txn.open_table(MESSAGES)?;
    txn.open_table(CLIENT_IDS)?;
    txn.open_table(EVENTS)?;
    txn.open_table(DIRECT_ROOMS)?;
    txn.open_table(INVITES)?;
    Ok(())
}
