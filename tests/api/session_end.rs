//! A session that ends ends its sockets too, here for the routes the Node suite
//! (tests/realtime/sessions.test.mjs) cannot take: a session that expires while its socket is
//! open, seen over raw Engine.IO polling.

use std::time::Duration;

use parley::auth::new_token;
use parley::clock::Timestamp;
use parley::ids::UserId;
use parley::store::records::SessionRecord;

use crate::common::*;

fn eio_url(srv: &TestServer, sid: Option<&str>) -> String {
    match sid {
        Some(sid) => srv.url(&format!("/socket.io/?EIO=4&transport=polling&sid={sid}")),
        None => srv.url("/socket.io/?EIO=4&transport=polling"),
    }
}

async fn poll(srv: &TestServer, sid: &str) -> (u16, String) {
    let response = srv
        .client()
        .get(eio_url(srv, Some(sid)))
        .send()
        .await
        .expect("poll");
    let status = response.status().as_u16();
    (status, response.text().await.expect("poll body"))
}

async fn post(srv: &TestServer, sid: &str, body: String) -> u16 {
    srv.client()
        .post(eio_url(srv, Some(sid)))
        .header("content-type", "text/plain;charset=UTF-8")
        .body(body)
        .send()
        .await
        .expect("post")
        .status()
        .as_u16()
}

/// A polling socket signed in with `token`; returns its Engine.IO sid.
async fn signed_in_socket(srv: &TestServer, token: &str) -> String {
    let open = srv
        .client()
        .get(eio_url(srv, None))
        .send()
        .await
        .expect("handshake")
        .text()
        .await
        .expect("handshake body");
    let open: serde_json::Value =
        serde_json::from_str(open.strip_prefix('0').expect("open packet")).expect("open json");
    let sid = open["sid"].as_str().expect("sid").to_owned();
    assert_eq!(
        post(srv, &sid, format!(r#"40{{"token":"{token}"}}"#)).await,
        200
    );
    let (_, body) = poll(srv, &sid).await;
    assert!(body.starts_with("40{"), "signed in: {body}");
    sid
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_socket_outlives_its_session_expiry() {
    let (_dir, srv) = fresh().await;
    let (alice, _) = register(&srv, "alice", PASSWORD).await;
    // A session that expires two seconds from now, made the way login makes one.
    let (token, hash) = new_token();
    let now = Timestamp::now();
    srv.app()
        .chat()
        .store()
        .create_session(
            hash,
            SessionRecord {
                user: UserId(id(&alice)),
                created_at: now,
                expires_at: now.plus_seconds(2),
                last_seen: Some(now),
            },
        )
        .await
        .expect("create session");
    let sid = signed_in_socket(&srv, &token).await;

    // Within a few seconds of the expiry the socket is told, then disconnected.
    let mut heard = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !heard.contains("\x1e41") && tokio::time::Instant::now() < deadline {
        let (status, body) = poll(&srv, &sid).await;
        assert_eq!(
            status, 200,
            "the socket was closed without being told: {heard}"
        );
        heard.push('\x1e');
        heard.push_str(&body);
    }
    assert!(
        heard.contains(r#"42["session:ended",{"reason":"expired"}]"#),
        "told why: {heard:?}"
    );
    assert!(
        heard.contains("\x1e41"),
        "a Socket.IO DISCONNECT: {heard:?}"
    );
    assert_eq!(poll(&srv, &sid).await.1, "1", "then the Engine.IO close");
    // Nothing more is served to it: not history, not anything.
    let sync = r#"421["sync",{"rooms":{"1":0}}]"#.to_owned();
    assert_eq!(post(&srv, &sid, sync).await, 400, "the session is gone");
    srv.stop().await;
}
