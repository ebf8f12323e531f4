//! Bad input of every kind gets a clear JSON error, and the server keeps serving.

use reqwest::Method;
use reqwest::header::HeaderValue;
use serde_json::json;

use crate::common::*;

/// A server with one user and one room: `(dir, srv, token, room)`.
async fn setup() -> (tempfile::TempDir, TestServer, String, u64) {
    let (dir, srv) = fresh().await;
    let (_, token) = register(&srv, "alice", PASSWORD).await;
    let room = id(&create_room(&srv, &token, "general", "public").await);
    (dir, srv, token, room)
}

/// A raw POST with an exact body and optional Content-Type.
async fn raw_post(
    srv: &TestServer,
    path: &str,
    token: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    try_raw_post(srv, path, token, content_type, body)
        .await
        .expect("send")
}

/// [`raw_post`] without insisting on a response.
async fn try_raw_post(
    srv: &TestServer,
    path: &str,
    token: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> reqwest::Result<reqwest::Response> {
    let mut req = srv
        .client()
        .post(srv.url(path))
        .header("authorization", bearer(token))
        .body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    req.send().await
}

async fn assert_healthy(srv: &TestServer) {
    let health = expect(get_anon(srv, "/healthz").await, 200).await;
    assert_eq!(health["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_over_64_kib_is_413_and_64_kib_exactly_is_read() {
    let (_dir, srv, token, room) = setup().await;
    let path = format!("/api/rooms/{room}/messages");
    // `{"content":"xxx…"}` is 14 bytes of framing around the content.
    let body_of = |len: usize| format!("{{\"content\":\"{}\"}}", "x".repeat(len - 14));
    let at_limit = body_of(64 * 1024);
    assert_eq!(at_limit.len(), 65536);
    // At the limit the body is read, and the content (far over 8000 chars) is refused.
    let resp = raw_post(&srv, &path, &token, Some("application/json"), at_limit).await;
    assert_error(resp, 400, "invalid_content").await;
    let over = body_of(64 * 1024 + 1);
    let resp = raw_post(&srv, &path, &token, Some("application/json"), over).await;
    assert_error(resp, 413, "payload_too_large").await;
    assert!(history(&srv, &token, room).await.is_empty());
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_400_invalid_json() {
    let (_dir, srv, token, room) = setup().await;
    let path = format!("/api/rooms/{room}/messages");
    for bad in [
        "{",
        "{\"content\": }",
        "not json",
        "{\"content\":\"x\"} trailing",
        "",
    ] {
        let resp = raw_post(&srv, &path, &token, Some("application/json"), bad).await;
        assert_error(resp, 400, "invalid_json").await;
    }
    let resp = raw_post(
        &srv,
        &path,
        &token,
        Some("application/json"),
        vec![0xff, 0xfe, 0x00],
    )
    .await;
    assert_error(resp, 400, "invalid_json").await;
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_field_type_is_400_naming_the_field() {
    let (_dir, srv, token, room) = setup().await;
    let cases = [
        ("/api/rooms".to_owned(), json!({ "name": 5 }), "name"),
        (
            "/api/rooms".to_owned(),
            json!({ "name": "ok", "visibility": "secret" }),
            "visibility",
        ),
        (
            format!("/api/rooms/{room}/messages"),
            json!({ "content": 12 }),
            "content",
        ),
        (
            format!("/api/rooms/{room}/messages"),
            json!({ "content": "x", "replyTo": "one" }),
            "replyTo",
        ),
        (
            format!("/api/rooms/{room}/read"),
            json!({ "seq": "latest" }),
            "seq",
        ),
    ];
    for (path, body, field) in cases {
        let resp = post(&srv, &path, &token, &body).await;
        let err = assert_any_error(resp, &[400]).await;
        let code = err["code"].as_str().unwrap_or_default();
        assert!(
            code.starts_with("invalid_") && code != "invalid_json",
            "{path} {body}: code {code:?}"
        );
        assert_eq!(err["field"], field, "{path} {body}: {err}");
    }
    srv.stop().await;
}

/// A missing required field is "one input field at fault" too, so the error names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_required_field_is_400_naming_the_field() {
    let (_dir, srv, token, room) = setup().await;
    let cases = [
        (format!("/api/rooms/{room}/messages"), json!({}), "content"),
        (
            "/api/rooms".to_owned(),
            json!({ "visibility": "public" }),
            "name",
        ),
        (format!("/api/rooms/{room}/read"), json!({}), "seq"),
    ];
    for (path, body, field) in cases {
        let resp = post(&srv, &path, &token, &body).await;
        let err = assert_any_error(resp, &[400]).await;
        let code = err["code"].as_str().unwrap_or_default();
        assert!(
            code.starts_with("invalid_") && code != "invalid_json",
            "{path} {body}: code {code:?}"
        );
        assert_eq!(err["field"], field, "{path} {body}: {err}");
    }
    srv.stop().await;
}

/// Far over the limit the server answers before reading the body; the client must still
/// receive the 413 (not a connection reset because unread bytes were left in the socket).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_far_over_the_limit_still_gets_a_413_response() {
    let (_dir, srv, token, room) = setup().await;
    let path = format!("/api/rooms/{room}/messages");
    // Whether the client reads the answer before a reset is a race, so try a few times.
    for size in [128 * 1024, 1024 * 1024].repeat(5) {
        let body = format!("{{\"content\":\"{}\"}}", "x".repeat(size));
        let resp = try_raw_post(&srv, &path, &token, Some("application/json"), body)
            .await
            .unwrap_or_else(|e| panic!("{size}-byte body: no response, only {e:?}"));
        assert_error(resp, 413, "payload_too_large").await;
    }
    assert_healthy(&srv).await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_with_body_but_no_json_content_type_is_415() {
    let (_dir, srv, token, room) = setup().await;
    let path = format!("/api/rooms/{room}/messages");
    let body = r#"{"content":"hello"}"#;
    let resp = raw_post(&srv, &path, &token, None, body).await;
    assert_error(resp, 415, "unsupported_media_type").await;
    let resp = raw_post(&srv, &path, &token, Some("text/plain"), body).await;
    assert_error(resp, 415, "unsupported_media_type").await;
    let resp = raw_post(
        &srv,
        &path,
        &token,
        Some("application/x-www-form-urlencoded"),
        body,
    )
    .await;
    assert_error(resp, 415, "unsupported_media_type").await;
    assert!(history(&srv, &token, room).await.is_empty());
    // A charset parameter is still JSON.
    let resp = raw_post(
        &srv,
        &path,
        &token,
        Some("application/json; charset=utf-8"),
        body,
    )
    .await;
    expect(resp, 201).await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_route_is_404_not_found_json() {
    let (_dir, srv, token, _room) = setup().await;
    for path in [
        "/api/nope",
        "/api/rooms/1/nope",
        "/api/rooms/1/messages/1/nope",
    ] {
        assert_error(get(&srv, path, &token).await, 404, "not_found").await;
    }
    assert_error(get_anon(&srv, "/api/nope").await, 404, "not_found").await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_method_on_known_route_is_405() {
    let (_dir, srv, token, room) = setup().await;
    let cases = [
        (Method::PUT, "/api/me".to_owned()),
        (Method::DELETE, "/api/rooms".to_owned()),
        (Method::POST, "/healthz".to_owned()),
        (Method::PUT, format!("/api/rooms/{room}/messages")),
        (Method::GET, "/api/auth/login".to_owned()),
    ];
    for (method, path) in cases {
        let resp = call(&srv, method, &path, Some(&token), None).await;
        assert_error(resp, 405, "method_not_allowed").await;
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_over_8000_chars_is_400_and_8000_is_fine() {
    let (_dir, srv, token, room) = setup().await;
    let path = format!("/api/rooms/{room}/messages");
    let send = |content: String| {
        let body = json!({ "content": content });
        let (srv, path, token) = (&srv, &path, &token);
        async move { post(srv, path, token, &body).await }
    };

    expect(send("x".repeat(8000)).await, 201).await;
    // Characters, not bytes: 8000 two-byte characters are fine.
    expect(send("é".repeat(8000)).await, 201).await;
    // Trailing whitespace is trimmed before counting.
    expect(send(format!("{}   \n", "y".repeat(8000))).await, 201).await;
    let err = assert_error(send("x".repeat(8001)).await, 400, "invalid_content").await;
    if let Some(field) = err.get("field") {
        assert_eq!(field, "content");
    }
    assert_error(send("é".repeat(8001)).await, 400, "invalid_content").await;
    assert_eq!(history(&srv, &token, room).await.len(), 3);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_content_is_400() {
    let (_dir, srv, token, room) = setup().await;
    let resp = post(
        &srv,
        &format!("/api/rooms/{room}/messages"),
        &token,
        &json!({ "content": "" }),
    )
    .await;
    assert_error(resp, 400, "invalid_content").await;
    assert!(history(&srv, &token, room).await.is_empty());
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_usernames_are_400_invalid_username() {
    let (_dir, srv) = fresh().await;
    let long = "a".repeat(33);
    for bad in ["ab", "has space", long.as_str(), "_leading", "émile", ""] {
        let resp = post_anon(
            &srv,
            "/api/auth/register",
            &json!({ "username": bad, "password": PASSWORD }),
        )
        .await;
        let err = assert_error(resp, 400, "invalid_username").await;
        if let Some(field) = err.get("field") {
            assert_eq!(field, "username");
        }
    }
    // The edges of the rule are accepted.
    register(&srv, "abc", PASSWORD).await;
    register(&srv, &"b".repeat(32), PASSWORD).await;
    register(&srv, "9.dot_dash-", PASSWORD).await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_passwords_are_400_invalid_password() {
    let (_dir, srv) = fresh().await;
    for bad in ["short".to_owned(), "x".repeat(1025)] {
        let resp = post_anon(
            &srv,
            "/api/auth/register",
            &json!({ "username": "alice", "password": bad }),
        )
        .await;
        assert_error(resp, 400, "invalid_password").await;
    }
    register(&srv, "alice", "12345678").await; // exactly 8 bytes
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_room_names_and_topics_are_400() {
    let (_dir, srv, token, _room) = setup().await;
    for bad in ["", "line\nbreak", &"r".repeat(81)] {
        let resp = post(&srv, "/api/rooms", &token, &json!({ "name": bad })).await;
        assert_error(resp, 400, "invalid_room_name").await;
    }
    let resp = post(
        &srv,
        "/api/rooms",
        &token,
        &json!({ "name": "ok", "topic": "t".repeat(501) }),
    )
    .await;
    assert_error(resp, 400, "invalid_topic").await;
    create_room(&srv, &token, &"r".repeat(80), "public").await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_numeric_room_id_is_a_json_error() {
    let (_dir, srv, token, _room) = setup().await;
    for path in [
        "/api/rooms/abc",
        "/api/rooms/abc/messages",
        "/api/rooms/1.5",
        "/api/rooms/-1",
        "/api/rooms/99999999999999999999999999",
        "/api/rooms/1/messages/xyz",
    ] {
        let resp = get(&srv, path, &token).await;
        assert_any_error(resp, &[400, 404]).await;
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_authorization_header_is_401() {
    let (_dir, srv, _token, _room) = setup().await;
    let values = [
        HeaderValue::from_static("Bearer garbage"),
        HeaderValue::from_static("Bearer"),
        HeaderValue::from_static("Bearer "),
        HeaderValue::from_static("Basic YWxpY2U6cGFzc3dvcmQ="),
        HeaderValue::from_static("nonsense"),
        HeaderValue::from_bytes(b"Bearer \xff\xfe").expect("obs-text header value"),
    ];
    for value in values {
        let resp = srv
            .client()
            .get(srv.url("/api/me"))
            .header("authorization", value.clone())
            .send()
            .await
            .expect("send");
        assert_error(resp, 401, "unauthenticated").await;
    }
    srv.stop().await;
}

/// Runs the whole catalogue of bad input against one server, then checks it is still
/// healthy and its data intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_still_healthy_after_bad_input() {
    let (_dir, srv, token, room) = setup().await;
    let path = format!("/api/rooms/{room}/messages");
    send_message(&srv, &token, room, "before").await;
    let big = format!("{{\"content\":\"{}\"}}", "x".repeat(100_000));
    let _ = try_raw_post(&srv, &path, &token, Some("application/json"), big).await;
    let _ = try_raw_post(&srv, &path, &token, Some("application/json"), "{{{{").await;
    let _ = try_raw_post(&srv, &path, &token, None, "{}").await;
    let _ = try_raw_post(
        &srv,
        &path,
        &token,
        Some("application/json"),
        vec![0u8; 1000],
    )
    .await;
    let _ = get(&srv, "/api/rooms/abc", &token).await;
    let _ = call(&srv, Method::PUT, "/api/me", Some(&token), None).await;
    assert_healthy(&srv).await;
    send_message(&srv, &token, room, "after").await;
    let all = history(&srv, &token, room).await;
    let contents: Vec<_> = all.iter().map(|m| m["content"].clone()).collect();
    assert_eq!(contents, [json!("before"), json!("after")]);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_credentials_are_401_unauthenticated() {
    let (_dir, srv, _token, room) = setup().await;
    for path in [
        "/api/me".to_owned(),
        "/api/rooms".to_owned(),
        "/api/rooms/public".to_owned(),
        format!("/api/rooms/{room}"),
        format!("/api/rooms/{room}/messages"),
    ] {
        assert_error(get_anon(&srv, &path).await, 401, "unauthenticated").await;
    }
    let resp = post_anon(&srv, "/api/rooms", &json!({ "name": "x" })).await;
    assert_error(resp, 401, "unauthenticated").await;
    srv.stop().await;
}
