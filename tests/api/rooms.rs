//! Rooms: creation, visibility, membership, permissions, direct messages, unread counts.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;

fn room_ids(rooms: &[Value]) -> Vec<u64> {
    rooms.iter().map(id).collect()
}

fn assert_room_shape(r: &Value) {
    assert!(r["id"].is_u64(), "room.id: {r}");
    assert!(r["name"].is_string(), "room.name: {r}");
    assert!(
        ["group", "direct"].contains(&r["kind"].as_str().unwrap_or_default()),
        "{r}"
    );
    assert!(
        ["public", "private"].contains(&r["visibility"].as_str().unwrap_or_default()),
        "{r}"
    );
    assert!(r["topic"].is_null() || r["topic"].is_string(), "{r}");
    assert_timestamp(&r["createdAt"]);
    assert!(r["lastSeq"].is_u64(), "room.lastSeq: {r}");
    assert!(r["memberCount"].is_u64(), "room.memberCount: {r}");
    assert!(r["joined"].is_boolean(), "room.joined: {r}");
    assert!(r.get("role").is_some(), "room.role missing: {r}");
    assert!(r.get("unread").is_some(), "room.unread missing: {r}");
    assert!(
        r.get("lastReadSeq").is_some(),
        "room.lastReadSeq missing: {r}"
    );
    assert!(
        r.get("lastMessage").is_some(),
        "room.lastMessage missing: {r}"
    );
    assert!(r.get("peer").is_some(), "room.peer missing: {r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_public_and_private_rooms() {
    let (_dir, srv) = fresh().await;
    let (_, a) = register(&srv, "alice", PASSWORD).await;

    let resp = post(
        &srv,
        "/api/rooms",
        &a,
        &json!({ "name": "general", "topic": "anything goes" }),
    )
    .await;
    let public = expect(resp, 201).await;
    assert_room_shape(&public);
    assert_eq!(public["name"], "general");
    assert_eq!(public["kind"], "group");
    assert_eq!(
        public["visibility"], "public",
        "visibility defaults to public"
    );
    assert_eq!(public["topic"], "anything goes");
    assert_eq!(public["lastSeq"], 0);
    assert_eq!(public["memberCount"], 1);
    assert_eq!(public["joined"], true);
    assert_eq!(public["role"], "owner", "creator is owner");
    assert_eq!(public["unread"], 0);
    assert_eq!(public["lastReadSeq"], 0);
    assert!(public["lastMessage"].is_null());
    assert!(public["peer"].is_null());

    let private = create_room(&srv, &a, "secret", "private").await;
    assert_room_shape(&private);
    assert_eq!(private["visibility"], "private");
    assert_eq!(private["role"], "owner");
    assert!(private["topic"].is_null());
    assert_ne!(id(&public), id(&private));

    let got = expect(
        get(&srv, &format!("/api/rooms/{}", id(&private)), &a).await,
        200,
    )
    .await;
    assert_eq!(got["name"], "secret");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_my_rooms_shows_only_mine() {
    let (_dir, srv) = fresh().await;
    let (_, a) = register(&srv, "alice", PASSWORD).await;
    let (_, b) = register(&srv, "bob", PASSWORD).await;
    let r1 = create_room(&srv, &a, "one", "public").await;
    let r2 = create_room(&srv, &a, "two", "private").await;
    let r3 = create_room(&srv, &b, "bobs", "public").await;

    let mut mine = room_ids(&my_rooms(&srv, &a).await);
    mine.sort();
    let mut want = vec![id(&r1), id(&r2)];
    want.sort();
    assert_eq!(mine, want);
    for r in my_rooms(&srv, &a).await {
        assert_room_shape(&r);
        assert_eq!(r["joined"], true);
    }
    assert_eq!(room_ids(&my_rooms(&srv, &b).await), [id(&r3)]);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_rooms_lists_public_not_private_by_name() {
    let (_dir, srv) = fresh().await;
    let (_, a) = register(&srv, "alice", PASSWORD).await;
    let (_, b) = register(&srv, "bob", PASSWORD).await;
    let beta = create_room(&srv, &a, "beta", "public").await;
    create_room(&srv, &a, "hidden", "private").await;
    let alpha = create_room(&srv, &a, "alpha", "public").await;

    let listed = expect(get(&srv, "/api/rooms/public", &b).await, 200).await;
    let listed = listed.as_array().expect("Room[]");
    assert_eq!(
        room_ids(listed),
        [id(&alpha), id(&beta)],
        "public only, by name"
    );
    for r in listed {
        assert_room_shape(r);
        // Bob is not a member: the per-member fields are null.
        assert_eq!(r["joined"], false, "{r}");
        assert!(r["role"].is_null(), "{r}");
        assert!(r["unread"].is_null(), "{r}");
        assert!(r["lastReadSeq"].is_null(), "{r}");
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_public_room() {
    let (_dir, srv) = fresh().await;
    let (_, a) = register(&srv, "alice", PASSWORD).await;
    let (_, b) = register(&srv, "bob", PASSWORD).await;
    let room = create_room(&srv, &a, "general", "public").await;
    let rid = id(&room);

    // A non-member may look at a public room.
    let seen = expect(get(&srv, &format!("/api/rooms/{rid}"), &b).await, 200).await;
    assert_eq!(seen["joined"], false);

    let joined = join(&srv, &b, rid).await;
    assert_room_shape(&joined);
    assert_eq!(joined["joined"], true);
    assert_eq!(joined["role"], "member");
    assert_eq!(joined["memberCount"], 2);
    assert!(room_ids(&my_rooms(&srv, &b).await).contains(&rid));
    send_message(&srv, &b, rid, "hi, I joined").await;

    let resp = post_empty(&srv, "/api/rooms/987654/join", &b).await;
    assert_error(resp, 404, "not_found").await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_private_room_is_403() {
    let (_dir, srv) = fresh().await;
    let (_, a) = register(&srv, "alice", PASSWORD).await;
    let (_, b) = register(&srv, "bob", PASSWORD).await;
    let room = create_room(&srv, &a, "secret", "private").await;
    let resp = post_empty(&srv, &format!("/api/rooms/{}/join", id(&room)), &b).await;
    assert_error_in(resp, 403, &["forbidden", "not_member"]).await;
    assert!(my_rooms(&srv, &b).await.is_empty());
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_member_cannot_read_private_room_or_its_messages() {
    let (_dir, srv) = fresh().await;
    let (_, a) = register(&srv, "alice", PASSWORD).await;
    let (_, b) = register(&srv, "bob", PASSWORD).await;
    let room = create_room(&srv, &a, "secret", "private").await;
    let rid = id(&room);
    let secret = "the launch code is 0000";
    send_message(&srv, &a, rid, secret).await;

    let resp = get(&srv, &format!("/api/rooms/{rid}"), &b).await;
    assert_error_in(resp, 403, &["not_member", "forbidden"]).await;

    for path in [
        format!("/api/rooms/{rid}/messages"),
        format!("/api/rooms/{rid}/messages?after=0"),
        format!("/api/rooms/{rid}/messages/1"),
    ] {
        let resp = get(&srv, &path, &b).await;
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        assert_eq!(status, 403, "{path}: {text}");
        assert!(
            !text.contains("launch code"),
            "{path} leaks content: {text}"
        );
        let body: Value = serde_json::from_str(&text).expect("JSON error body");
        assert_eq!(body["error"]["code"], "not_member", "{path}: {text}");
    }
    let resp = get(&srv, &format!("/api/rooms/{rid}/members"), &b).await;
    assert_error_in(resp, 403, &["not_member", "forbidden"]).await;
    let resp = post(
        &srv,
        &format!("/api/rooms/{rid}/messages"),
        &b,
        &json!({ "content": "let me in" }),
    )
    .await;
    assert_error(resp, 403, "not_member").await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leave_room_removes_membership() {
    let (_dir, srv) = fresh().await;
    let (_, a) = register(&srv, "alice", PASSWORD).await;
    let (_, b) = register(&srv, "bob", PASSWORD).await;
    let rid = id(&create_room(&srv, &a, "general", "public").await);
    join(&srv, &b, rid).await;

    expect(
        post_empty(&srv, &format!("/api/rooms/{rid}/leave"), &b).await,
        204,
    )
    .await;
    assert!(!room_ids(&my_rooms(&srv, &b).await).contains(&rid));
    let room = expect(get(&srv, &format!("/api/rooms/{rid}"), &a).await, 200).await;
    assert_eq!(room["memberCount"], 1, "{room}");
    let resp = get(&srv, &format!("/api/rooms/{rid}/messages"), &b).await;
    assert_error(resp, 403, "not_member").await;
    let resp = post(
        &srv,
        &format!("/api/rooms/{rid}/messages"),
        &b,
        &json!({ "content": "still here?" }),
    )
    .await;
    assert_error(resp, 403, "not_member").await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_list_has_roles() {
    let (_dir, srv) = fresh().await;
    let (alice, a) = register(&srv, "alice", PASSWORD).await;
    let (bob, b) = register(&srv, "bob", PASSWORD).await;
    let rid = id(&create_room(&srv, &a, "general", "public").await);
    join(&srv, &b, rid).await;

    let members = expect(
        get(&srv, &format!("/api/rooms/{rid}/members"), &b).await,
        200,
    )
    .await;
    let members = members.as_array().expect("Member[]");
    assert_eq!(members.len(), 2, "{members:?}");
    let role_of = |uid: u64| -> String {
        let m = members
            .iter()
            .find(|m| m["user"]["id"].as_u64() == Some(uid))
            .unwrap_or_else(|| panic!("user {uid} not in {members:?}"));
        assert_user_shape(&m["user"]);
        assert_timestamp(&m["joinedAt"]);
        assert!(m["lastReadSeq"].is_u64(), "{m}");
        m["role"].as_str().unwrap_or_default().to_owned()
    };
    assert_eq!(role_of(id(&alice)), "owner");
    assert_eq!(role_of(id(&bob)), "member");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_adds_member_to_private_room_who_can_then_see_and_post() {
    let (_dir, srv) = fresh().await;
    let (_, a) = register(&srv, "alice", PASSWORD).await;
    let (bob, b) = register(&srv, "bob", PASSWORD).await;
    let rid = id(&create_room(&srv, &a, "secret", "private").await);

    let member = expect(
        post(
            &srv,
            &format!("/api/rooms/{rid}/members"),
            &a,
            &json!({ "userId": id(&bob) }),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(member["user"]["id"], bob["id"], "{member}");
    assert_eq!(member["role"], "member", "{member}");

    assert!(room_ids(&my_rooms(&srv, &b).await).contains(&rid));
    expect(get(&srv, &format!("/api/rooms/{rid}"), &b).await, 200).await;
    let msg = send_message(&srv, &b, rid, "thanks for the invite").await;
    assert_eq!(msg["senderId"], bob["id"]);

    // Adding again is a conflict.
    let resp = post(
        &srv,
        &format!("/api/rooms/{rid}/members"),
        &a,
        &json!({ "userId": id(&bob) }),
    )
    .await;
    assert_error(resp, 409, "already_member").await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_owner_in_private_room_cannot_add_members() {
    let (_dir, srv) = fresh().await;
    let (_, a) = register(&srv, "alice", PASSWORD).await;
    let (bob, b) = register(&srv, "bob", PASSWORD).await;
    let (carol, c) = register(&srv, "carol", PASSWORD).await;
    let rid = id(&create_room(&srv, &a, "secret", "private").await);
    expect(
        post(
            &srv,
            &format!("/api/rooms/{rid}/members"),
            &a,
            &json!({ "userId": id(&bob) }),
        )
        .await,
        201,
    )
    .await;
    let resp = post(
        &srv,
        &format!("/api/rooms/{rid}/members"),
        &b,
        &json!({ "userId": id(&carol) }),
    )
    .await;
    assert_error(resp, 403, "forbidden").await;
    assert!(my_rooms(&srv, &c).await.is_empty());
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_member_may_add_to_a_public_room() {
    let (_dir, srv) = fresh().await;
    let (_, a) = register(&srv, "alice", PASSWORD).await;
    let (_, b) = register(&srv, "bob", PASSWORD).await;
    let (carol, c) = register(&srv, "carol", PASSWORD).await;
    let rid = id(&create_room(&srv, &a, "general", "public").await);
    join(&srv, &b, rid).await;
    expect(
        post(
            &srv,
            &format!("/api/rooms/{rid}/members"),
            &b,
            &json!({ "userId": id(&carol) }),
        )
        .await,
        201,
    )
    .await;
    assert!(room_ids(&my_rooms(&srv, &c).await).contains(&rid));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_removes_member_and_member_removes_self() {
    let (_dir, srv) = fresh().await;
    let (_, a) = register(&srv, "alice", PASSWORD).await;
    let (bob, b) = register(&srv, "bob", PASSWORD).await;
    let (carol, c) = register(&srv, "carol", PASSWORD).await;
    let rid = id(&create_room(&srv, &a, "secret", "private").await);
    for uid in [id(&bob), id(&carol)] {
        expect(
            post(
                &srv,
                &format!("/api/rooms/{rid}/members"),
                &a,
                &json!({ "userId": uid }),
            )
            .await,
            201,
        )
        .await;
    }
    // A plain member cannot remove someone else.
    let resp = delete(
        &srv,
        &format!("/api/rooms/{rid}/members/{}", id(&carol)),
        &b,
    )
    .await;
    assert_error(resp, 403, "forbidden").await;
    // The owner can.
    let resp = delete(&srv, &format!("/api/rooms/{rid}/members/{}", id(&bob)), &a).await;
    expect(resp, 204).await;
    let resp = get(&srv, &format!("/api/rooms/{rid}/messages"), &b).await;
    assert_error(resp, 403, "not_member").await;
    // Anyone can remove themselves.
    let resp = delete(
        &srv,
        &format!("/api/rooms/{rid}/members/{}", id(&carol)),
        &c,
    )
    .await;
    expect(resp, 204).await;
    assert!(my_rooms(&srv, &c).await.is_empty());
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_and_topic_by_owner_and_server_admin_but_not_plain_member() {
    let (_dir, srv) = fresh().await;
    let (_, admin) = register(&srv, "admin", PASSWORD).await; // first account: server admin
    let (_, owner) = register(&srv, "owner", PASSWORD).await;
    let (_, member) = register(&srv, "member", PASSWORD).await;
    let rid = id(&create_room(&srv, &owner, "general", "public").await);
    join(&srv, &member, rid).await;
    let path = format!("/api/rooms/{rid}");

    let room = expect(
        patch(
            &srv,
            &path,
            &owner,
            &json!({ "name": "lobby", "topic": "say hi" }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(room["name"], "lobby");
    assert_eq!(room["topic"], "say hi");

    let resp = patch(&srv, &path, &member, &json!({ "name": "mine now" })).await;
    assert_error(resp, 403, "forbidden").await;
    let resp = patch(&srv, &path, &member, &json!({ "topic": "mine now" })).await;
    assert_error(resp, 403, "forbidden").await;

    // The server admin is not even a member, and may still moderate.
    let room = expect(
        patch(&srv, &path, &admin, &json!({ "topic": null })).await,
        200,
    )
    .await;
    assert!(room["topic"].is_null(), "topic null clears: {room}");
    assert_eq!(room["name"], "lobby", "absent name unchanged");
    let room = expect(
        patch(&srv, &path, &admin, &json!({ "name": "town square" })).await,
        200,
    )
    .await;
    assert_eq!(room["name"], "town square");

    let room = expect(get(&srv, &path, &member).await, 200).await;
    assert_eq!(room["name"], "town square");
    assert!(room["topic"].is_null());

    let resp = patch(&srv, &path, &owner, &json!({ "name": "" })).await;
    assert_error(resp, 400, "invalid_room_name").await;
    let resp = patch(&srv, &path, &owner, &json!({ "topic": "t".repeat(501) })).await;
    assert_error(resp, 400, "invalid_topic").await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dm_is_created_once_from_either_side() {
    let (_dir, srv) = fresh().await;
    let (alice, a) = register(&srv, "alice", PASSWORD).await;
    let (bob, b) = register(&srv, "bob", PASSWORD).await;

    let first = expect(
        post(&srv, "/api/dm", &a, &json!({ "userId": id(&bob) })).await,
        201,
    )
    .await;
    assert_room_shape(&first);
    assert_eq!(first["kind"], "direct");
    assert_eq!(first["memberCount"], 2);
    let again = expect(
        post(&srv, "/api/dm", &a, &json!({ "userId": id(&bob) })).await,
        200,
    )
    .await;
    assert_eq!(id(&again), id(&first));
    let other_side = expect(
        post(&srv, "/api/dm", &b, &json!({ "userId": id(&alice) })).await,
        200,
    )
    .await;
    assert_eq!(id(&other_side), id(&first));

    // Each side has it exactly once.
    let dms = |rooms: Vec<Value>| rooms.into_iter().filter(|r| r["kind"] == "direct").count();
    assert_eq!(dms(my_rooms(&srv, &a).await), 1);
    assert_eq!(dms(my_rooms(&srv, &b).await), 1);
    // Direct rooms are not public group rooms.
    let public = expect(get(&srv, "/api/rooms/public", &a).await, 200).await;
    assert!(!room_ids(public.as_array().expect("Room[]")).contains(&id(&first)));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dm_name_is_the_peers_display_name_from_each_side() {
    let (_dir, srv) = fresh().await;
    let (alice, a) = register(&srv, "alice", PASSWORD).await;
    let (bob, b) = register(&srv, "bob", PASSWORD).await;
    expect(
        patch(&srv, "/api/me", &a, &json!({ "displayName": "Alice A." })).await,
        200,
    )
    .await;
    expect(
        patch(&srv, "/api/me", &b, &json!({ "displayName": "Bob B." })).await,
        200,
    )
    .await;

    let dm = expect(
        post(&srv, "/api/dm", &a, &json!({ "userId": id(&bob) })).await,
        201,
    )
    .await;
    let rid = id(&dm);
    assert_eq!(dm["name"], "Bob B.", "{dm}");
    assert_eq!(dm["peer"]["id"], bob["id"], "{dm}");

    let from_a = my_room(&srv, &a, rid).await.expect("alice lists the DM");
    assert_eq!(from_a["name"], "Bob B.");
    assert_eq!(from_a["peer"]["id"], bob["id"]);
    let from_b = my_room(&srv, &b, rid).await.expect("bob lists the DM");
    assert_eq!(from_b["name"], "Alice A.");
    assert_eq!(from_b["peer"]["id"], alice["id"]);
    assert_user_shape(&from_b["peer"]);
    let got = expect(get(&srv, &format!("/api/rooms/{rid}"), &b).await, 200).await;
    assert_eq!(got["name"], "Alice A.");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dm_with_yourself_is_400() {
    let (_dir, srv) = fresh().await;
    let (alice, a) = register(&srv, "alice", PASSWORD).await;
    let resp = post(&srv, "/api/dm", &a, &json!({ "userId": id(&alice) })).await;
    assert_any_error(resp, &[400]).await;
    let resp = post(&srv, "/api/dm", &a, &json!({ "userId": 987654321 })).await;
    assert_error(resp, 404, "not_found").await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_a_dm_is_400() {
    let (_dir, srv) = fresh().await;
    let (_, a) = register(&srv, "alice", PASSWORD).await;
    let (bob, _) = register(&srv, "bob", PASSWORD).await;
    let dm = expect(
        post(&srv, "/api/dm", &a, &json!({ "userId": id(&bob) })).await,
        201,
    )
    .await;
    let resp = post_empty(&srv, &format!("/api/rooms/{}/leave", id(&dm)), &a).await;
    assert_any_error(resp, &[400]).await;
    assert!(room_ids(&my_rooms(&srv, &a).await).contains(&id(&dm)));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_counts_others_messages_and_read_clears_it() {
    let (_dir, srv) = fresh().await;
    let (_, a) = register(&srv, "alice", PASSWORD).await;
    let (bob, b) = register(&srv, "bob", PASSWORD).await;
    let rid = id(&create_room(&srv, &a, "general", "public").await);
    join(&srv, &b, rid).await;
    send_message(&srv, &a, rid, "mine does not count").await; // seq 1
    for i in 1..=3 {
        send_message(&srv, &b, rid, &format!("from bob {i}")).await; // seqs 2..=4
    }
    let room = my_room(&srv, &a, rid).await.expect("listed");
    assert_eq!(room["unread"], 3, "{room}");
    assert_eq!(room["lastSeq"], 4, "{room}");
    let last = &room["lastMessage"];
    assert_message_shape(last);
    assert_eq!(last["seq"], 4, "{room}");
    assert_eq!(last["content"], "from bob 3");
    assert_eq!(last["senderId"], bob["id"]);

    let read = expect(
        post(
            &srv,
            &format!("/api/rooms/{rid}/read"),
            &a,
            &json!({ "seq": 4 }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(read, json!({ "roomId": rid, "lastReadSeq": 4 }));
    let room = my_room(&srv, &a, rid).await.expect("listed");
    assert_eq!(room["unread"], 0, "{room}");
    assert_eq!(room["lastReadSeq"], 4, "{room}");

    // Never backwards.
    let read = expect(
        post(
            &srv,
            &format!("/api/rooms/{rid}/read"),
            &a,
            &json!({ "seq": 1 }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(read["lastReadSeq"], 4, "{read}");
    let room = my_room(&srv, &a, rid).await.expect("listed");
    assert_eq!(room["lastReadSeq"], 4, "{room}");
    assert_eq!(room["unread"], 0, "{room}");

    // Partial read: one more from bob, two unread, read up to the first of them.
    send_message(&srv, &b, rid, "five").await;
    send_message(&srv, &b, rid, "six").await;
    assert_eq!(my_room(&srv, &a, rid).await.expect("listed")["unread"], 2);
    expect(
        post(
            &srv,
            &format!("/api/rooms/{rid}/read"),
            &a,
            &json!({ "seq": 5 }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(my_room(&srv, &a, rid).await.expect("listed")["unread"], 1);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_skips_deleted_messages() {
    let (_dir, srv) = fresh().await;
    let (_, a) = register(&srv, "alice", PASSWORD).await;
    let (_, b) = register(&srv, "bob", PASSWORD).await;
    let rid = id(&create_room(&srv, &a, "general", "public").await);
    join(&srv, &b, rid).await;
    send_message(&srv, &b, rid, "one").await;
    let two = send_message(&srv, &b, rid, "two").await;
    expect(
        delete(
            &srv,
            &format!("/api/rooms/{rid}/messages/{}", seq(&two)),
            &b,
        )
        .await,
        200,
    )
    .await;
    let room = my_room(&srv, &a, rid).await.expect("listed");
    assert_eq!(room["unread"], 1, "{room}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_are_listed_most_recent_activity_first() {
    let (_dir, srv) = fresh().await;
    let (_, a) = register(&srv, "alice", PASSWORD).await;
    let r1 = id(&create_room(&srv, &a, "one", "public").await);
    let r2 = id(&create_room(&srv, &a, "two", "public").await);
    let r3 = id(&create_room(&srv, &a, "three", "public").await);
    // Times are stored with millisecond resolution; a short pause keeps each step's
    // timestamp distinct so "most recent" is well defined. (Not waiting for the server.)
    let tick = || tokio::time::sleep(Duration::from_millis(3));
    for (rid, text) in [(r1, "a"), (r2, "b"), (r3, "c"), (r1, "d")] {
        tick().await;
        send_message(&srv, &a, rid, text).await;
    }
    assert_eq!(room_ids(&my_rooms(&srv, &a).await), [r1, r3, r2]);
    tick().await;
    send_message(&srv, &a, r2, "e").await;
    assert_eq!(room_ids(&my_rooms(&srv, &a).await), [r2, r1, r3]);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_member_could_probe_who_is_in_a_private_room_via_remove_member() {
    let (_dir, srv) = fresh().await;
    let (_, alice) = register(&srv, "alice", PASSWORD).await;
    let (bob, _) = register(&srv, "bob", PASSWORD).await;
    let (carol, _) = register(&srv, "carol", PASSWORD).await;
    let (_, eve) = register(&srv, "eve", PASSWORD).await;
    let room = id(&create_room(&srv, &alice, "secret", "private").await);
    let add = post(
        &srv,
        &format!("/api/rooms/{room}/members"),
        &alice,
        &json!({"userId": id(&bob)}),
    )
    .await;
    expect(add, 201).await;
    // A member and a non-member look the same to an outsider: both refused as not a member.
    for target in [id(&bob), id(&carol)] {
        let resp = delete(&srv, &format!("/api/rooms/{room}/members/{target}"), &eve).await;
        assert_error(resp, 403, "not_member").await;
    }
    srv.stop().await;
}
