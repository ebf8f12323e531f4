//! Messages: sending, seqs, idempotent client ids, replies, edits, tombstones, paging.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::common::*;

/// A fresh server with alice (admin, room owner) and bob (member) in one public room.
struct Setup {
    _dir: tempfile::TempDir,
    srv: TestServer,
    alice: Value,
    a: String,
    b: String,
    room: u64,
}

async fn setup() -> Setup {
    let (dir, srv) = fresh().await;
    let (alice, a) = register(&srv, "alice", PASSWORD).await;
    let (_, b) = register(&srv, "bob", PASSWORD).await;
    let room = id(&create_room(&srv, &a, "general", "public").await);
    join(&srv, &b, room).await;
    Setup {
        _dir: dir,
        srv,
        alice,
        a,
        b,
        room,
    }
}

fn messages_path(room: u64) -> String {
    format!("/api/rooms/{room}/messages")
}

fn message_path(room: u64, seq: u64) -> String {
    format!("/api/rooms/{room}/messages/{seq}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_then_get_message() {
    let s = setup().await;
    let sent = send_message(&s.srv, &s.a, s.room, "hello, world").await;
    assert_message_shape(&sent);
    assert_eq!(sent["roomId"], s.room);
    assert_eq!(sent["seq"], 1);
    assert_eq!(sent["senderId"], s.alice["id"]);
    assert_eq!(sent["content"], "hello, world");
    assert!(sent["editedAt"].is_null());
    assert_eq!(sent["deleted"], false);
    assert!(sent["replyTo"].is_null());
    assert_eq!(sent["attachments"], json!([]));
    assert!(sent["clientId"].is_null());

    let got = expect(get(&s.srv, &message_path(s.room, 1), &s.a).await, 200).await;
    assert_eq!(got, sent);
    let resp = get(&s.srv, &message_path(s.room, 2), &s.a).await;
    assert_error(resp, 404, "not_found").await;
    s.srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_sent_is_visible_to_another_member() {
    let s = setup().await;
    let sent = send_message(&s.srv, &s.a, s.room, "can you see this?").await;
    let page = expect(get(&s.srv, &messages_path(s.room), &s.b).await, 200).await;
    assert_eq!(page["items"], json!([sent]));
    assert!(page["nextCursor"].is_null(), "{page}");
    let got = expect(get(&s.srv, &message_path(s.room, 1), &s.b).await, 200).await;
    assert_eq!(got["content"], "can you see this?");
    s.srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seqs_start_at_one_and_are_dense() {
    let s = setup().await;
    let mut seqs = Vec::new();
    for i in 0..10 {
        let token = if i % 2 == 0 { &s.a } else { &s.b };
        seqs.push(seq(
            &send_message(&s.srv, token, s.room, &format!("m{i}")).await
        ));
    }
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
    // Seqs are per room: a new room starts again at 1.
    let other = id(&create_room(&s.srv, &s.a, "other", "public").await);
    assert_eq!(seq(&send_message(&s.srv, &s.a, other, "first").await), 1);
    let room = my_room(&s.srv, &s.a, s.room).await.expect("listed");
    assert_eq!(room["lastSeq"], 10);
    s.srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trailing_whitespace_only_content_counts_as_empty() {
    let s = setup().await;
    for bad in ["", "   ", "\n\n\t "] {
        let resp = post(
            &s.srv,
            &messages_path(s.room),
            &s.a,
            &json!({ "content": bad }),
        )
        .await;
        let err = assert_error(resp, 400, "invalid_content").await;
        if let Some(field) = err.get("field") {
            assert_eq!(field, "content");
        }
    }
    let resp = post(
        &s.srv,
        &messages_path(s.room),
        &s.a,
        &json!({ "content": "nul\u{0}byte" }),
    )
    .await;
    assert_error(resp, 400, "invalid_content").await;
    s.srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_client_id_returns_the_first_result() {
    let s = setup().await;
    let cid = "3f2a8c1e-5b7d-4e9a-8c6f-1d2e3f4a5b6c";
    let body = json!({ "content": "only once", "clientId": cid });
    let first = expect(post(&s.srv, &messages_path(s.room), &s.a, &body).await, 201).await;
    assert_eq!(first["clientId"], cid);
    let second = expect(post(&s.srv, &messages_path(s.room), &s.a, &body).await, 200).await;
    assert_eq!(second, first, "a retry returns the first result");
    // Even if the retry's content differs, the first result stands.
    let third = expect(
        post(
            &s.srv,
            &messages_path(s.room),
            &s.a,
            &json!({ "content": "changed my mind", "clientId": cid }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(third, first);

    let all = history(&s.srv, &s.a, s.room).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["content"], "only once");
    // The next message is seq 2: the retries consumed nothing.
    assert_eq!(seq(&send_message(&s.srv, &s.a, s.room, "next").await), 2);
    s.srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_id_retries_racing_the_first_send_get_one_message() {
    let s = setup().await;
    let cid = "0123456789abcdef0123456789abcdef"; // the 32-hex-digit form
    let remote = s.srv.remote();
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let remote = remote.clone();
            let token = s.a.clone();
            let path = messages_path(s.room);
            tokio::spawn(async move {
                let resp = post(
                    &remote,
                    &path,
                    &token,
                    &json!({ "content": "racy", "clientId": cid }),
                )
                .await;
                let status = resp.status().as_u16();
                (status, expect(resp, status).await)
            })
        })
        .collect();
    let mut created = 0;
    let mut seqs = Vec::new();
    for t in tasks {
        let (status, msg) = t.await.expect("task");
        match status {
            201 => created += 1,
            200 => {}
            other => panic!("unexpected status {other}: {msg}"),
        }
        seqs.push(seq(&msg));
    }
    assert_eq!(created, 1, "exactly one send creates the message");
    assert!(seqs.iter().all(|&q| q == 1), "{seqs:?}");
    assert_eq!(history(&s.srv, &s.a, s.room).await.len(), 1);
    s.srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_client_id_from_another_user_is_409_client_id_conflict() {
    let s = setup().await;
    let cid = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
    expect(
        post(
            &s.srv,
            &messages_path(s.room),
            &s.a,
            &json!({ "content": "mine", "clientId": cid }),
        )
        .await,
        201,
    )
    .await;
    let resp = post(
        &s.srv,
        &messages_path(s.room),
        &s.b,
        &json!({ "content": "bobs", "clientId": cid }),
    )
    .await;
    assert_error(resp, 409, "client_id_conflict").await;
    assert_eq!(history(&s.srv, &s.a, s.room).await.len(), 1);

    // Client ids are scoped to a room: the same id in another room is a new message.
    let other = id(&create_room(&s.srv, &s.a, "other", "public").await);
    expect(
        post(
            &s.srv,
            &messages_path(other),
            &s.a,
            &json!({ "content": "elsewhere", "clientId": cid }),
        )
        .await,
        201,
    )
    .await;
    s.srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_client_id_is_400() {
    let s = setup().await;
    for bad in [
        "not-a-uuid",
        "1234",
        "3f2a8c1e-5b7d-4e9a-8c6f-1d2e3f4a5b6", // one digit short
        "3f2a8c1e5b7d-4e9a-8c6f-1d2e3f4a5b6c0", // dashes misplaced
        "zf2a8c1e-5b7d-4e9a-8c6f-1d2e3f4a5b6c", // not hex
        "0123456789abcdef0123456789abcdef0",   // 33 hex digits
        "",
    ] {
        let resp = post(
            &s.srv,
            &messages_path(s.room),
            &s.a,
            &json!({ "content": "x", "clientId": bad }),
        )
        .await;
        let err = assert_error(resp, 400, "invalid_client_id").await;
        if let Some(field) = err.get("field") {
            assert_eq!(field, "clientId", "{bad:?}");
        }
    }
    assert!(history(&s.srv, &s.a, s.room).await.is_empty());
    s.srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_to_existing_seq_and_to_missing_seq() {
    let s = setup().await;
    send_message(&s.srv, &s.a, s.room, "question?").await;
    let reply = expect(
        post(
            &s.srv,
            &messages_path(s.room),
            &s.b,
            &json!({ "content": "answer", "replyTo": 1 }),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(reply["replyTo"], 1);

    let resp = post(
        &s.srv,
        &messages_path(s.room),
        &s.b,
        &json!({ "content": "to nowhere", "replyTo": 999 }),
    )
    .await;
    let status = resp.status().as_u16();
    let err = assert_any_error(resp, &[400, 404]).await;
    let code = err["code"].as_str().unwrap_or_default();
    // Whatever the status, the code must be one API.md documents for it.
    match status {
        400 => assert!(
            code.starts_with("invalid_") && code != "invalid_json",
            "undocumented 400 code {code:?}"
        ),
        _ => assert_eq!(code, "not_found"),
    }
    assert_eq!(history(&s.srv, &s.a, s.room).await.len(), 2);
    s.srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_by_author_sets_edited_at_and_others_get_403() {
    let s = setup().await;
    let sent = send_message(&s.srv, &s.b, s.room, "tpyo").await;
    let path = message_path(s.room, seq(&sent));

    let edited = expect(
        patch(&s.srv, &path, &s.b, &json!({ "content": "typo" })).await,
        200,
    )
    .await;
    assert_message_shape(&edited);
    assert_eq!(edited["content"], "typo");
    assert_eq!(edited["seq"], sent["seq"]);
    assert_eq!(edited["createdAt"], sent["createdAt"]);
    assert_timestamp(&edited["editedAt"]);
    let got = expect(get(&s.srv, &path, &s.a).await, 200).await;
    assert_eq!(got, edited);

    // Not the author: 403, even for the room owner (alice), who may delete but not edit.
    let resp = patch(&s.srv, &path, &s.a, &json!({ "content": "rewritten" })).await;
    assert_error(resp, 403, "forbidden").await;
    let resp = patch(&s.srv, &path, &s.b, &json!({ "content": "" })).await;
    assert_error(resp, 400, "invalid_content").await;
    let resp = patch(
        &s.srv,
        &message_path(s.room, 99),
        &s.b,
        &json!({ "content": "x" }),
    )
    .await;
    assert_error(resp, 404, "not_found").await;
    assert_eq!(
        expect(get(&s.srv, &path, &s.a).await, 200).await["content"],
        "typo"
    );
    s.srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_by_author_leaves_a_tombstone_and_seqs_are_not_reused() {
    let s = setup().await;
    send_message(&s.srv, &s.b, s.room, "one").await;
    let two = send_message(&s.srv, &s.b, s.room, "regrettable").await;
    let path = message_path(s.room, seq(&two));

    let tomb = expect(delete(&s.srv, &path, &s.b).await, 200).await;
    assert_message_shape(&tomb);
    assert_eq!(tomb["seq"], 2);
    assert_eq!(tomb["deleted"], true);
    assert_eq!(tomb["content"], "");
    let got = expect(get(&s.srv, &path, &s.a).await, 200).await;
    assert_eq!(got["deleted"], true);
    assert_eq!(got["content"], "");

    let all = history(&s.srv, &s.a, s.room).await;
    assert_eq!(all.len(), 2, "the tombstone keeps its place: {all:?}");
    assert_eq!(all[1]["seq"], 2);
    assert_eq!(all[1]["deleted"], true);
    let text = serde_json::to_string(&all).expect("json");
    assert!(
        !text.contains("regrettable"),
        "deleted content still served: {text}"
    );

    // The deleted seq was the latest; the next message still gets a new one.
    assert_eq!(seq(&send_message(&s.srv, &s.b, s.room, "three").await), 3);
    s.srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_owner_may_delete_others_messages_plain_members_may_not() {
    let (_dir, srv) = fresh().await;
    register(&srv, "admin", PASSWORD).await;
    let (_, owner) = register(&srv, "owner", PASSWORD).await;
    let (_, b) = register(&srv, "bob", PASSWORD).await;
    let (_, c) = register(&srv, "carol", PASSWORD).await;
    let room = id(&create_room(&srv, &owner, "general", "public").await);
    join(&srv, &b, room).await;
    join(&srv, &c, room).await;
    let m = seq(&send_message(&srv, &b, room, "spam").await);

    let resp = delete(&srv, &message_path(room, m), &c).await;
    assert_error(resp, 403, "forbidden").await;
    let tomb = expect(delete(&srv, &message_path(room, m), &owner).await, 200).await;
    assert_eq!(tomb["deleted"], true);
    assert_eq!(tomb["content"], "");
    srv.stop().await;
}

/// The route table allows "author, room owner/admin, server admin", with no membership
/// requirement for the server admin (as for PATCH of a room).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_admin_may_delete_messages_in_a_room_they_have_not_joined() {
    let (_dir, srv) = fresh().await;
    let (_, admin) = register(&srv, "admin", PASSWORD).await;
    let (_, owner) = register(&srv, "owner", PASSWORD).await;
    let room = id(&create_room(&srv, &owner, "general", "public").await);
    let m = seq(&send_message(&srv, &owner, room, "against the rules").await);
    let tomb = expect(delete(&srv, &message_path(room, m), &admin).await, 200).await;
    assert_eq!(tomb["deleted"], true);
    let got = expect(get(&srv, &message_path(room, m), &owner).await, 200).await;
    assert_eq!(got["deleted"], true);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_of_deleted_message_is_409_message_deleted() {
    let s = setup().await;
    let m = seq(&send_message(&s.srv, &s.a, s.room, "soon gone").await);
    expect(delete(&s.srv, &message_path(s.room, m), &s.a).await, 200).await;
    let resp = patch(
        &s.srv,
        &message_path(s.room, m),
        &s.a,
        &json!({ "content": "back" }),
    )
    .await;
    assert_error(resp, 409, "message_deleted").await;
    let got = expect(get(&s.srv, &message_path(s.room, m), &s.a).await, 200).await;
    assert_eq!(got["content"], "");
    assert_eq!(got["deleted"], true);
    s.srv.stop().await;
}

/// Walk `cursor=` pages (newest first) and `after=` pages (oldest first) over 1,000
/// messages; each must yield every seq exactly once, in order, in 20 pages of 50.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_walks_a_thousand_messages_both_ways() {
    let s = setup().await;
    const N: u64 = 1000;
    const TASKS: u64 = 4;
    let remote = s.srv.remote();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let remote = remote.clone();
            let token = s.a.clone();
            let path = messages_path(s.room);
            tokio::spawn(async move {
                let mut sent = Vec::new();
                for i in 0..N / TASKS {
                    let content = format!("task {t} message {i}");
                    let resp = post(&remote, &path, &token, &json!({ "content": content })).await;
                    let msg = expect(resp, 201).await;
                    sent.push((seq(&msg), content));
                }
                sent
            })
        })
        .collect();
    let mut by_seq = BTreeMap::new();
    for t in tasks {
        for (q, content) in t.await.expect("sender task") {
            assert!(
                by_seq.insert(q, content).is_none(),
                "seq {q} acknowledged twice"
            );
        }
    }
    assert_eq!(
        by_seq.keys().copied().collect::<Vec<_>>(),
        (1..=N).collect::<Vec<_>>()
    );

    // Newest first.
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<u64> = None;
    loop {
        let path = match cursor {
            None => format!("{}?limit=50", messages_path(s.room)),
            Some(c) => format!("{}?cursor={c}&limit=50", messages_path(s.room)),
        };
        let page = expect(get(&s.srv, &path, &s.b).await, 200).await;
        pages += 1;
        let items = page["items"].as_array().expect("items");
        assert_eq!(items.len(), 50, "page {pages}");
        for m in items {
            assert_eq!(
                m["content"].as_str(),
                by_seq.get(&seq(m)).map(String::as_str)
            );
            seen.push(seq(m));
        }
        match page["nextCursor"].as_u64() {
            Some(next) => {
                assert_eq!(
                    Some(next),
                    items.last().map(seq),
                    "nextCursor = smallest seq"
                );
                cursor = Some(next);
            }
            None => {
                assert!(page["nextCursor"].is_null(), "{}", page["nextCursor"]);
                break;
            }
        }
        assert!(pages < 100, "cursor paging does not terminate");
    }
    assert_eq!(pages, 20);
    assert_eq!(seen, (1..=N).rev().collect::<Vec<_>>());

    // Oldest first.
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut after = 0;
    loop {
        let path = format!("{}?after={after}&limit=50", messages_path(s.room));
        let page = expect(get(&s.srv, &path, &s.b).await, 200).await;
        pages += 1;
        let items = page["items"].as_array().expect("items");
        assert_eq!(items.len(), 50, "page {pages}");
        seen.extend(items.iter().map(seq));
        match page["nextCursor"].as_u64() {
            Some(next) => {
                assert_eq!(
                    Some(next),
                    items.last().map(seq),
                    "nextCursor = largest seq"
                );
                after = next;
            }
            None => {
                assert!(page["nextCursor"].is_null(), "{}", page["nextCursor"]);
                break;
            }
        }
        assert!(pages < 100, "after paging does not terminate");
    }
    assert_eq!(pages, 20);
    assert_eq!(seen, (1..=N).collect::<Vec<_>>());

    // Defaults and the maximum.
    let page = expect(get(&s.srv, &messages_path(s.room), &s.b).await, 200).await;
    assert_eq!(
        page["items"].as_array().expect("items").len(),
        50,
        "default limit"
    );
    assert_eq!(page["items"][0]["seq"], N);
    let page = expect(
        get(
            &s.srv,
            &format!("{}?limit=200", messages_path(s.room)),
            &s.b,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(page["items"].as_array().expect("items").len(), 200);
    assert_eq!(page["nextCursor"], N - 199);

    // Bob has read none of alice's 1,000: unread counting stops at 1000.
    assert_eq!(
        my_room(&s.srv, &s.b, s.room).await.expect("listed")["unread"],
        1000
    );
    send_message(&s.srv, &s.a, s.room, "one more").await;
    assert_eq!(
        my_room(&s.srv, &s.b, s.room).await.expect("listed")["unread"],
        1000
    );
    s.srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_edges_cursor_below_one_and_after_latest_are_empty() {
    let s = setup().await;
    for i in 0..3 {
        send_message(&s.srv, &s.a, s.room, &format!("m{i}")).await;
    }
    let page = expect(
        get(&s.srv, &format!("{}?cursor=1", messages_path(s.room)), &s.a).await,
        200,
    )
    .await;
    assert_eq!(page, json!({ "items": [], "nextCursor": null }));
    let page = expect(
        get(&s.srv, &format!("{}?after=3", messages_path(s.room)), &s.a).await,
        200,
    )
    .await;
    assert_eq!(page, json!({ "items": [], "nextCursor": null }));
    let page = expect(
        get(
            &s.srv,
            &format!("{}?after=1&limit=1", messages_path(s.room)),
            &s.a,
        )
        .await,
        200,
    )
    .await;
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.iter().map(seq).collect::<Vec<_>>(), [2]);
    assert_eq!(page["nextCursor"], 2);
    s.srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_over_200_is_400_bad_query() {
    let s = setup().await;
    send_message(&s.srv, &s.a, s.room, "x").await;
    for q in [
        "limit=201",
        "limit=100000",
        "limit=abc",
        "limit=-1",
        "cursor=abc",
        "after=x",
    ] {
        let resp = get(&s.srv, &format!("{}?{q}", messages_path(s.room)), &s.a).await;
        assert_error(resp, 400, "bad_query").await;
    }
    s.srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_and_after_together_is_400() {
    let s = setup().await;
    send_message(&s.srv, &s.a, s.room, "x").await;
    let resp = get(
        &s.srv,
        &format!("{}?cursor=5&after=1", messages_path(s.room)),
        &s.a,
    )
    .await;
    assert_error(resp, 400, "bad_query").await;
    s.srv.stop().await;
}
