//! The harness every test uses: an in-process server bound to 127.0.0.1:0 (the same
//! `server::run` that `parley serve` calls), and small request and assertion helpers that
//! print the response body whenever a status does not match, so a failure says why.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use parley::app::App;
use parley::config::{Config, Registration};
use parley::server;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER, SET_COOKIE};
use reqwest::{Method, Response};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A password that satisfies the 8–1024 byte rule.
pub const PASSWORD: &str = "correct horse battery";

/// How long a graceful shutdown may take before the test calls it a hang.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(30);

/// Anything the request helpers can talk to: the in-process [`TestServer`] or a [`Remote`]
/// (a `parley serve` child process in the CLI tests).
pub trait Endpoint {
    fn base_url(&self) -> &str;
    fn http(&self) -> &reqwest::Client;
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url(), path)
    }
}

/// A reqwest client that never goes through a proxy (the tests only talk to 127.0.0.1).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("build reqwest client")
}

/// A cheap, cloneable handle on a server's base URL, usable from spawned tasks.
#[derive(Clone)]
pub struct Remote {
    base_url: String,
    http: reqwest::Client,
}

impl Remote {
    pub fn new(addr: SocketAddr) -> Self {
        Remote {
            base_url: format!("http://{addr}"),
            http: http_client(),
        }
    }
}

impl Endpoint for Remote {
    fn base_url(&self) -> &str {
        &self.base_url
    }
    fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

/// `parley::server::run` on 127.0.0.1:0 inside the test's runtime.
pub struct TestServer {
    pub base_url: String,
    pub addr: SocketAddr,
    http: reqwest::Client,
    /// The running server's app, for tests that must reach under the API (the store).
    app: App,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), server::ServerError>>>,
}

/// The configuration the tests use unless they need something else: open registration,
/// everything else at its default, data in `dir`.
pub fn config_for(dir: &Path) -> Config {
    Config {
        data_dir: dir.to_path_buf(),
        registration: Registration::Open,
        ..Config::default()
    }
}

impl TestServer {
    pub async fn start(dir: &Path) -> TestServer {
        TestServer::start_with(config_for(dir)).await
    }

    pub async fn start_with(mut config: Config) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        config.listen = addr;
        let app = App::open(config).unwrap_or_else(|e| panic!("App::open failed: {e}"));
        let (tx, rx) = oneshot::channel::<()>();
        let shutdown = async move {
            // A dropped sender also means "stop".
            let _ = rx.await;
        };
        let task = tokio::spawn(server::run(listener, app.clone(), shutdown));
        TestServer {
            base_url: format!("http://{addr}"),
            addr,
            http: http_client(),
            app,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// The server's reqwest client (cheap to clone; shares the connection pool), for
    /// requests the helpers do not cover.
    pub fn client(&self) -> reqwest::Client {
        self.http.clone()
    }

    pub fn app(&self) -> &App {
        &self.app
    }

    /// A cloneable handle for spawned tasks.
    pub fn remote(&self) -> Remote {
        Remote::new(self.addr)
    }

    /// Graceful shutdown: signal, wait (bounded) for `server::run` to return, and require
    /// that it returned `Ok` — which promises the store is closed.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let task = self.task.take().expect("server task");
        match tokio::time::timeout(SHUTDOWN_DEADLINE, task).await {
            Err(_) => panic!("server did not shut down within {SHUTDOWN_DEADLINE:?}"),
            Ok(Err(join)) => panic!("server task panicked: {join}"),
            Ok(Ok(Err(e))) => panic!("server::run returned an error: {e}"),
            Ok(Ok(Ok(()))) => {}
        }
    }
}

impl Endpoint for TestServer {
    fn base_url(&self) -> &str {
        &self.base_url
    }
    fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // Best effort for tests that end (or panic) without `stop()`.
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A temp data dir and a server on it. Keep the `TempDir` alive as long as the server.
pub async fn fresh() -> (TempDir, TestServer) {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = TestServer::start(dir.path()).await;
    (dir, srv)
}

pub async fn fresh_with(registration: Registration) -> (TempDir, TestServer) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config {
        registration,
        ..config_for(dir.path())
    };
    let srv = TestServer::start_with(config).await;
    (dir, srv)
}

// ---------------------------------------------------------------------------------------
// Requests

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// One request; `token` becomes a Bearer header, `body` is sent as JSON.
pub async fn call(
    srv: &impl Endpoint,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Response {
    let mut req = srv.http().request(method, srv.url(path));
    if let Some(token) = token {
        req = req.header("authorization", bearer(token));
    }
    if let Some(body) = body {
        req = req.json(body);
    }
    req.send().await.expect("send request")
}

pub async fn get(srv: &impl Endpoint, path: &str, token: &str) -> Response {
    call(srv, Method::GET, path, Some(token), None).await
}

pub async fn post(srv: &impl Endpoint, path: &str, token: &str, body: &Value) -> Response {
    call(srv, Method::POST, path, Some(token), Some(body)).await
}

/// A POST with no body at all (join, leave, logout).
pub async fn post_empty(srv: &impl Endpoint, path: &str, token: &str) -> Response {
    call(srv, Method::POST, path, Some(token), None).await
}

pub async fn patch(srv: &impl Endpoint, path: &str, token: &str, body: &Value) -> Response {
    call(srv, Method::PATCH, path, Some(token), Some(body)).await
}

pub async fn delete(srv: &impl Endpoint, path: &str, token: &str) -> Response {
    call(srv, Method::DELETE, path, Some(token), None).await
}

pub async fn post_anon(srv: &impl Endpoint, path: &str, body: &Value) -> Response {
    call(srv, Method::POST, path, None, Some(body)).await
}

pub async fn get_anon(srv: &impl Endpoint, path: &str) -> Response {
    call(srv, Method::GET, path, None, None).await
}

// ---------------------------------------------------------------------------------------
// Assertions

/// Require `status`, then return the body parsed as JSON (`Null` for an empty body).
pub async fn expect(resp: Response, status: u16) -> Value {
    let actual = resp.status().as_u16();
    let url = resp.url().clone();
    let text = resp.text().await.expect("read response body");
    assert_eq!(
        actual, status,
        "{url}: expected status {status}, got {actual}; body: {text}"
    );
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{url}: body is not JSON ({e}): {text}"))
    }
}

/// Require `status` and an error body `{error:{code,message[,field]}}` whose code is
/// `code`; returns the inner `error` object.
pub async fn assert_error(resp: Response, status: u16, code: &str) -> Value {
    assert_error_in(resp, status, &[code]).await
}

/// Like [`assert_error`] for the few places where API.md allows more than one code.
pub async fn assert_error_in(resp: Response, status: u16, codes: &[&str]) -> Value {
    let headers = resp.headers().clone();
    let url = resp.url().clone();
    let body = expect(resp, status).await;
    let err = check_error_shape(&headers, &body, &format!("{url}"));
    let code = err["code"].as_str().unwrap_or_default();
    assert!(
        codes.contains(&code),
        "{url}: expected error code in {codes:?}, got {code:?}; body: {body}"
    );
    if status == 429 {
        assert_retry_after(&headers);
    }
    err
}

/// Require a status in `statuses` and a well-formed error body; returns the `error` object.
pub async fn assert_any_error(resp: Response, statuses: &[u16]) -> Value {
    let headers = resp.headers().clone();
    let url = resp.url().clone();
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("read response body");
    assert!(
        statuses.contains(&status),
        "{url}: expected a status in {statuses:?}, got {status}; body: {text}"
    );
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{url}: error body is not JSON ({e}): {text}"));
    check_error_shape(&headers, &body, url.as_str())
}

fn check_error_shape(headers: &HeaderMap, body: &Value, what: &str) -> Value {
    let ct = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        ct.starts_with("application/json"),
        "{what}: error Content-Type is {ct:?}, want application/json"
    );
    let err = &body["error"];
    assert!(err.is_object(), "{what}: no error object in {body}");
    let code = err["code"].as_str();
    assert!(
        code.is_some_and(|c| !c.is_empty()),
        "{what}: error.code missing: {body}"
    );
    let message = err["message"].as_str();
    assert!(
        message.is_some_and(|m| !m.is_empty()),
        "{what}: error.message missing: {body}"
    );
    if let Some(field) = err.get("field") {
        assert!(
            field.is_string(),
            "{what}: error.field not a string: {body}"
        );
    }
    err.clone()
}

/// 429s carry `Retry-After` in whole seconds; the longest window in API.md is an hour.
pub fn assert_retry_after(headers: &HeaderMap) {
    let value = headers
        .get(RETRY_AFTER)
        .expect("429 without a Retry-After header")
        .to_str()
        .expect("Retry-After is ASCII");
    let secs: u64 = value
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After {value:?} is not a number of seconds"));
    assert!(
        (1..=3600).contains(&secs),
        "Retry-After {secs} out of range"
    );
}

/// `2026-11-23T13:16:35.123Z`: RFC 3339, UTC, milliseconds.
pub fn assert_timestamp(v: &Value) {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("timestamp is not a string: {v}"));
    let b = s.as_bytes();
    let digits = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22];
    let ok = b.len() == 24
        && digits.iter().all(|&i| b[i].is_ascii_digit())
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[23] == b'Z';
    assert!(ok, "timestamp {s:?} is not RFC 3339 UTC with milliseconds");
}

/// Every documented `User` field is there with its type, and nothing secret leaks.
pub fn assert_user_shape(user: &Value) {
    assert!(user["id"].is_u64(), "user.id: {user}");
    assert!(user["username"].is_string(), "user.username: {user}");
    assert!(user["displayName"].is_string(), "user.displayName: {user}");
    assert!(
        user["avatar"].is_null() || user["avatar"].is_string(),
        "user.avatar: {user}"
    );
    let status = user["status"].as_str().unwrap_or_default();
    assert!(
        ["online", "away", "offline"].contains(&status),
        "user.status: {user}"
    );
    assert!(user["isAdmin"].is_boolean(), "user.isAdmin: {user}");
    assert!(user["disabled"].is_boolean(), "user.disabled: {user}");
    let obj = user.as_object().expect("user is an object");
    for key in obj.keys() {
        let k = key.to_ascii_lowercase();
        assert!(
            !k.contains("password") && !k.contains("hash"),
            "user object leaks {key}: {user}"
        );
    }
}

/// Every documented `Message` field is there with its type.
pub fn assert_message_shape(m: &Value) {
    assert!(m["roomId"].is_u64(), "message.roomId: {m}");
    assert!(m["seq"].is_u64(), "message.seq: {m}");
    assert!(m["senderId"].is_u64(), "message.senderId: {m}");
    assert!(m["content"].is_string(), "message.content: {m}");
    assert_timestamp(&m["createdAt"]);
    if !m["editedAt"].is_null() {
        assert_timestamp(&m["editedAt"]);
    }
    assert!(m["deleted"].is_boolean(), "message.deleted: {m}");
    assert!(
        m["replyTo"].is_null() || m["replyTo"].is_u64(),
        "message.replyTo: {m}"
    );
    assert!(m["attachments"].is_array(), "message.attachments: {m}");
    assert!(
        m["clientId"].is_null() || m["clientId"].is_string(),
        "message.clientId: {m}"
    );
}

// ---------------------------------------------------------------------------------------
// Cookies (reqwest has no cookie store here: parse Set-Cookie by hand)

/// One parsed `Set-Cookie` for `parley_session`.
#[derive(Debug)]
pub struct SessionCookie {
    pub value: String,
    /// Attribute names (lowercased) with their values (`None` for flags like HttpOnly).
    pub attrs: Vec<(String, Option<String>)>,
}

impl SessionCookie {
    pub fn attr(&self, name: &str) -> Option<Option<&str>> {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }
}

pub fn session_cookie(headers: &HeaderMap) -> Option<SessionCookie> {
    headers.get_all(SET_COOKIE).iter().find_map(|v| {
        let raw = v.to_str().ok()?;
        let mut parts = raw.split(';').map(str::trim);
        let (name, value) = parts.next()?.split_once('=')?;
        if name.trim() != "parley_session" {
            return None;
        }
        let attrs = parts
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim().to_owned())),
                None => (p.to_ascii_lowercase(), None),
            })
            .collect();
        Some(SessionCookie {
            value: value.trim().trim_matches('"').to_owned(),
            attrs,
        })
    })
}

// ---------------------------------------------------------------------------------------
// Domain helpers

pub fn id(v: &Value) -> u64 {
    v["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no numeric id in {v}"))
}

pub fn seq(v: &Value) -> u64 {
    v["seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("no numeric seq in {v}"))
}

/// Register (201 required); returns `(user, token)`.
pub async fn register(srv: &impl Endpoint, username: &str, password: &str) -> (Value, String) {
    let resp = post_anon(
        srv,
        "/api/auth/register",
        &json!({ "username": username, "password": password }),
    )
    .await;
    let body = expect(resp, 201).await;
    let token = body["token"]
        .as_str()
        .unwrap_or_else(|| panic!("register: no token in {body}"))
        .to_owned();
    (body["user"].clone(), token)
}

pub async fn login(srv: &impl Endpoint, username: &str, password: &str) -> Response {
    post_anon(
        srv,
        "/api/auth/login",
        &json!({ "username": username, "password": password }),
    )
    .await
}

/// Log in (200 required); returns `(user, token)`.
pub async fn login_ok(srv: &impl Endpoint, username: &str, password: &str) -> (Value, String) {
    let body = expect(login(srv, username, password).await, 200).await;
    let token = body["token"]
        .as_str()
        .unwrap_or_else(|| panic!("login: no token in {body}"))
        .to_owned();
    (body["user"].clone(), token)
}

/// `POST /api/rooms` (201 required); returns the Room.
pub async fn create_room(srv: &impl Endpoint, token: &str, name: &str, visibility: &str) -> Value {
    let resp = post(
        srv,
        "/api/rooms",
        token,
        &json!({ "name": name, "visibility": visibility }),
    )
    .await;
    expect(resp, 201).await
}

/// Join a public room (200 required).
pub async fn join(srv: &impl Endpoint, token: &str, room: u64) -> Value {
    expect(
        post_empty(srv, &format!("/api/rooms/{room}/join"), token).await,
        200,
    )
    .await
}

/// `POST /api/rooms/{room}/messages` (201 required); returns the Message.
pub async fn send_message(srv: &impl Endpoint, token: &str, room: u64, content: &str) -> Value {
    let resp = post(
        srv,
        &format!("/api/rooms/{room}/messages"),
        token,
        &json!({ "content": content }),
    )
    .await;
    expect(resp, 201).await
}

/// `GET /api/rooms` (200 required).
pub async fn my_rooms(srv: &impl Endpoint, token: &str) -> Vec<Value> {
    let body = expect(get(srv, "/api/rooms", token).await, 200).await;
    body.as_array()
        .unwrap_or_else(|| panic!("/api/rooms is not an array: {body}"))
        .clone()
}

/// The room with `room_id` in `GET /api/rooms`, if listed.
pub async fn my_room(srv: &impl Endpoint, token: &str, room_id: u64) -> Option<Value> {
    my_rooms(srv, token)
        .await
        .into_iter()
        .find(|r| r["id"].as_u64() == Some(room_id))
}

/// All messages of a room, oldest first, walking `after=` pages.
pub async fn history(srv: &impl Endpoint, token: &str, room: u64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = 0u64;
    loop {
        let page = expect(
            get(
                srv,
                &format!("/api/rooms/{room}/messages?after={after}&limit=200"),
                token,
            )
            .await,
            200,
        )
        .await;
        let items = page["items"].as_array().expect("items").clone();
        out.extend(items);
        match page["nextCursor"].as_u64() {
            Some(next) => {
                assert!(next > after, "after= paging did not advance: {page}");
                after = next;
            }
            None => return out,
        }
    }
}
