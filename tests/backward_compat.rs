//! Backward compatibility: a store file written by an earlier release must open with today's
//! `Store::open`, read back every record as it was written, and take new writes.
//!
//! `tests/fixtures/schema-v1.redb` was written once, by `write_schema_v1_fixture` below, with
//! the code of schema version 1. It is frozen: the checks here describe that file, not whatever
//! the generator would write today. Regenerating it is only ever needed for a *new* schema
//! version, and then as a new file (`schema-v2.redb`, with its own generator and checks) next
//! to this one, so every old format stays tested. Should this one ever need rewriting anyway:
//!
//! ```text
//! rm tests/fixtures/schema-v1.redb
//! cargo test --test backward_compat -- --ignored write_schema_v1_fixture
//! ```
//!
//! The checks always work on a copy in a temp dir: opening a file runs the schema preparation
//! (and, one day, migrations), which must never touch the committed fixture.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use parley::auth::{PasswordHasher, token_hash};
use parley::clock::Timestamp;
use parley::ids::{ClientId, EventSeq, MessageSeq, RoomId, UserId};
use parley::store::records::{
    EventKind, InviteRecord, RoomKind, RoomRole, SessionRecord, Visibility, decode,
};
use parley::store::{Admission, NewMessage, SCHEMA_VERSION, Store, StoreError};
use redb::{ReadableDatabase, TableDefinition};

/// The fixture's own version: what `meta.schema_version` says inside the file.
const FIXTURE_VERSION: u64 = 1;
const PASSWORD: &str = "fixture password 1";

/// (username as typed, display name). Ids are 1, 2, 3 in this order; "Bob" checks that
/// lookups go through the lowercased name.
const USERS: [(&str, &str); 3] = [
    ("alice", "Alice Liddell"),
    ("Bob", "Bob the Builder"),
    ("carol", "Carol"),
];
const ALICE: UserId = UserId(1);
const BOB: UserId = UserId(2);
const CAROL: UserId = UserId(3);
const GENERAL: RoomId = RoomId(1);
const SECRET: RoomId = RoomId(2);
const DIRECT: RoomId = RoomId(3);

const CAROL_AVATAR: &str = "5f0c2a55d2b9b4c3a1e7e0e8b6c5d4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7";
const GENERAL_TOPIC: &str = "Monday agenda and chatter";
const SECRET_TOPIC: &str = "quiet";

/// Fixed times, so the session and invite records are exact (other records carry the time
/// the fixture was written).
const SESSION_CREATED: Timestamp = Timestamp(1_767_225_600_000); // 2026-01-01
const SESSION_SEEN: Timestamp = Timestamp(1_767_229_200_000);
const FAR_FUTURE: Timestamp = Timestamp(4_102_444_800_000); // 2100-01-01

/// Alice's session token and the invite token, as a client would hold them.
fn session_token() -> String {
    URL_SAFE_NO_PAD.encode([0x5a; 32])
}
fn invite_token() -> String {
    URL_SAFE_NO_PAD.encode([0x17; 32])
}

struct Sent {
    room: RoomId,
    sender: UserId,
    body: &'static str,
    client_id: Option<u128>,
    reply_to: Option<u64>,
}

const fn sent(
    room: RoomId,
    sender: UserId,
    body: &'static str,
    client_id: Option<u128>,
    reply_to: Option<u64>,
) -> Sent {
    Sent {
        room,
        sender,
        body,
        client_id,
        reply_to,
    }
}

/// Every message, in the order sent: seqs follow per room. Client id 0x1001 is used in all
/// three rooms, because client ids are scoped to a room.
const MESSAGES: [Sent; 20] = [
    sent(GENERAL, ALICE, "welcome to general", Some(0x1001), None),
    sent(GENERAL, BOB, "hi all", Some(0x2001), None),
    sent(GENERAL, CAROL, "hello", None, None),
    sent(GENERAL, ALICE, "agenda for monday", Some(0x1002), None),
    sent(
        GENERAL,
        BOB,
        "replying to the agenda",
        Some(0x2002),
        Some(4),
    ),
    sent(GENERAL, CAROL, "a typo mesage", None, None),
    sent(GENERAL, ALICE, "this one gets deleted", Some(0x1003), None),
    sent(GENERAL, BOB, "héllo 你好 🎉", None, None),
    sent(GENERAL, CAROL, "replying to the deleted one", None, Some(7)),
    sent(GENERAL, ALICE, "ten", None, None),
    sent(GENERAL, BOB, "eleven", Some(0x2003), None),
    sent(GENERAL, CAROL, "twelve", None, None),
    sent(SECRET, ALICE, "secret one", Some(0x1001), None),
    sent(SECRET, CAROL, "secret two", None, None),
    sent(SECRET, ALICE, "secret three", None, None),
    sent(SECRET, CAROL, "secret four", None, Some(1)),
    sent(DIRECT, ALICE, "dm one", Some(0x1001), None),
    sent(DIRECT, BOB, "dm two", None, None),
    sent(DIRECT, ALICE, "dm three", None, None),
    sent(DIRECT, BOB, "dm four", None, None),
];
/// (room, seq, editor, new body).
const EDITED: (RoomId, u64, UserId, &str) = (GENERAL, 6, CAROL, "a typo message");
/// (room, seq, deleter).
const DELETED: (RoomId, u64, UserId) = (GENERAL, 7, ALICE);

fn fixture_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/schema-v{FIXTURE_VERSION}.redb"))
}

/// Writes `tests/fixtures/schema-v1.redb` through the public store API, then compacts it.
/// Run only to create the file (see the header); it refuses to overwrite one.
#[tokio::test]
#[ignore = "writes the committed fixture; run by hand for a new schema version only"]
async fn write_schema_v1_fixture() {
    assert_eq!(
        SCHEMA_VERSION, FIXTURE_VERSION,
        "this generator writes version {FIXTURE_VERSION}; a new version needs a new generator"
    );
    let path = fixture_path();
    assert!(
        !path.exists(),
        "{} exists; fixtures are frozen (delete it first if you really mean to rewrite it)",
        path.display()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let scratch = dir.path().join("fixture.redb");
    let store = Store::open(&scratch).expect("open");
    let hasher = PasswordHasher::new(1);
    let invite_hash = token_hash(&invite_token()).expect("invite hash");

    let mut ids = Vec::new();
    for (i, (username, display)) in USERS.iter().enumerate() {
        let admission = match i {
            2 => Admission::InviteOnly(Some(invite_hash)),
            _ => Admission::Open,
        };
        if i == 2 {
            store
                .create_invite(
                    invite_hash,
                    InviteRecord {
                        created_by: ALICE,
                        created_at: SESSION_CREATED,
                        expires_at: FAR_FUTURE,
                        uses_left: 2,
                    },
                )
                .await
                .expect("invite");
        }
        let hash = hasher.hash(PASSWORD.into()).await.expect("hash");
        let (id, _) = store
            .create_user((*username).into(), (*display).into(), hash, admission)
            .await
            .expect("user");
        ids.push(id);
    }
    assert_eq!(ids, [ALICE, BOB, CAROL]);
    store
        .update_user(CAROL, None, Some(Some(CAROL_AVATAR.into())))
        .await
        .expect("avatar");
    let session_hash = token_hash(&session_token()).expect("session hash");
    store
        .create_session(
            session_hash,
            SessionRecord {
                user: ALICE,
                created_at: SESSION_CREATED,
                expires_at: SESSION_CREATED.plus_seconds(86_400),
                last_seen: None,
            },
        )
        .await
        .expect("session");
    store
        .touch_session(session_hash, SESSION_SEEN, FAR_FUTURE)
        .await
        .expect("touch");

    let (general, _) = store
        .create_room("general".into(), Visibility::Public, None, ALICE)
        .await
        .expect("general");
    store
        .update_room(general, ALICE, None, Some(Some(GENERAL_TOPIC.into())))
        .await
        .expect("topic");
    let (secret, _) = store
        .create_room(
            "secret".into(),
            Visibility::Private,
            Some(SECRET_TOPIC.into()),
            ALICE,
        )
        .await
        .expect("secret");
    store
        .add_member(general, BOB, RoomRole::Member)
        .await
        .expect("join");
    store
        .add_member(general, CAROL, RoomRole::Member)
        .await
        .expect("join");
    store
        .add_member(secret, CAROL, RoomRole::Admin)
        .await
        .expect("join");
    store
        .add_member(secret, BOB, RoomRole::Member)
        .await
        .expect("join");
    store.remove_member(secret, BOB).await.expect("leave");
    let (direct, _, created) = store.open_direct(ALICE, BOB).await.expect("direct");
    assert!(created);
    assert_eq!([general, secret, direct], [GENERAL, SECRET, DIRECT]);

    for m in &MESSAGES {
        store
            .append_message(NewMessage {
                room: m.room,
                sender: m.sender,
                body: m.body.into(),
                client_id: m.client_id.map(ClientId),
                reply_to: m.reply_to.map(MessageSeq),
            })
            .await
            .expect("send");
    }
    let (room, seq, editor, body) = EDITED;
    store
        .edit_message(room, MessageSeq(seq), editor, body.into())
        .await
        .expect("edit");
    let (room, seq, deleter) = DELETED;
    store
        .delete_message(room, MessageSeq(seq), deleter)
        .await
        .expect("delete");
    for (room, user, seq) in [(GENERAL, ALICE, 99), (DIRECT, ALICE, 4), (SECRET, CAROL, 2)] {
        store
            .mark_read(room, user, MessageSeq(seq))
            .await
            .expect("read");
    }
    store.close().await;
    drop(store);

    // Compaction gives back the pages freed by the many small transactions above.
    let mut db = redb::Database::open(&scratch).expect("reopen");
    while db.compact().expect("compact") {}
    drop(db);
    std::fs::create_dir_all(path.parent().expect("fixtures dir")).expect("mkdir");
    std::fs::copy(&scratch, &path).expect("copy into tests/fixtures");
    let size = std::fs::metadata(&path).expect("stat").len();
    println!("wrote {} ({size} bytes)", path.display());
}

/// A copy of the fixture in a temp dir (never the committed file), and the fixture's bytes.
fn fixture_copy() -> (tempfile::TempDir, PathBuf, Vec<u8>) {
    let original = std::fs::read(fixture_path()).expect("read fixture");
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("parley.redb");
    std::fs::write(&copy, &original).expect("copy fixture");
    (dir, copy, original)
}

fn stored_schema_version(path: &Path) -> Option<u64> {
    const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
    let db = redb::Builder::new()
        .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
        .open_read_only(path)
        .expect("raw open");
    let txn = db.begin_read().expect("read");
    let meta = txn.open_table(META).expect("meta");
    meta.get("schema_version").expect("get").map(|v| v.value())
}

/// The invite stored under `hash`, read from the file directly: the store has no read for
/// invites (registration checks them inside its write).
fn stored_invite(path: &Path, hash: [u8; 32]) -> Option<InviteRecord> {
    const INVITES: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("invites");
    let db = redb::Builder::new()
        .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
        .open_read_only(path)
        .expect("raw open");
    let txn = db.begin_read().expect("read");
    let invites = txn.open_table(INVITES).expect("invites");
    let found = invites.get(hash).expect("get");
    found.map(|v| decode(v.value()).expect("an invite record"))
}

/// Every event the fixture's log holds, in order: (kind, room, seq, user).
fn expected_events() -> Vec<(EventKind, RoomId, u64, UserId)> {
    use EventKind::*;
    let mut events = vec![
        (MemberJoin, GENERAL, 0, ALICE),
        (RoomUpdate, GENERAL, 0, ALICE),
        (MemberJoin, SECRET, 0, ALICE),
        (MemberJoin, GENERAL, 0, BOB),
        (MemberJoin, GENERAL, 0, CAROL),
        (MemberJoin, SECRET, 0, CAROL),
        (MemberJoin, SECRET, 0, BOB),
        (MemberLeave, SECRET, 0, BOB),
        (MemberJoin, DIRECT, 0, ALICE),
        (MemberJoin, DIRECT, 0, BOB),
    ];
    let mut seqs = std::collections::HashMap::new();
    for m in &MESSAGES {
        let seq = seqs.entry(m.room).or_insert(0);
        *seq += 1;
        events.push((MessageNew, m.room, *seq, m.sender));
    }
    events.extend([
        (MessageUpdate, GENERAL, 6, CAROL),
        (MessageDelete, GENERAL, 7, ALICE),
        // Alice read past the end of general: clamped to its last seq.
        (ReadMarker, GENERAL, 12, ALICE),
        (ReadMarker, DIRECT, 4, ALICE),
        // Carol's mark_read(secret, 2) was behind her own last send: no event.
    ]);
    events
}

#[tokio::test]
async fn schema_v1_fixture_reads_back_and_takes_new_writes() {
    let (_dir, path, original) = fixture_copy();
    assert_eq!(stored_schema_version(&path), Some(FIXTURE_VERSION));
    let store = Store::open(&path).expect("today's store opens a version 1 file");
    let snap = store.snapshot().expect("snapshot");

    // Accounts.
    assert_eq!(snap.user_count().expect("count"), 3);
    let users = snap.all_users().expect("users");
    assert_eq!(
        users.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [ALICE, BOB, CAROL]
    );
    let hasher = PasswordHasher::new(1);
    for ((id, user), (username, display)) in users.iter().zip(USERS) {
        assert_eq!(user.username, username);
        assert_eq!(user.display_name, display);
        assert_eq!(
            user.is_admin,
            *id == ALICE,
            "only the first account is admin"
        );
        assert!(!user.disabled);
        assert_eq!(
            user.avatar.as_deref(),
            (*id == CAROL).then_some(CAROL_AVATAR)
        );
        assert!(user.created_at > SESSION_CREATED, "{:?}", user.created_at);
        assert_eq!(
            snap.user_id_by_name(&username.to_uppercase())
                .expect("lookup"),
            Some(*id)
        );
    }
    assert!(
        hasher
            .verify(PASSWORD.into(), users[0].1.password_hash.clone())
            .await
            .expect("verify"),
        "the stored argon2 hash still verifies"
    );
    assert_eq!(
        snap.search_users("", 10)
            .expect("search")
            .iter()
            .map(|(id, _)| *id)
            .collect::<Vec<_>>(),
        [ALICE, BOB, CAROL],
        "in lowercased username order"
    );
    let session_hash = token_hash(&session_token()).expect("hash");
    assert_eq!(
        snap.session(&session_hash).expect("session"),
        Some(SessionRecord {
            user: ALICE,
            created_at: SESSION_CREATED,
            expires_at: FAR_FUTURE,
            last_seen: Some(SESSION_SEEN),
        })
    );
    let invite_hash = token_hash(&invite_token()).expect("hash");
    assert_eq!(
        stored_invite(&path, invite_hash),
        Some(InviteRecord {
            created_by: ALICE,
            created_at: SESSION_CREATED,
            expires_at: FAR_FUTURE,
            uses_left: 1,
        })
    );

    // Rooms and members.
    assert_eq!(snap.room_count().expect("count"), 3);
    let general = snap.room(GENERAL).expect("read").expect("general");
    assert_eq!(
        (general.name.as_str(), general.kind, general.visibility),
        ("general", RoomKind::Group, Visibility::Public)
    );
    assert_eq!(general.topic.as_deref(), Some(GENERAL_TOPIC));
    assert_eq!(
        (general.created_by, general.last_seq, general.member_count),
        (ALICE, MessageSeq(12), 3)
    );
    assert!(general.last_activity >= general.created_at);
    let secret = snap.room(SECRET).expect("read").expect("secret");
    assert_eq!(
        (secret.name.as_str(), secret.kind, secret.visibility),
        ("secret", RoomKind::Group, Visibility::Private)
    );
    assert_eq!(secret.topic.as_deref(), Some(SECRET_TOPIC));
    assert_eq!((secret.last_seq, secret.member_count), (MessageSeq(4), 2));
    let direct = snap.room(DIRECT).expect("read").expect("direct");
    assert_eq!(
        (direct.name.as_str(), direct.kind, direct.visibility),
        ("", RoomKind::Direct, Visibility::Private)
    );
    assert_eq!(direct.topic, None);
    assert_eq!(
        (direct.created_by, direct.last_seq, direct.member_count),
        (ALICE, MessageSeq(4), 2)
    );
    assert_eq!(
        snap.public_rooms()
            .expect("public")
            .iter()
            .map(|(id, _)| *id)
            .collect::<Vec<_>>(),
        [GENERAL]
    );
    let members = |room| {
        snap.members(room)
            .expect("members")
            .into_iter()
            .map(|(user, m)| (user, m.role, m.last_read.0))
            .collect::<Vec<_>>()
    };
    // A sender's read position moves to their own message; mark_read moves it further.
    assert_eq!(
        members(GENERAL),
        [
            (ALICE, RoomRole::Owner, 12),
            (BOB, RoomRole::Member, 11),
            (CAROL, RoomRole::Member, 12)
        ]
    );
    assert_eq!(
        members(SECRET),
        [(ALICE, RoomRole::Owner, 3), (CAROL, RoomRole::Admin, 4)]
    );
    assert_eq!(
        members(DIRECT),
        [(ALICE, RoomRole::Member, 4), (BOB, RoomRole::Member, 4)]
    );
    assert_eq!(
        snap.rooms_of(ALICE).expect("rooms"),
        [GENERAL, SECRET, DIRECT]
    );
    assert_eq!(snap.rooms_of(BOB).expect("rooms"), [GENERAL, DIRECT]);
    assert_eq!(snap.rooms_of(CAROL).expect("rooms"), [GENERAL, SECRET]);
    assert_eq!(
        snap.unread_count(GENERAL, BOB, MessageSeq(11)).expect("n"),
        1
    );
    assert_eq!(
        snap.unread_count(SECRET, ALICE, MessageSeq(3)).expect("n"),
        1
    );
    assert_eq!(
        snap.unread_count(GENERAL, BOB, MessageSeq(0)).expect("n"),
        7,
        "not his own four, not the deleted one"
    );

    // Messages, room by room, against what was sent.
    for room in [GENERAL, SECRET, DIRECT] {
        let history = snap
            .messages_after(room, MessageSeq(0), 100)
            .expect("history");
        let sent: Vec<&Sent> = MESSAGES.iter().filter(|m| m.room == room).collect();
        assert_eq!(history.len(), sent.len());
        let mut previous = Timestamp(0);
        for (i, ((seq, got), want)) in history.iter().zip(sent).enumerate() {
            assert_eq!(*seq, MessageSeq(i as u64 + 1), "dense from 1");
            assert_eq!(got.sender, want.sender);
            assert_eq!(got.client_id, want.client_id.map(ClientId));
            assert_eq!(got.reply_to, want.reply_to.map(MessageSeq));
            assert!(got.attachments.is_empty());
            assert!(got.created_at >= previous, "room {room} seq {seq}");
            previous = got.created_at;
            let key = (room, seq.0);
            if key == (EDITED.0, EDITED.1) {
                assert_eq!(got.body, EDITED.3);
                assert!(got.edited_at.is_some_and(|t| t >= got.created_at));
            } else if key == (DELETED.0, DELETED.1) {
                assert!(got.deleted && got.body.is_empty(), "a tombstone");
                assert_eq!(got.edited_at, None);
            } else {
                assert_eq!(got.body, want.body);
                assert_eq!((got.edited_at, got.deleted), (None, false));
            }
        }
        let newest_first = snap
            .messages_before(room, MessageSeq(u64::MAX), 100)
            .expect("page");
        assert!(
            newest_first
                .iter()
                .rev()
                .map(|(s, _)| *s)
                .eq(history.iter().map(|(s, _)| *s))
        );
        assert_eq!(
            snap.last_message(room).expect("last").map(|(s, _)| s),
            history.last().map(|(s, _)| *s)
        );
    }

    // The event log: gapless from 1, in the order things happened.
    let events = snap.events_after(EventSeq(0), 1000).expect("events");
    let expected = expected_events();
    assert_eq!(
        snap.last_event_seq().expect("last"),
        EventSeq(expected.len() as u64)
    );
    for (i, (seq, event)) in events.iter().enumerate() {
        assert_eq!(*seq, EventSeq(i as u64 + 1));
        assert!(event.at > SESSION_CREATED);
    }
    assert_eq!(
        events
            .iter()
            .map(|(_, e)| (e.kind, e.room, e.seq.0, e.user))
            .collect::<Vec<_>>(),
        expected
    );
    drop(snap);

    // The direct room is found again, not created twice.
    let (room, _, created) = store.open_direct(BOB, ALICE).await.expect("direct");
    assert_eq!((room, created), (DIRECT, false));

    // Recorded client ids still make retries idempotent, per room.
    let retry = |room, sender, client_id| NewMessage {
        room,
        sender,
        body: "a retry with other words".into(),
        client_id: Some(ClientId(client_id)),
        reply_to: None,
    };
    for (room, seq, body) in [
        (GENERAL, 1, "welcome to general"),
        (SECRET, 1, "secret one"),
        (DIRECT, 1, "dm one"),
    ] {
        let again = store
            .append_message(retry(room, ALICE, 0x1001))
            .await
            .expect("retry");
        assert!(again.replayed);
        assert_eq!(
            (again.seq, again.message.body.as_str()),
            (MessageSeq(seq), body)
        );
    }
    let again = store
        .append_message(retry(GENERAL, BOB, 0x2002))
        .await
        .expect("retry");
    assert_eq!((again.seq, again.replayed), (MessageSeq(5), true));
    assert!(matches!(
        store.append_message(retry(GENERAL, BOB, 0x1001)).await,
        Err(StoreError::ClientIdConflict)
    ));

    // New writes continue every counter.
    let next = store
        .append_message(NewMessage {
            room: GENERAL,
            sender: BOB,
            body: "written by today's code".into(),
            client_id: Some(ClientId(0x2004)),
            reply_to: Some(MessageSeq(12)),
        })
        .await
        .expect("send");
    assert_eq!((next.seq, next.replayed), (MessageSeq(13), false));
    let (dave, dave_record) = store
        .create_user(
            "dave".into(),
            "Dave".into(),
            "not a real hash".into(),
            Admission::InviteOnly(Some(invite_hash)),
        )
        .await
        .expect("the fixture's invite still admits");
    assert_eq!((dave, dave_record.is_admin), (UserId(4), false));
    let (room, _) = store
        .create_room("new".into(), Visibility::Public, None, dave)
        .await
        .expect("room");
    assert_eq!(room, RoomId(4));
    assert_eq!(
        store
            .mark_read(GENERAL, CAROL, MessageSeq(13))
            .await
            .expect("read"),
        MessageSeq(13)
    );
    assert!(
        matches!(
            store
                .create_user(
                    "erin".into(),
                    "Erin".into(),
                    "not a real hash".into(),
                    Admission::InviteOnly(Some(invite_hash)),
                )
                .await,
            Err(StoreError::InvalidInvite)
        ),
        "the invite is used up"
    );
    assert_eq!(
        stored_invite(&path, invite_hash),
        None,
        "a used-up invite is removed"
    );
    let snap = store.snapshot().expect("snapshot");
    let base = expected.len() as u64;
    let tail = snap.events_after(EventSeq(base), 100).expect("events");
    assert_eq!(
        tail.iter()
            .map(|(seq, e)| (seq.0, e.kind, e.room))
            .collect::<Vec<_>>(),
        [
            (base + 1, EventKind::MessageNew, GENERAL),
            (base + 2, EventKind::MemberJoin, RoomId(4)),
            (base + 3, EventKind::ReadMarker, GENERAL),
        ]
    );
    drop(snap);
    store.close().await;
    drop(store);
    assert_eq!(stored_schema_version(&path), Some(SCHEMA_VERSION));
    assert!(
        std::fs::read(fixture_path()).expect("read fixture") == original,
        "the committed fixture must never change"
    );
}
