//! Store behaviour on real redb files in temp dirs: group commit, refusals isolated within a
//! batch, seq density, the schema-version gate, backup.

use std::sync::Arc;

use super::records::{RoomRole, Visibility};
use super::*;
use crate::ids::{ClientId, MessageSeq, UserId};

async fn fresh() -> (tempfile::TempDir, Store, UserId, crate::ids::RoomId) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("parley.redb")).expect("open");
    let (user, _) = store
        .create_user("alice".into(), "Alice".into(), "x".into(), Admission::Open)
        .await
        .expect("user");
    let (room, _) = store
        .create_room("general".into(), Visibility::Public, None, user)
        .await
        .expect("room");
    (dir, store, user, room)
}

fn message(room: crate::ids::RoomId, sender: UserId, body: &str) -> NewMessage {
    NewMessage {
        room,
        sender,
        body: body.into(),
        client_id: None,
        reply_to: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_get_dense_unique_seqs() {
    let (_dir, store, user, room) = fresh().await;
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for i in 0..400 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store
                .append_message(message(room, user, &format!("m{i}")))
                .await
                .map(|o| o.seq.0)
        }));
    }
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.expect("join").expect("append"));
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=400).collect::<Vec<u64>>());
    let snapshot = store.snapshot().expect("snapshot");
    assert_eq!(
        snapshot.room(room).expect("read").expect("room").last_seq,
        MessageSeq(400)
    );
    assert_eq!(
        snapshot
            .messages_before(room, MessageSeq(u64::MAX), 1000)
            .expect("page")
            .len(),
        400
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_write_does_not_disturb_its_batch() {
    let (_dir, store, user, room) = fresh().await;
    let (outsider, _) = store
        .create_user("mallory".into(), "M".into(), "x".into(), Admission::Open)
        .await
        .expect("user");
    // Interleave refused sends (not a member) with good ones so they share batches.
    let mut tasks = Vec::new();
    for i in 0..100 {
        let store = store.clone();
        let sender = if i % 2 == 0 { user } else { outsider };
        tasks.push(tokio::spawn(async move {
            store.append_message(message(room, sender, "x")).await
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        match task.await.expect("join") {
            Ok(_) => accepted += 1,
            Err(StoreError::NotMember) => {}
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(accepted, 50);
    let snapshot = store.snapshot().expect("snapshot");
    assert_eq!(
        snapshot.room(room).expect("read").expect("room").last_seq,
        MessageSeq(50)
    );
}

#[tokio::test]
async fn seqs_are_never_reused_after_delete_and_client_ids_replay() {
    let (_dir, store, user, room) = fresh().await;
    let id = ClientId(7);
    let first = store
        .append_message(NewMessage {
            client_id: Some(id),
            ..message(room, user, "one")
        })
        .await
        .expect("send");
    let again = store
        .append_message(NewMessage {
            client_id: Some(id),
            ..message(room, user, "different text")
        })
        .await
        .expect("replay");
    assert!(again.replayed && again.seq == first.seq && again.message.body == "one");
    store
        .delete_message(room, first.seq, user)
        .await
        .expect("delete");
    let next = store
        .append_message(message(room, user, "two"))
        .await
        .expect("send");
    assert_eq!(next.seq, MessageSeq(2));
    let tomb = store
        .snapshot()
        .expect("snap")
        .message(room, first.seq)
        .expect("read")
        .expect("kept");
    assert!(tomb.deleted && tomb.body.is_empty());
}

#[tokio::test]
async fn membership_counts_and_read_positions() {
    let (_dir, store, user, room) = fresh().await;
    let (bob, _) = store
        .create_user("bob".into(), "Bob".into(), "x".into(), Admission::Open)
        .await
        .expect("user");
    store
        .add_member(room, bob, RoomRole::Member)
        .await
        .expect("add");
    assert!(matches!(
        store.add_member(room, bob, RoomRole::Member).await,
        Err(StoreError::AlreadyMember)
    ));
    for _ in 0..3 {
        store
            .append_message(message(room, user, "hi"))
            .await
            .expect("send");
    }
    let snapshot = store.snapshot().expect("snap");
    assert_eq!(
        snapshot.room(room).expect("r").expect("room").member_count,
        2
    );
    assert_eq!(
        snapshot
            .unread_count(room, bob, MessageSeq(0))
            .expect("unread"),
        3
    );
    assert_eq!(
        snapshot
            .unread_count(room, user, MessageSeq(0))
            .expect("unread"),
        0
    );
    drop(snapshot);
    assert_eq!(
        store
            .mark_read(room, bob, MessageSeq(99))
            .await
            .expect("read"),
        MessageSeq(3)
    );
    assert_eq!(
        store
            .mark_read(room, bob, MessageSeq(1))
            .await
            .expect("read"),
        MessageSeq(3)
    );
    store.remove_member(room, bob).await.expect("remove");
    let snapshot = store.snapshot().expect("snap");
    assert_eq!(
        snapshot.room(room).expect("r").expect("room").member_count,
        1
    );
    assert!(snapshot.rooms_of(bob).expect("rooms").is_empty());
}

#[tokio::test]
async fn a_newer_schema_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("parley.redb");
    Store::open(&path).expect("create").close().await;
    {
        let db = redb::Builder::new()
            .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
            .open(&path)
            .expect("raw open");
        let txn = db.begin_write().expect("txn");
        txn.open_table(tables::META)
            .expect("meta")
            .insert(tables::META_SCHEMA_VERSION, SCHEMA_VERSION + 1)
            .expect("insert");
        txn.commit().expect("commit");
    }
    let err = Store::open(&path).err().expect("must refuse");
    assert!(matches!(err, StoreError::SchemaTooNew { found, .. } if found == SCHEMA_VERSION + 1));
    assert!(err.to_string().contains("schema version 2"), "{err}");
}

#[tokio::test]
async fn backup_copies_a_consistent_snapshot() {
    let (dir, store, user, room) = fresh().await;
    for _ in 0..10 {
        store
            .append_message(message(room, user, "hi"))
            .await
            .expect("send");
    }
    let target = dir.path().join("copy.redb");
    let source = dir.path().join("parley.redb");
    let copied = tokio::task::spawn_blocking({
        let target = target.clone();
        move || backup_to(&source, &target)
    })
    .await
    .expect("join")
    .expect("backup");
    assert!(copied > 10);
    assert!(
        backup_to(&dir.path().join("parley.redb"), &target).is_err(),
        "never overwrites"
    );
    store.close().await;
    drop(store);
    let copy = Store::open(&target).expect("open copy");
    let page = copy
        .snapshot()
        .expect("snap")
        .messages_before(room, MessageSeq(u64::MAX), 100)
        .expect("page");
    assert_eq!(page.len(), 10);
}

/// Every table's name and entry count, straight from the file (not from the registry).
fn tables_in(path: &std::path::Path) -> std::collections::BTreeMap<String, u64> {
    use redb::{ReadableDatabase, ReadableTableMetadata, TableHandle};
    let db = redb::Builder::new()
        .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
        .open_read_only(path)
        .expect("raw open");
    let txn = db.begin_read().expect("read");
    txn.list_tables()
        .expect("list")
        .map(|handle| {
            let name = handle.name().to_owned();
            let len = txn
                .open_untyped_table(handle)
                .expect("open")
                .len()
                .expect("len");
            (name, len)
        })
        .collect()
}

#[tokio::test]
async fn a_backup_holds_every_table() {
    let (dir, store, user, room) = fresh().await;
    // Put something in every table, so a table the backup skipped would show as missing rows.
    let (bob, _) = store
        .create_user("bob".into(), "Bob".into(), "x".into(), Admission::Open)
        .await
        .expect("user");
    let session = records::SessionRecord {
        user,
        created_at: crate::clock::Timestamp(1),
        expires_at: crate::clock::Timestamp(i64::MAX),
        last_seen: None,
    };
    store
        .create_session([1; 32], session)
        .await
        .expect("session");
    let invite = records::InviteRecord {
        created_by: user,
        created_at: crate::clock::Timestamp(1),
        expires_at: crate::clock::Timestamp(i64::MAX),
        uses_left: 1,
    };
    store.create_invite([2; 32], invite).await.expect("invite");
    store.open_direct(user, bob).await.expect("direct");
    store
        .append_message(NewMessage {
            client_id: Some(ClientId(1)),
            ..message(room, user, "hi")
        })
        .await
        .expect("send");
    store.close().await;

    let path = dir.path().join("parley.redb");
    let source = tables_in(&path);
    let mut registry = Vec::new();
    struct Names<'a>(&'a mut Vec<String>);
    impl tables::TableVisitor for Names<'_> {
        fn visit<K: redb::Key + 'static, V: redb::Value + 'static>(
            &mut self,
            table: redb::TableDefinition<'static, K, V>,
        ) -> Result<(), StoreError> {
            self.0.push(redb::TableHandle::name(&table).to_owned());
            Ok(())
        }
    }
    tables::for_each_table(&mut Names(&mut registry)).expect("visit");
    registry.sort();
    assert_eq!(
        source.keys().cloned().collect::<Vec<_>>(),
        registry,
        "every table in the file is in the registry"
    );
    for (name, len) in &source {
        assert!(
            *len > 0,
            "table {name} is empty, so this test proves nothing for it"
        );
    }
    let target = dir.path().join("copy.redb");
    let copied = backup_to(&path, &target).expect("backup");
    assert_eq!(copied, source.values().sum::<u64>());
    assert_eq!(tables_in(&target), source, "same tables, same sizes");
}

#[tokio::test]
async fn writes_after_close_are_refused() {
    let (_dir, store, user, room) = fresh().await;
    store.close().await;
    assert!(matches!(
        store.append_message(message(room, user, "late")).await,
        Err(StoreError::Closed)
    ));
}
