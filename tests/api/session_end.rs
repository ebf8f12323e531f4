//! A session that ends ends its sockets too, here for the routes the Node suite
//! (tests/realtime/sessions.test.mjs) cannot take: a session that expires while its socket is
//! open, seen over raw Engine.IO polling.

use std::time::Duration;

use parley::auth::new_token;
use parley::clock::Timestamp;
use parley::ids::UserId;
use parley::store::records::SessionRecord;

use crate::common::*;
use crate::polling_socket::PollingSocket;

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
    let socket = PollingSocket::connect(&srv, Some(&token))
        .await
        .expect("signed in");

    // Within a few seconds of the expiry the socket is told, then disconnected.
    let mut heard: Vec<String> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !heard.iter().any(|p| p == "41") && tokio::time::Instant::now() < deadline {
        let (status, packets) = socket.poll().await;
        assert_eq!(
            status, 200,
            "the socket was closed without being told: {heard:?}"
        );
        heard.extend(packets);
    }
    assert!(
        heard
            .iter()
            .any(|p| p == r#"42["session:ended",{"reason":"expired"}]"#),
        "told why: {heard:?}"
    );
    assert!(
        heard.iter().any(|p| p == "41"),
        "a Socket.IO DISCONNECT: {heard:?}"
    );
    assert_eq!(socket.poll().await.1, ["1"], "then the Engine.IO close");
    // Nothing more is served to it: not history, not anything.
    let sync = r#"421["sync",{"rooms":{"1":0}}]"#.to_owned();
    assert_eq!(socket.post(sync).await, 400, "the session is gone");
    srv.stop().await;
}
