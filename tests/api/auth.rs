//! Accounts, sessions, cookies, registration modes, invites, rate limits, profiles.

use parley::config::Registration;
use reqwest::Method;
use serde_json::json;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_account_is_admin_and_second_is_not() {
    let (_dir, srv) = fresh().await;
    let (alice, _) = register(&srv, "alice", PASSWORD).await;
    let (bob, _) = register(&srv, "bob", PASSWORD).await;
    assert_user_shape(&alice);
    assert_user_shape(&bob);
    assert_eq!(alice["username"], "alice");
    assert_eq!(alice["isAdmin"], true, "{alice}");
    assert_eq!(alice["disabled"], false, "{alice}");
    assert_eq!(bob["isAdmin"], false, "{bob}");
    assert_ne!(id(&alice), id(&bob));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_returns_token_and_httponly_samesite_lax_cookie() {
    let (_dir, srv) = fresh().await;
    let resp = post_anon(
        &srv,
        "/api/auth/register",
        &json!({ "username": "alice", "password": PASSWORD, "displayName": "Alice A." }),
    )
    .await;
    let cookie = session_cookie(resp.headers()).expect("register sets parley_session");
    let body = expect(resp, 201).await;
    let token = body["token"].as_str().expect("token");
    assert!(!token.is_empty());
    assert_eq!(body["user"]["displayName"], "Alice A.", "{body}");
    assert!(!cookie.value.is_empty(), "{cookie:?}");
    assert_eq!(cookie.attr("httponly"), Some(None), "{cookie:?}");
    let samesite = cookie.attr("samesite").flatten().unwrap_or_default();
    assert!(samesite.eq_ignore_ascii_case("lax"), "{cookie:?}");
    assert_eq!(cookie.attr("path"), Some(Some("/")), "{cookie:?}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_sets_cookie_too() {
    let (_dir, srv) = fresh().await;
    register(&srv, "alice", PASSWORD).await;
    let resp = login(&srv, "alice", PASSWORD).await;
    let cookie = session_cookie(resp.headers()).expect("login sets parley_session");
    let body = expect(resp, 200).await;
    assert_user_shape(&body["user"]);
    assert!(body["token"].is_string());
    assert_eq!(cookie.attr("httponly"), Some(None), "{cookie:?}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_alone_authenticates_get_me() {
    let (_dir, srv) = fresh().await;
    let resp = post_anon(
        &srv,
        "/api/auth/register",
        &json!({ "username": "alice", "password": PASSWORD }),
    )
    .await;
    let cookie = session_cookie(resp.headers()).expect("cookie");
    expect(resp, 201).await;

    let resp = srv
        .client()
        .get(srv.url("/api/me"))
        .header("cookie", format!("parley_session={}", cookie.value))
        .send()
        .await
        .expect("send");
    let me = expect(resp, 200).await;
    assert_eq!(me["username"], "alice");

    // Without any credential the same request is refused.
    assert_error(get_anon(&srv, "/api/me").await, 401, "unauthenticated").await;
    // And a made-up cookie is not a session.
    let resp = srv
        .client()
        .get(srv.url("/api/me"))
        .header("cookie", "parley_session=not-a-real-session")
        .send()
        .await
        .expect("send");
    assert_error(resp, 401, "unauthenticated").await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_authenticates_get_me() {
    let (_dir, srv) = fresh().await;
    let (user, token) = register(&srv, "alice", PASSWORD).await;
    let me = expect(get(&srv, "/api/me", &token).await, 200).await;
    assert_user_shape(&me);
    assert_eq!(me["id"], user["id"]);
    assert_eq!(me["username"], "alice");
    assert_eq!(me["isAdmin"], true);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session_and_clears_the_cookie() {
    let (_dir, srv) = fresh().await;
    let (_, token) = register(&srv, "alice", PASSWORD).await;
    let (_, other) = login_ok(&srv, "alice", PASSWORD).await;

    let resp = post_empty(&srv, "/api/auth/logout", &token).await;
    let cleared = session_cookie(resp.headers()).expect("logout clears the cookie");
    expect(resp, 204).await;
    let expired = cleared.value.is_empty() || cleared.attr("max-age") == Some(Some("0"));
    assert!(expired, "logout cookie does not clear: {cleared:?}");

    assert_error(get(&srv, "/api/me", &token).await, 401, "unauthenticated").await;
    // Logging out one session leaves the user's other sessions alone.
    expect(get(&srv, "/api/me", &other).await, 200).await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_401_invalid_credentials() {
    let (_dir, srv) = fresh().await;
    register(&srv, "alice", PASSWORD).await;
    let resp = login(&srv, "alice", "not the password").await;
    assert_error(resp, 401, "invalid_credentials").await;
    // An unknown user gets the same answer (no account enumeration).
    let resp = login(&srv, "nobody", "not the password").await;
    assert_error(resp, 401, "invalid_credentials").await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_rate_limit_after_five_failures_refuses_even_the_right_password() {
    let (_dir, srv) = fresh().await;
    register(&srv, "alice", PASSWORD).await;
    register(&srv, "bob", PASSWORD).await;
    // "5 per username": five failures are answered normally...
    for attempt in 1..=5 {
        let resp = login(&srv, "alice", &format!("wrong password {attempt}")).await;
        assert_error(resp, 401, "invalid_credentials").await;
    }
    // ...then the username is locked, correct password or not.
    let resp = login(&srv, "alice", PASSWORD).await;
    assert_error(resp, 429, "rate_limited").await; // also checks Retry-After
    let resp = login(&srv, "alice", "wrong again").await;
    assert_error(resp, 429, "rate_limited").await;
    // The limit is per username: bob is unaffected.
    login_ok(&srv, "bob", PASSWORD).await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_username_ignoring_case_is_409() {
    let (_dir, srv) = fresh().await;
    register(&srv, "alice", PASSWORD).await;
    for name in ["alice", "ALICE", "Alice"] {
        let resp = post_anon(
            &srv,
            "/api/auth/register",
            &json!({ "username": name, "password": PASSWORD }),
        )
        .await;
        let error = assert_error(resp, 409, "username_taken").await;
        assert_eq!(error["field"], "username", "forms show it by the input");
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_info_needs_setup_until_the_first_account() {
    let (_dir, srv) = fresh().await;
    let info = expect(get_anon(&srv, "/api/server").await, 200).await;
    assert_eq!(info["needsSetup"], true, "{info}");
    assert_eq!(info["registration"], "open", "{info}");
    assert!(info["name"].is_string(), "{info}");
    assert!(info["version"].is_string(), "{info}");
    register(&srv, "alice", PASSWORD).await;
    let info = expect(get_anon(&srv, "/api/server").await, 200).await;
    assert_eq!(info["needsSetup"], false, "{info}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_openapi_answer_without_auth() {
    let (_dir, srv) = fresh().await;
    let health = expect(get_anon(&srv, "/healthz").await, 200).await;
    assert_eq!(health["status"], "ok");
    let doc = expect(get_anon(&srv, "/api/openapi.json").await, 200).await;
    let version = doc["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3.1"), "openapi version {version:?}");
    assert!(doc["paths"].is_object(), "no paths in the OpenAPI document");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_closed_refuses_the_second_account_but_not_the_first() {
    let (_dir, srv) = fresh_with(Registration::Closed).await;
    let info = expect(get_anon(&srv, "/api/server").await, 200).await;
    assert_eq!(info["registration"], "closed", "{info}");
    assert_eq!(info["needsSetup"], true, "{info}");
    let (admin, token) = register(&srv, "admin", PASSWORD).await;
    assert_eq!(admin["isAdmin"], true);
    let resp = post_anon(
        &srv,
        "/api/auth/register",
        &json!({ "username": "bob", "password": PASSWORD }),
    )
    .await;
    assert_error(resp, 403, "registration_closed").await;
    // The first account still works.
    expect(get(&srv, "/api/me", &token).await, 200).await;
    login_ok(&srv, "admin", PASSWORD).await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_mode_single_use_invite_registers_once() {
    let (_dir, srv) = fresh_with(Registration::Invite).await;
    let info = expect(get_anon(&srv, "/api/server").await, 200).await;
    assert_eq!(info["registration"], "invite", "{info}");
    let (_, admin) = register(&srv, "admin", PASSWORD).await;

    // Without an invite: refused.
    let resp = post_anon(
        &srv,
        "/api/auth/register",
        &json!({ "username": "nobody", "password": PASSWORD }),
    )
    .await;
    assert_error_in(resp, 403, &["invalid_invite", "registration_closed"]).await;

    let invite = expect(post(&srv, "/api/invites", &admin, &json!({})).await, 201).await;
    let token = invite["token"].as_str().expect("invite token").to_owned();
    assert_eq!(invite["maxUses"], 1, "{invite}");
    assert_timestamp(&invite["expiresAt"]);

    let resp = post_anon(
        &srv,
        "/api/auth/register",
        &json!({ "username": "bob", "password": PASSWORD, "invite": token }),
    )
    .await;
    let bob = expect(resp, 201).await;
    assert_eq!(bob["user"]["isAdmin"], false);

    let resp = post_anon(
        &srv,
        "/api/auth/register",
        &json!({ "username": "carol", "password": PASSWORD, "invite": token }),
    )
    .await;
    assert_error(resp, 403, "invalid_invite").await;

    let resp = post_anon(
        &srv,
        "/api/auth/register",
        &json!({ "username": "dave", "password": PASSWORD, "invite": "made-up-invite" }),
    )
    .await;
    assert_error(resp, 403, "invalid_invite").await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_with_max_uses_two_registers_twice() {
    let (_dir, srv) = fresh_with(Registration::Invite).await;
    let (_, admin) = register(&srv, "admin", PASSWORD).await;
    let invite = expect(
        post(&srv, "/api/invites", &admin, &json!({ "maxUses": 2 })).await,
        201,
    )
    .await;
    assert_eq!(invite["maxUses"], 2, "{invite}");
    let token = invite["token"].as_str().expect("invite token");
    for (name, status) in [("bob", 201), ("carol", 201), ("dave", 403)] {
        let resp = post_anon(
            &srv,
            "/api/auth/register",
            &json!({ "username": name, "password": PASSWORD, "invite": token }),
        )
        .await;
        if status == 201 {
            expect(resp, 201).await;
        } else {
            assert_error(resp, 403, "invalid_invite").await;
        }
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_admin_cannot_create_invites() {
    let (_dir, srv) = fresh().await;
    register(&srv, "admin", PASSWORD).await;
    let (_, bob) = register(&srv, "bob", PASSWORD).await;
    let resp = post(&srv, "/api/invites", &bob, &json!({})).await;
    assert_error(resp, 403, "forbidden").await;
    let resp = post_anon(&srv, "/api/invites", &json!({})).await;
    assert_error(resp, 401, "unauthenticated").await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_me_changes_display_name_and_avatar() {
    let (_dir, srv) = fresh().await;
    let (_, token) = register(&srv, "alice", PASSWORD).await;
    let me = expect(
        patch(
            &srv,
            "/api/me",
            &token,
            &json!({ "displayName": "Alice Liddell" }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(me["displayName"], "Alice Liddell");
    assert_eq!(me["username"], "alice", "username must not change");
    let me = expect(get(&srv, "/api/me", &token).await, 200).await;
    assert_eq!(me["displayName"], "Alice Liddell");

    let me = expect(
        patch(&srv, "/api/me", &token, &json!({ "avatar": "cat.png" })).await,
        200,
    )
    .await;
    assert_eq!(me["avatar"], "cat.png");
    assert_eq!(
        me["displayName"], "Alice Liddell",
        "absent field must not change"
    );
    let me = expect(
        patch(&srv, "/api/me", &token, &json!({ "avatar": null })).await,
        200,
    )
    .await;
    assert!(me["avatar"].is_null(), "{me}");

    for bad in ["", "tab\there", &"x".repeat(65)] {
        let resp = patch(&srv, "/api/me", &token, &json!({ "displayName": bad })).await;
        assert_error(resp, 400, "invalid_display_name").await;
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_password_old_fails_new_works_other_sessions_end() {
    let (_dir, srv) = fresh().await;
    let (_, token) = register(&srv, "alice", PASSWORD).await;
    let (_, other) = login_ok(&srv, "alice", PASSWORD).await;

    let resp = post(
        &srv,
        "/api/me/password",
        &token,
        &json!({ "currentPassword": "not it at all", "newPassword": "brand new password" }),
    )
    .await;
    // API.md lists `invalid_credentials` under 401, but also allows per-field `invalid_*`
    // 400s; either reading is accepted as long as the code says what went wrong.
    let err = assert_any_error(resp, &[400, 401, 403]).await;
    assert_eq!(err["code"], "invalid_credentials", "{err}");

    let resp = post(
        &srv,
        "/api/me/password",
        &token,
        &json!({ "currentPassword": PASSWORD, "newPassword": "brand new password" }),
    )
    .await;
    expect(resp, 204).await;

    assert_error(
        login(&srv, "alice", PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    login_ok(&srv, "alice", "brand new password").await;
    // "every other session of the user is ended"; the one that changed it lives on.
    assert_error(get(&srv, "/api/me", &other).await, 401, "unauthenticated").await;
    expect(get(&srv, "/api/me", &token).await, 200).await;

    let resp = post(
        &srv,
        "/api/me/password",
        &token,
        &json!({ "currentPassword": "brand new password", "newPassword": "short" }),
    )
    .await;
    assert_error(resp, 400, "invalid_password").await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_auth_post_with_foreign_origin_is_403_bad_origin() {
    let (_dir, srv) = fresh().await;
    let resp = post_anon(
        &srv,
        "/api/auth/register",
        &json!({ "username": "alice", "password": PASSWORD }),
    )
    .await;
    let cookie = session_cookie(resp.headers()).expect("cookie");
    let token = expect(resp, 201).await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let cookie_header = format!("parley_session={}", cookie.value);
    let room = |name: &str| json!({ "name": name });

    // Foreign origin with the cookie: refused, and nothing is created.
    let resp = srv
        .client()
        .post(srv.url("/api/rooms"))
        .header("cookie", &cookie_header)
        .header("origin", "https://evil.example")
        .json(&room("evil"))
        .send()
        .await
        .expect("send");
    assert_error(resp, 403, "bad_origin").await;
    let resp = srv
        .client()
        .request(Method::PATCH, srv.url("/api/me"))
        .header("cookie", &cookie_header)
        .header("origin", "http://evil.example")
        .json(&json!({ "displayName": "pwned" }))
        .send()
        .await
        .expect("send");
    assert_error(resp, 403, "bad_origin").await;
    let me = expect(get(&srv, "/api/me", &token).await, 200).await;
    assert_ne!(me["displayName"], "pwned");

    // Same origin with the cookie: allowed.
    let resp = srv
        .client()
        .post(srv.url("/api/rooms"))
        .header("cookie", &cookie_header)
        .header("origin", srv.base_url())
        .json(&room("same-origin"))
        .send()
        .await
        .expect("send");
    expect(resp, 201).await;

    // A Bearer token is not ambient authority: the Origin check does not apply.
    let resp = srv
        .client()
        .post(srv.url("/api/rooms"))
        .header("authorization", bearer(&token))
        .header("origin", "https://evil.example")
        .json(&room("bearer"))
        .send()
        .await
        .expect("send");
    expect(resp, 201).await;

    let names: Vec<_> = my_rooms(&srv, &token)
        .await
        .iter()
        .map(|r| r["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(!names.contains(&"evil".to_owned()), "{names:?}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_search_is_case_insensitive_username_prefix() {
    let (_dir, srv) = fresh().await;
    let (_, token) = register(&srv, "alice", PASSWORD).await;
    register(&srv, "alicia", PASSWORD).await;
    register(&srv, "bob", PASSWORD).await;
    register(&srv, "malik", PASSWORD).await;

    let names = |v: &serde_json::Value| -> Vec<String> {
        let mut n: Vec<String> = v
            .as_array()
            .expect("User[]")
            .iter()
            .map(|u| u["username"].as_str().unwrap_or_default().to_owned())
            .collect();
        n.sort();
        n
    };
    let found = expect(get(&srv, "/api/users?q=ali", &token).await, 200).await;
    for u in found.as_array().expect("User[]") {
        assert_user_shape(u);
    }
    assert_eq!(names(&found), ["alice", "alicia"], "prefix match only");
    let found = expect(get(&srv, "/api/users?q=ALI", &token).await, 200).await;
    assert_eq!(names(&found), ["alice", "alicia"], "case-insensitive");
    let found = expect(get(&srv, "/api/users?q=alic&limit=1", &token).await, 200).await;
    assert_eq!(found.as_array().expect("User[]").len(), 1, "{found}");
    let found = expect(get(&srv, "/api/users?q=zzz", &token).await, 200).await;
    assert_eq!(found, json!([]));
    assert_error(
        get_anon(&srv, "/api/users?q=ali").await,
        401,
        "unauthenticated",
    )
    .await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_user_by_id_and_unknown_id_is_404() {
    let (_dir, srv) = fresh().await;
    let (_, token) = register(&srv, "alice", PASSWORD).await;
    let (bob, _) = register(&srv, "bob", PASSWORD).await;
    let got = expect(
        get(&srv, &format!("/api/users/{}", id(&bob)), &token).await,
        200,
    )
    .await;
    assert_user_shape(&got);
    assert_eq!(got["username"], "bob");
    let resp = get(&srv, "/api/users/987654321", &token).await;
    assert_error(resp, 404, "not_found").await;
    srv.stop().await;
}
