//! Everything survives a restart; a store written by a newer release is refused untouched.

use parley::app::App;
use parley::store::{SCHEMA_VERSION, Store, StoreError};
use redb::{ReadableDatabase, TableDefinition};
use serde_json::json;

use crate::common::*;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");

    let srv = TestServer::start(dir.path()).await;
    let (alice, a) = register(&srv, "alice", PASSWORD).await;
    let (bob, b) = register(&srv, "bob", PASSWORD).await;
    let public = create_room(&srv, &a, "general", "public").await;
    let private = create_room(&srv, &a, "secret", "private").await;
    let (rp, rs) = (id(&public), id(&private));
    join(&srv, &b, rp).await;
    expect(
        post(
            &srv,
            &format!("/api/rooms/{rs}/members"),
            &a,
            &json!({ "userId": id(&bob) }),
        )
        .await,
        201,
    )
    .await;
    expect(
        patch(
            &srv,
            &format!("/api/rooms/{rp}"),
            &a,
            &json!({ "topic": "kept" }),
        )
        .await,
        200,
    )
    .await;
    for i in 1..=5 {
        let token = if i % 2 == 0 { &b } else { &a };
        send_message(&srv, token, rp, &format!("message {i}")).await;
    }
    send_message(&srv, &a, rs, "private words").await;
    expect(
        patch(
            &srv,
            &format!("/api/rooms/{rp}/messages/2"),
            &b,
            &json!({ "content": "edited 2" }),
        )
        .await,
        200,
    )
    .await;
    expect(
        delete(&srv, &format!("/api/rooms/{rp}/messages/3"), &a).await,
        200,
    )
    .await;
    expect(
        post(
            &srv,
            &format!("/api/rooms/{rp}/read"),
            &b,
            &json!({ "seq": 4 }),
        )
        .await,
        200,
    )
    .await;
    let dm = expect(
        post(&srv, "/api/dm", &a, &json!({ "userId": id(&bob) })).await,
        201,
    )
    .await;
    let before = history(&srv, &a, rp).await;
    let bob_view_before = my_room(&srv, &b, rp).await.expect("listed");
    srv.stop().await;

    let srv = TestServer::start(dir.path()).await;
    let info = expect(get_anon(&srv, "/api/server").await, 200).await;
    assert_eq!(info["needsSetup"], false, "{info}");
    // Password hashes survived, and so did sessions.
    let (alice2, a2) = login_ok(&srv, "alice", PASSWORD).await;
    assert_eq!(alice2["id"], alice["id"]);
    assert_eq!(alice2["isAdmin"], true);
    let me = expect(get(&srv, "/api/me", &b).await, 200).await;
    assert_eq!(
        me["id"], bob["id"],
        "a session from before the restart still works"
    );

    let mut rooms: Vec<u64> = my_rooms(&srv, &a2).await.iter().map(id).collect();
    rooms.sort();
    let mut want = vec![rp, rs, id(&dm)];
    want.sort();
    assert_eq!(rooms, want);

    let room = expect(get(&srv, &format!("/api/rooms/{rp}"), &a2).await, 200).await;
    assert_eq!(room["name"], "general");
    assert_eq!(room["topic"], "kept");
    assert_eq!(room["lastSeq"], 5);
    assert_eq!(room["memberCount"], 2);
    let members = expect(
        get(&srv, &format!("/api/rooms/{rs}/members"), &a2).await,
        200,
    )
    .await;
    let mut member_ids: Vec<u64> = members
        .as_array()
        .expect("Member[]")
        .iter()
        .map(|m| id(&m["user"]))
        .collect();
    member_ids.sort();
    assert_eq!(member_ids, [id(&alice), id(&bob)]);

    let after = history(&srv, &a2, rp).await;
    assert_eq!(after, before, "history changed across the restart");
    assert_eq!(after.len(), 5);
    assert_eq!(after[1]["content"], "edited 2");
    assert_timestamp(&after[1]["editedAt"]);
    assert_eq!(after[2]["deleted"], true);
    assert_eq!(after[2]["content"], "");

    let bob_view = my_room(&srv, &b, rp).await.expect("listed");
    assert_eq!(bob_view["lastReadSeq"], 4);
    assert_eq!(bob_view["unread"], bob_view_before["unread"]);
    let dm_view = my_room(&srv, &b, id(&dm)).await.expect("DM listed");
    assert_eq!(dm_view["kind"], "direct");
    assert_eq!(dm_view["peer"]["id"], alice["id"]);

    // Seqs carry on, in both rooms.
    assert_eq!(seq(&send_message(&srv, &b, rp, "after restart").await), 6);
    assert_eq!(seq(&send_message(&srv, &b, rs, "after restart").await), 2);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ids_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = TestServer::start(dir.path()).await;
    let (_, a) = register(&srv, "alice", PASSWORD).await;
    let rid = id(&create_room(&srv, &a, "general", "public").await);
    let body = json!({ "content": "once", "clientId": "11111111-2222-3333-4444-555555555555" });
    let path = format!("/api/rooms/{rid}/messages");
    let first = expect(post(&srv, &path, &a, &body).await, 201).await;
    srv.stop().await;

    let srv = TestServer::start(dir.path()).await;
    let again = expect(post(&srv, &path, &a, &body).await, 200).await;
    assert_eq!(again, first);
    assert_eq!(history(&srv, &a, rid).await.len(), 1);
    srv.stop().await;
}

fn read_schema_version(path: &std::path::Path) -> Option<u64> {
    let db = redb::Builder::new()
        .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
        .open(path)
        .expect("open redb");
    let txn = db.begin_read().expect("begin_read");
    let table = txn.open_table(META).expect("open meta");
    table.get("schema_version").expect("get").map(|g| g.value())
}

fn numbers_in(text: &str) -> Vec<u64> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter_map(|t| t.parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_from_a_newer_release_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = TestServer::start(dir.path()).await;
    register(&srv, "alice", PASSWORD).await;
    srv.stop().await;

    let db_path = dir.path().join("parley.redb");
    assert_eq!(read_schema_version(&db_path), Some(SCHEMA_VERSION));
    let newer = SCHEMA_VERSION + 1;
    {
        let db = redb::Builder::new()
            .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
            .open(&db_path)
            .expect("open redb");
        let txn = db.begin_write().expect("begin_write");
        {
            let mut meta = txn.open_table(META).expect("open meta");
            meta.insert("schema_version", newer).expect("insert");
        }
        txn.commit().expect("commit");
    }

    match App::open(config_for(dir.path())) {
        Ok(_) => panic!("App::open accepted schema version {newer} (supports {SCHEMA_VERSION})"),
        Err(e) => {
            let text = e.to_string();
            let numbers = numbers_in(&text);
            assert!(
                numbers.contains(&newer) && numbers.contains(&SCHEMA_VERSION),
                "error does not name both versions ({newer}, {SCHEMA_VERSION}): {text}"
            );
        }
    }
    match Store::open(&db_path) {
        Ok(_) => panic!("Store::open accepted schema version {newer}"),
        Err(StoreError::SchemaTooNew {
            found, supported, ..
        }) => {
            assert_eq!(found, newer);
            assert_eq!(supported, SCHEMA_VERSION);
        }
        Err(other) => panic!("expected SchemaTooNew, got: {other}"),
    }
    assert_eq!(
        read_schema_version(&db_path),
        Some(newer),
        "refusing to open must not rewrite the schema version"
    );
}
