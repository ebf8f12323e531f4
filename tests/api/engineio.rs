//! Engine.IO v4 and Socket.IO v5 at the packet level, over real sockets: the cases the official
//! client never produces (duplicate polls, garbage, unknown sessions, oversize bodies) and the
//! exact shapes of the handshake, heartbeat and probe upgrade.

use std::time::Duration;

use bytes::Bytes;
use fastwebsockets::{Frame, OpCode, Payload, WebSocket};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use parley::config::Config;
use serde_json::Value;

use crate::common::*;

struct SpawnExecutor;

impl<Fut> hyper::rt::Executor<Fut> for SpawnExecutor
where
    Fut: std::future::Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    fn execute(&self, fut: Fut) {
        tokio::spawn(fut);
    }
}

type Ws = WebSocket<TokioIo<hyper::upgrade::Upgraded>>;

/// Opens a raw WebSocket to `/socket.io/?EIO=4&transport=websocket[&sid=…]`.
async fn websocket(srv: &TestServer, sid: Option<&str>) -> Result<Ws, String> {
    let stream = tokio::net::TcpStream::connect(srv.addr)
        .await
        .map_err(|e| e.to_string())?;
    let mut uri = "/socket.io/?EIO=4&transport=websocket".to_owned();
    if let Some(sid) = sid {
        uri.push_str("&sid=");
        uri.push_str(sid);
    }
    let request = hyper::Request::builder()
        .uri(uri)
        .header("Host", srv.addr.to_string())
        .header(hyper::header::UPGRADE, "websocket")
        .header(hyper::header::CONNECTION, "upgrade")
        .header(
            "Sec-WebSocket-Key",
            fastwebsockets::handshake::generate_key(),
        )
        .header("Sec-WebSocket-Version", "13")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let (ws, _) = fastwebsockets::handshake::client(&SpawnExecutor, request, stream)
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// The next text frame (pings from the server are answered automatically by the library;
/// Engine.IO pings `2` are returned like any text).
async fn next_text(ws: &mut Ws) -> Option<String> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.read_frame())
            .await
            .ok()?
            .ok()?;
        match frame.opcode {
            OpCode::Text => return String::from_utf8(frame.payload.to_vec()).ok(),
            OpCode::Close => return None,
            _ => {}
        }
    }
}

async fn send_text(ws: &mut Ws, text: &str) {
    ws.write_frame(Frame::text(Payload::Owned(text.as_bytes().to_vec())))
        .await
        .expect("write frame");
}

fn eio_url(srv: &TestServer, query: &str) -> String {
    srv.url(&format!("/socket.io/?EIO=4&{query}"))
}

/// Polling handshake: returns the sid and the open packet's JSON.
async fn handshake(srv: &TestServer) -> (String, Value) {
    let body = srv
        .client()
        .get(eio_url(srv, "transport=polling"))
        .send()
        .await
        .expect("handshake")
        .text()
        .await
        .expect("body");
    let open: Value =
        serde_json::from_str(body.strip_prefix('0').expect("open packet")).expect("open json");
    (open["sid"].as_str().expect("sid").to_owned(), open)
}

async fn poll(srv: &TestServer, sid: &str) -> (u16, String) {
    let response = srv
        .client()
        .get(eio_url(srv, &format!("transport=polling&sid={sid}")))
        .send()
        .await
        .expect("poll");
    (
        response.status().as_u16(),
        response.text().await.expect("body"),
    )
}

/// A polling GET running in the background (it parks on the server until something is sent).
fn spawn_poll(srv: &TestServer, sid: &str) -> tokio::task::JoinHandle<String> {
    let http = srv.client();
    let url = eio_url(srv, &format!("transport=polling&sid={sid}"));
    tokio::spawn(async move {
        http.get(url)
            .send()
            .await
            .expect("poll")
            .text()
            .await
            .expect("body")
    })
}

async fn post(srv: &TestServer, sid: &str, body: impl Into<reqwest::Body>) -> (u16, String) {
    let response = srv
        .client()
        .post(eio_url(srv, &format!("transport=polling&sid={sid}")))
        .header("content-type", "text/plain;charset=UTF-8")
        .body(body)
        .send()
        .await
        .expect("post");
    (
        response.status().as_u16(),
        response.text().await.expect("body"),
    )
}

async fn fast_heartbeat_server() -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config {
        ping_interval_ms: 200,
        ping_timeout_ms: 200,
        max_payload: 4096,
        ..config_for(dir.path())
    };
    let srv = TestServer::start_with(config).await;
    (dir, srv)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_handshake_has_exactly_the_v4_fields() {
    let (_dir, srv) = fresh().await;
    let (sid, open) = handshake(&srv).await;
    let mut keys: Vec<&str> = open
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "maxPayload",
            "pingInterval",
            "pingTimeout",
            "sid",
            "upgrades"
        ]
    );
    assert_eq!(open["upgrades"], serde_json::json!(["websocket"]));
    assert_eq!(open["pingInterval"], 25_000);
    assert_eq!(open["maxPayload"], 1_000_000);
    assert!(sid.len() >= 16);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_handshakes_and_unknown_sessions_are_400() {
    let (_dir, srv) = fresh().await;
    let http = srv.client();
    for query in [
        "/socket.io/?transport=polling",
        "/socket.io/?EIO=3&transport=polling",
        "/socket.io/?EIO=abc&transport=polling",
        "/socket.io/?EIO=4",
        "/socket.io/?EIO=4&transport=carrier-pigeon",
        "/socket.io/?EIO=4&transport=polling&sid=nope",
        "/socket.io/?EIO=4&transport=websocket",
    ] {
        let status = http.get(srv.url(query)).send().await.expect("get").status();
        assert_eq!(status, 400, "{query}");
    }
    let status = http
        .post(eio_url(&srv, "transport=polling"))
        .body("4x")
        .send()
        .await
        .expect("post")
        .status();
    assert_eq!(status, 400, "POST without sid");
    let status = http
        .put(eio_url(&srv, "transport=polling"))
        .send()
        .await
        .expect("put")
        .status();
    assert_eq!(status, 400, "PUT");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_payload_closes_only_that_session() {
    let (_dir, srv) = fresh().await;
    let (bad, _) = handshake(&srv).await;
    let (good, _) = handshake(&srv).await;
    assert_eq!(post(&srv, &bad, "abc").await.0, 400);
    assert_eq!(poll(&srv, &bad).await.0, 400, "the broken session is gone");
    // The other session is untouched: a Socket.IO CONNECT without credentials still gets its
    // answer.
    assert_eq!(post(&srv, &good, "40").await, (200, "ok".into()));
    let (status, body) = poll(&srv, &good).await;
    assert_eq!(status, 200);
    assert!(body.starts_with("44{"), "{body}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_polls_close_the_session() {
    let (_dir, srv) = fresh().await;
    let (sid, _) = handshake(&srv).await;
    let first = spawn_poll(&srv, &sid);
    // Wait until the first GET is parked on the server before sending the second.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, _) = poll(&srv, &sid).await;
    assert_eq!(status, 400);
    assert_eq!(
        first.await.expect("join"),
        "1",
        "the waiting GET is told the session closed"
    );
    assert_eq!(poll(&srv, &sid).await.0, 400);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_heartbeat_pings_and_times_out() {
    let (_dir, srv) = fast_heartbeat_server().await;
    let (sid, open) = handshake(&srv).await;
    assert_eq!(
        (open["pingInterval"].as_u64(), open["pingTimeout"].as_u64()),
        (Some(200), Some(200))
    );
    for _ in 0..3 {
        assert_eq!(poll(&srv, &sid).await, (200, "2".into()));
        assert_eq!(post(&srv, &sid, "3").await, (200, "ok".into()));
    }
    // No pong this time: the next ping goes unanswered and the session ends.
    assert_eq!(poll(&srv, &sid).await, (200, "2".into()));
    let mut status = 200;
    for _ in 0..50 {
        let (s, body) = poll(&srv, &sid).await;
        status = s;
        if s == 400 {
            break;
        }
        assert_eq!(body, "1", "a session that times out says so");
    }
    assert_eq!(status, 400);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_over_max_payload_is_413() {
    let (_dir, srv) = fast_heartbeat_server().await;
    let (sid, _) = handshake(&srv).await;
    let (status, _) = post(&srv, &sid, format!("4{}", "x".repeat(5000))).await;
    assert_eq!(status, 413);
    assert_eq!(poll(&srv, &sid).await.0, 400);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_connect_refusals_and_success_over_polling() {
    let (_dir, srv) = fresh().await;
    let (_, token) = register(&srv, "alice", PASSWORD).await;
    let (sid, _) = handshake(&srv).await;
    post(&srv, &sid, "40/elsewhere,").await;
    assert_eq!(
        poll(&srv, &sid).await.1,
        r#"44/elsewhere,{"message":"Invalid namespace"}"#
    );
    post(&srv, &sid, r#"40{"token":"wrong"}"#).await;
    let (_, body) = poll(&srv, &sid).await;
    let refusal: Value = serde_json::from_str(
        body.strip_prefix("44")
            .unwrap_or_else(|| panic!("connect error expected, got {body:?}")),
    )
    .unwrap_or_else(|e| panic!("{e}: {body:?}"));
    assert_eq!(refusal["data"]["code"], "unauthenticated");
    post(&srv, &sid, format!(r#"40{{"token":"{token}"}}"#)).await;
    let (_, body) = poll(&srv, &sid).await;
    // The CONNECT answer comes first; the user's own presence may follow in the same poll.
    let first = body.split('\x1e').next().unwrap_or_default();
    let connected: Value = serde_json::from_str(first.strip_prefix("40").expect("connect"))
        .unwrap_or_else(|e| panic!("{e}: {body:?}"));
    assert!(
        connected["sid"].is_string() && connected["pid"].is_string(),
        "{connected}"
    );
    // An event with an ack id gets an ack in the Socket.IO shape.
    post(
        &srv,
        &sid,
        r#"421["message:send",{"roomId":999,"content":"x"}]"#,
    )
    .await;
    let (_, mut body) = poll(&srv, &sid).await;
    if body.starts_with("42[\"presence\"") {
        body = poll(&srv, &sid).await.1;
    }
    assert!(body.starts_with("431[{"), "{body}");
    assert!(
        body.contains(r#""ok":false"#) && body.contains("not_found"),
        "{body}"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_before_connect_and_bad_socketio_packets_close_the_session() {
    let (_dir, srv) = fresh().await;
    for bad in [r#"42["message:send",{}]"#, "4abc", "42{}", r#"42abc["x"]"#] {
        let (sid, _) = handshake(&srv).await;
        post(&srv, &sid, bad).await;
        let (status, body) = poll(&srv, &sid).await;
        assert!(status == 400 || body == "1", "{bad}: {status} {body}");
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_only_session_starts_with_the_open_packet() {
    let (_dir, srv) = fresh().await;
    let mut ws = websocket(&srv, None).await.expect("websocket");
    let open = next_text(&mut ws).await.expect("open packet");
    let open: Value = serde_json::from_str(open.strip_prefix('0').expect("0")).expect("json");
    assert_eq!(open["upgrades"], serde_json::json!([]));
    send_text(&mut ws, "40").await;
    let refusal = next_text(&mut ws).await.expect("connect error");
    assert!(refusal.starts_with("44{"), "{refusal}");
    // Garbage closes the socket.
    send_text(&mut ws, "abc").await;
    let mut closed = false;
    for _ in 0..5 {
        match next_text(&mut ws).await {
            None => {
                closed = true;
                break;
            }
            Some(text) => assert_eq!(text, "1", "only a close packet may come before the end"),
        }
    }
    assert!(closed);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_upgrade_moves_the_session_to_websocket() {
    let (_dir, srv) = fresh().await;
    let (_, token) = register(&srv, "alice", PASSWORD).await;
    let (sid, _) = handshake(&srv).await;
    post(&srv, &sid, format!(r#"40{{"token":"{token}"}}"#)).await;
    assert!(poll(&srv, &sid).await.1.starts_with("40{"));
    let pending = spawn_poll(&srv, &sid);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut ws = websocket(&srv, Some(&sid)).await.expect("upgrade socket");
    send_text(&mut ws, "2probe").await;
    assert_eq!(next_text(&mut ws).await.as_deref(), Some("3probe"));
    assert_eq!(
        pending.await.expect("join"),
        "6",
        "the waiting GET is released with a noop"
    );
    send_text(&mut ws, "5").await;
    // From now on the WebSocket carries the session: an event's ack comes back on it.
    send_text(&mut ws, r#"427["message:send",{"roomId":1,"content":"x"}]"#).await;
    let ack = next_text(&mut ws).await.expect("ack");
    assert!(ack.starts_with("437["), "{ack}");
    assert_eq!(
        poll(&srv, &sid).await.0,
        400,
        "polling is over after the upgrade"
    );
    let mut second = websocket(&srv, Some(&sid))
        .await
        .expect("handshake completes");
    assert_eq!(
        next_text(&mut second).await,
        None,
        "a second socket is closed at once"
    );
    send_text(&mut ws, r#"428["message:send",{"roomId":1,"content":"x"}]"#).await;
    assert!(
        next_text(&mut ws).await.expect("ack").starts_with("438["),
        "the first still works"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_websocket_frame_closes_only_that_socket() {
    let (_dir, srv) = fast_heartbeat_server().await;
    let mut big = websocket(&srv, None).await.expect("ws");
    let mut small = websocket(&srv, None).await.expect("ws");
    next_text(&mut big).await.expect("open");
    next_text(&mut small).await.expect("open");
    send_text(&mut big, &format!("4{}", "x".repeat(10_000))).await;
    let mut closed = false;
    for _ in 0..5 {
        if next_text(&mut big).await.is_none() {
            closed = true;
            break;
        }
    }
    assert!(closed, "the oversized socket is closed");
    // The other socket still answers pings and packets.
    send_text(&mut small, "40").await;
    let mut got = next_text(&mut small).await.expect("reply");
    while got == "2" {
        send_text(&mut small, "3").await;
        got = next_text(&mut small).await.expect("reply");
    }
    assert!(got.starts_with("44"), "{got}");
    srv.stop().await;
}
