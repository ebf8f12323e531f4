//! Every route in the router's own table, hit with hostile input: the server answers each with
//! a JSON error or a success, never a 5xx, never a dropped connection, and stays healthy.

use parley::http::routes::ROUTES;
use reqwest::Method;
use serde_json::Value;

use crate::common::*;

/// Bodies that are wrong in every way a client can be wrong.
fn hostile_bodies() -> Vec<(&'static str, Vec<u8>)> {
    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    vec![
        ("empty", Vec::new()),
        ("not json", b"\xff\xfe garbage \x00".to_vec()),
        ("array", b"[1,2,3]".to_vec()),
        ("null", b"null".to_vec()),
        ("wrong types", br#"{"username":1,"password":[],"content":{},"seq":"x","userId":-1,"name":true,"visibility":"secret","topic":7,"maxUses":1e99}"#.to_vec()),
        ("huge numbers", br#"{"userId":18446744073709551616,"seq":99999999999999999999,"replyTo":1e400,"maxUses":4294967296,"expiresInHours":-5}"#.to_vec()),
        ("max ids", br#"{"userId":18446744073709551615,"seq":18446744073709551615,"content":"x","replyTo":18446744073709551615}"#.to_vec()),
        ("deep nesting", deep.into_bytes()),
        ("unicode", "{\"content\":\"\u{202e}\u{0}\u{fffd}\",\"name\":\"\u{1f600}\",\"username\":\"\u{0}\"}".as_bytes().to_vec()),
    ]
}

fn concrete(path: &str, room: u64, user: u64) -> String {
    path.replace("{roomId}", &room.to_string())
        .replace("{userId}", &user.to_string())
        .replace("{seq}", "1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_survives_hostile_bodies_and_ids() {
    let (_dir, srv) = fresh().await;
    let (alice, mut token) = register(&srv, "alice", PASSWORD).await;
    let room = create_room(&srv, &token, "general", "public").await;
    send_message(&srv, &token, id(&room), "hello").await;
    let http = srv.client();
    let mut checked = 0;
    for route in ROUTES {
        let method = Method::from_bytes(route.method.as_str().as_bytes()).expect("method");
        for (room_id, user_id) in [(id(&room), id(&alice)), (9_007_199_254_740_991, 999_999)] {
            let url = srv.url(&concrete(route.path, room_id, user_id));
            for (what, body) in hostile_bodies() {
                let response = http
                    .request(method.clone(), &url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap_or_else(|e| {
                        panic!("{} {url} ({what}): no response: {e}", route.method)
                    });
                let status = response.status().as_u16();
                assert!(
                    status < 500,
                    "{} {url} ({what}) answered {status}: {:?}",
                    route.method,
                    response.text().await
                );
                if status >= 400 {
                    let body: Value = response.json().await.unwrap_or_else(|e| {
                        panic!(
                            "{} {url} ({what}): error body is not JSON: {e}",
                            route.method
                        )
                    });
                    assert!(
                        body["error"]["code"].is_string() && body["error"]["message"].is_string(),
                        "{} {url} ({what}): {body}",
                        route.method
                    );
                }
                checked += 1;
            }
        }
        // Logout ends the session whatever its body says; sign in again for the next route.
        if get(&srv, "/api/me", &token).await.status() != 200 {
            assert_eq!(
                route.path, "/api/auth/logout",
                "only logout may end the session"
            );
            token = login_ok(&srv, "alice", PASSWORD).await.1;
        }
    }
    assert!(checked >= ROUTES.len() * 2 * 9);
    let health = get_anon(&srv, "/healthz").await;
    assert_eq!(health.status(), 200);
    // The sweep made some valid requests too (leave, delete, send): rejoin and check the room
    // still reads back whole, seqs dense from 1.
    join(&srv, &token, id(&room)).await;
    let seqs: Vec<u64> = history(&srv, &token, id(&room))
        .await
        .iter()
        .map(seq)
        .collect();
    assert!(!seqs.is_empty());
    let mut ascending = seqs.clone();
    ascending.sort_unstable();
    assert_eq!(ascending, (1..=seqs.len() as u64).collect::<Vec<_>>());
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_paths_and_queries_get_json_errors() {
    let (_dir, srv) = fresh().await;
    let (_, token) = register(&srv, "alice", PASSWORD).await;
    let http = srv.client();
    for path in [
        "/api/rooms/1/messages?cursor=-1",
        "/api/rooms/1/messages?limit=99999999999999999999999",
        "/api/rooms/1/messages?cursor=%ZZ",
        "/api/rooms/%00/messages",
        "/api/rooms/1/messages/0",
        "/api/rooms/18446744073709551616/messages",
        "/api/users?q=%F0%9F&limit=0",
        "/api/users?q=&limit=101",
        "/api//rooms",
        "/api/rooms/1/../../healthz",
        "/..%2f..%2fetc/passwd",
    ] {
        let response = http
            .get(srv.url(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = response.status().as_u16();
        assert!((400..500).contains(&status), "{path} answered {status}");
        let body: Value = response.json().await.expect("JSON error");
        assert!(body["error"]["code"].is_string(), "{path}: {body}");
    }
    srv.stop().await;
}
