//! The authorization matrix: every REST route and every socket event, called by each kind of
//! caller, with the status (or ack) each must get. The routes come from the router's own table
//! (`parley::http::routes::ROUTES`) and the events from the socket layer's
//! (`parley::realtime::EVENT_NAMES`), so a route or event added without a row here fails the
//! test, and the `match` over `Endpoint` has no wildcard, so it does not even compile.
//!
//! Each cell gets a fresh world (its own users, private room and message, made through the
//! store, so no argon2 hash and no rate limit is spent on setup), and the cells of one route
//! run at once. On any mismatch the whole observed matrix is printed.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::future::join_all;
use parley::app::App;
use parley::auth::new_token;
use parley::clock::Timestamp;
use parley::http::routes::{Endpoint, ROUTES};
use parley::ids::{MessageSeq, RoomId, UserId};
use parley::realtime::EVENT_NAMES;
use parley::store::records::{RoomRole, SessionRecord, Visibility};
use parley::store::{Admission, NewMessage, Store};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::Endpoint as _;
use crate::common::*;
use crate::polling_socket::PollingSocket;

/// Who calls, in the order of the matrix's columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    Anonymous,
    SignedOut,
    Expired,
    Disabled,
    NonMember,
    Member,
    RoomAdmin,
    RoomOwner,
    ServerAdmin,
}

const CALLERS: [Caller; 9] = [
    Caller::Anonymous,
    Caller::SignedOut,
    Caller::Expired,
    Caller::Disabled,
    Caller::NonMember,
    Caller::Member,
    Caller::RoomAdmin,
    Caller::RoomOwner,
    Caller::ServerAdmin,
];

/// One cell: `"200"` for a success status, `"403 not_member"` for an error status and code; for
/// socket events `"ok"`, an ack error code, or `"refused <code>"` for a CONNECT_ERROR.
type Row = [&'static str; 9];

/// A route that needs a live session of an enabled account refuses the first four callers so.
const NO_SESSION: [&str; 4] = [
    "401 unauthenticated",
    "401 unauthenticated",
    "401 unauthenticated",
    "403 account_disabled",
];

fn session_row(rest: [&'static str; 5]) -> Row {
    let mut row = [""; 9];
    row[..4].copy_from_slice(&NO_SESSION);
    row[4..].copy_from_slice(&rest);
    row
}

/// The same result for everyone.
fn everyone(cell: &'static str) -> Row {
    [cell; 9]
}

/// The world of one cell.
struct World {
    room: RoomId,
    message: MessageSeq,
    member: UserId,
    /// A second plain member, the one `RemoveMember` removes.
    other_member: UserId,
    /// Someone in no room, whom `AddMember` adds and `OpenDm` opens.
    stranger: UserId,
    member_name: String,
    token: Option<String>,
    /// A distinct client address per cell, so per-address limits never meet across cells.
    address: IpAddr,
}

static NEXT_WORLD: AtomicU64 = AtomicU64::new(1);

async fn user(store: &Store, name: &str, hash: &str, admin: bool) -> UserId {
    store
        .create_user(
            name.to_owned(),
            name.to_owned(),
            hash.to_owned(),
            Admission::Operator { admin },
        )
        .await
        .expect("create user")
        .0
}

async fn session(store: &Store, user: UserId, lifetime_secs: i64) -> String {
    let (token, hash) = new_token();
    let now = Timestamp::now();
    store
        .create_session(
            hash,
            SessionRecord {
                user,
                created_at: now,
                expires_at: now.plus_seconds(lifetime_secs),
                last_seen: Some(now),
            },
        )
        .await
        .expect("create session");
    token
}

/// A private room with an owner, a room admin, two members and one message by the first
/// member; plus an outsider, a server admin and a disabled user; and `caller`'s token.
async fn world(app: &App, password_hash: &str, caller: Caller) -> World {
    let store = app.chat().store();
    let n = NEXT_WORLD.fetch_add(1, Ordering::Relaxed);
    let name = |role: &str| format!("{role}{n}");
    let owner = user(store, &name("owner"), password_hash, false).await;
    let room_admin = user(store, &name("roomadmin"), password_hash, false).await;
    let member = user(store, &name("member"), password_hash, false).await;
    let other_member = user(store, &name("othermember"), password_hash, false).await;
    let stranger = user(store, &name("stranger"), password_hash, false).await;
    let (room, _) = store
        .create_room(name("room"), Visibility::Private, None, owner)
        .await
        .expect("room");
    store
        .add_member(room, room_admin, RoomRole::Admin)
        .await
        .expect("admin");
    for m in [member, other_member] {
        store
            .add_member(room, m, RoomRole::Member)
            .await
            .expect("member");
    }
    let message = store
        .append_message(NewMessage {
            room,
            sender: member,
            body: "the message".into(),
            client_id: None,
            reply_to: None,
        })
        .await
        .expect("message")
        .seq;
    let token = match caller {
        Caller::Anonymous => None,
        Caller::SignedOut => {
            let (token, hash) = new_token();
            let now = Timestamp::now();
            store
                .create_session(
                    hash,
                    SessionRecord {
                        user: member,
                        created_at: now,
                        expires_at: now.plus_seconds(3600),
                        last_seen: Some(now),
                    },
                )
                .await
                .expect("session");
            store.delete_session(hash).await.expect("sign out");
            Some(token)
        }
        Caller::Expired => Some(session(store, member, -1).await),
        Caller::Disabled => {
            let disabled = user(store, &name("disabled"), password_hash, false).await;
            store.set_disabled(disabled, true).await.expect("disable");
            // A session made after the disable: the account check itself is what refuses.
            Some(session(store, disabled, 3600).await)
        }
        Caller::NonMember => {
            let outsider = user(store, &name("outsider"), password_hash, false).await;
            Some(session(store, outsider, 3600).await)
        }
        Caller::Member => Some(session(store, member, 3600).await),
        Caller::RoomAdmin => Some(session(store, room_admin, 3600).await),
        Caller::RoomOwner => Some(session(store, owner, 3600).await),
        Caller::ServerAdmin => {
            let admin = user(store, &name("serveradmin"), password_hash, true).await;
            Some(session(store, admin, 3600).await)
        }
    };
    World {
        room,
        message,
        member,
        other_member,
        stranger,
        member_name: name("member"),
        token,
        address: IpAddr::V4(Ipv4Addr::new(10, (n >> 16) as u8, (n >> 8) as u8, n as u8)),
    }
}

/// The expected row of a route, and the body it is called with. No wildcard: a new endpoint
/// does not compile until it has a row.
fn route_case(endpoint: Endpoint, w: &World) -> (Row, Option<Value>) {
    use Endpoint::*;
    let not_member = "403 not_member";
    let forbidden = "403 forbidden";
    match endpoint {
        Healthz | OpenApi | ServerInfo => (everyone("200"), None),
        // No metrics token is set, so only loopback clients may scrape, and every cell comes
        // from a (trusted, forwarded) non-loopback address.
        Metrics => (everyone("403 forbidden"), None),
        Register => {
            let n = NEXT_WORLD.fetch_add(1, Ordering::Relaxed);
            let body = json!({"username": format!("newcomer{n}"), "password": PASSWORD});
            (everyone("201"), Some(body))
        }
        Login => (
            everyone("200"),
            Some(json!({"username": w.member_name, "password": PASSWORD})),
        ),
        Logout => (session_row(["204"; 5]), None),
        Me => (session_row(["200"; 5]), None),
        UpdateMe => (
            session_row(["200"; 5]),
            Some(json!({"displayName": "Renamed"})),
        ),
        ChangePassword => (
            session_row(["204"; 5]),
            Some(json!({"currentPassword": PASSWORD, "newPassword": "another good password"})),
        ),
        SearchUsers | GetUser | MyRooms | PublicRooms => (session_row(["200"; 5]), None),
        CreateInvite => (
            session_row([forbidden, forbidden, forbidden, forbidden, "201"]),
            Some(json!({})),
        ),
        CreateRoom => (
            session_row(["201"; 5]),
            Some(json!({"name": "another room"})),
        ),
        OpenDm => (
            session_row(["201"; 5]),
            Some(json!({"userId": w.stranger.0})),
        ),
        GetRoom | Members | History | GetMessage => (
            session_row([not_member, "200", "200", "200", not_member]),
            None,
        ),
        UpdateRoom => (
            session_row([not_member, forbidden, "200", "200", "200"]),
            Some(json!({"topic": "a new topic"})),
        ),
        JoinRoom => (
            session_row([forbidden, "200", "200", "200", forbidden]),
            None,
        ),
        LeaveRoom => (
            session_row([not_member, "204", "204", "204", not_member]),
            None,
        ),
        AddMember => (
            session_row([not_member, forbidden, "201", "201", "201"]),
            Some(json!({"userId": w.stranger.0})),
        ),
        RemoveMember => (
            session_row([not_member, forbidden, "204", "204", "204"]),
            None,
        ),
        SendMessage => (
            session_row([not_member, "201", "201", "201", not_member]),
            Some(json!({"content": "hello"})),
        ),
        // Only the author edits; a server admin outside the room is refused at the door.
        EditMessage => (
            session_row([not_member, "200", forbidden, forbidden, not_member]),
            Some(json!({"content": "edited"})),
        ),
        DeleteMessage => (session_row([not_member, "200", "200", "200", "200"]), None),
        MarkRead => (
            session_row([not_member, "200", "200", "200", not_member]),
            Some(json!({"seq": w.message.0})),
        ),
    }
}

/// The concrete path of a route in world `w`.
fn concrete(path: &str, endpoint: Endpoint, w: &World) -> String {
    let user = match endpoint {
        Endpoint::RemoveMember => w.other_member,
        _ => w.member,
    };
    path.replace("{roomId}", &w.room.0.to_string())
        .replace("{userId}", &user.0.to_string())
        .replace("{seq}", &w.message.0.to_string())
}

async fn observe_route(
    srv: &TestServer,
    w: &World,
    method: &Method,
    path: &str,
    body: Option<Value>,
) -> String {
    let mut request = srv
        .client()
        .request(method.clone(), srv.url(path))
        .header("x-forwarded-for", w.address.to_string());
    if let Some(token) = &w.token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    if status < 400 {
        return status.to_string();
    }
    let body: Value = response.json().await.unwrap_or(Value::Null);
    format!("{status} {}", body["error"]["code"].as_str().unwrap_or("?"))
}

async fn server() -> (tempfile::TempDir, TestServer, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = config_for(dir.path());
    config.trust_proxy = true;
    let srv = TestServer::start_with(config).await;
    // One real registration (the first account, a server admin) gives a real argon2 hash of
    // PASSWORD for every world's users.
    let (root, _) = register(&srv, "root", PASSWORD).await;
    let hash = srv
        .app()
        .chat()
        .store()
        .snapshot()
        .expect("snapshot")
        .user(UserId(id(&root)))
        .expect("read")
        .expect("root")
        .password_hash;
    (dir, srv, hash)
}

fn report(title: &str, rows: &[(String, Row, Vec<String>)]) -> Option<String> {
    let mut out = String::new();
    let mut wrong = 0;
    for (name, expected, observed) in rows {
        for (i, caller) in CALLERS.iter().enumerate() {
            if expected[i] != observed[i] {
                wrong += 1;
                let _ = writeln!(
                    out,
                    "{name} as {caller:?}: expected {:?}, got {:?}",
                    expected[i], observed[i]
                );
            }
        }
    }
    (wrong > 0).then(|| format!("{title}: {wrong} cells differ:\n{out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_by_every_caller() {
    let (_dir, srv, hash) = server().await;
    let mut rows = Vec::new();
    for route in ROUTES {
        let cells = CALLERS.iter().map(|&caller| {
            let (srv, hash) = (&srv, &hash);
            async move {
                let w = world(srv.app(), hash, caller).await;
                let (row, body) = route_case(route.endpoint, &w);
                let path = concrete(route.path, route.endpoint, &w);
                let method = Method::from_bytes(route.method.as_str().as_bytes()).expect("method");
                (row, observe_route(srv, &w, &method, &path, body).await)
            }
        });
        let results = join_all(cells).await;
        let expected = results[0].0;
        let observed = results.into_iter().map(|(_, cell)| cell).collect();
        rows.push((
            format!("{} {}", route.method, route.path),
            expected,
            observed,
        ));
    }
    if let Some(failure) = report("routes", &rows) {
        panic!("{failure}");
    }
    srv.stop().await;
}

/// The expected row of a socket event, and its payload in world `w`.
fn event_case(name: &str, w: &World) -> (Row, Value) {
    let refused: [&str; 4] = [
        "refused unauthenticated",
        "refused unauthenticated",
        "refused unauthenticated",
        "refused account_disabled",
    ];
    let row = |rest: [&'static str; 5]| {
        let mut row = [""; 9];
        row[..4].copy_from_slice(&refused);
        row[4..].copy_from_slice(&rest);
        row
    };
    let room = w.room.0;
    let seq = w.message.0;
    let members_only = row(["not_member", "ok", "ok", "ok", "not_member"]);
    match name {
        "message:send" => (members_only, json!({"roomId": room, "content": "hi"})),
        "message:edit" => (
            row(["not_member", "ok", "forbidden", "forbidden", "not_member"]),
            json!({"roomId": room, "seq": seq, "content": "edited"}),
        ),
        "message:delete" => (
            row(["not_member", "ok", "ok", "ok", "ok"]),
            json!({"roomId": room, "seq": seq}),
        ),
        "room:read" => (members_only, json!({"roomId": room, "seq": seq})),
        "typing:start" | "typing:stop" => (members_only, json!({"roomId": room})),
        "presence:set" => (row(["ok"; 5]), json!({"status": "away"})),
        // `sync` answers per room: the cell is that room's outcome.
        "sync" => (members_only, json!({"rooms": {room.to_string(): 0}})),
        other => panic!("socket event {other:?} is missing from the authorization matrix"),
    }
}

async fn observe_event(srv: &TestServer, w: &World, name: &str, payload: &Value) -> String {
    let mut socket = match PollingSocket::connect(srv, w.token.as_deref()).await {
        Ok(socket) => socket,
        Err(code) => return format!("refused {code}"),
    };
    let ack = socket.emit_ack(1, name, payload).await;
    let ack = if name == "sync" {
        ack["rooms"][w.room.0.to_string()].clone()
    } else {
        ack
    };
    match ack["error"]["code"].as_str() {
        Some(code) => code.to_owned(),
        None if ack["ok"] == true || name == "sync" && ack["items"].is_array() => "ok".into(),
        None => format!("unexpected ack {ack}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_socket_event_by_every_caller() {
    let (_dir, srv, hash) = server().await;
    let mut rows = Vec::new();
    for &name in EVENT_NAMES {
        let cells = CALLERS.iter().map(|&caller| {
            let (srv, hash) = (&srv, &hash);
            async move {
                let w = world(srv.app(), hash, caller).await;
                let (row, payload) = event_case(name, &w);
                (row, observe_event(srv, &w, name, &payload).await)
            }
        });
        let results = join_all(cells).await;
        let expected = results[0].0;
        let observed = results.into_iter().map(|(_, cell)| cell).collect();
        rows.push((name.to_owned(), expected, observed));
    }
    if let Some(failure) = report("socket events", &rows) {
        panic!("{failure}");
    }
    srv.stop().await;
}
