//! The web client's files (src/http/assets.rs): content types, the HTML security headers,
//! ETag revalidation, gzip, HEAD, and that no request path reaches outside `assets/` or
//! shadows the API. Test builds read `assets/` from disk, like any debug build.

use std::io::Read;

use reqwest::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, ETAG,
    IF_NONE_MATCH, VARY,
};
use reqwest::{Method, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

/// A file big enough to be gzipped (assets/js/realtime.js is about 12 KiB).
const MODULE: &str = "/js/realtime.js";

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

fn on_disk(relative: &str) -> Vec<u8> {
    let path = format!("{}/assets/{relative}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

async fn request(
    srv: &TestServer,
    method: Method,
    path: &str,
    headers: &[(reqwest::header::HeaderName, &str)],
) -> Response {
    let mut req = srv.client().request(method, srv.url(path));
    for (name, value) in headers {
        req = req.header(name, *value);
    }
    req.send().await.expect("send request")
}

fn header(resp: &Response, name: reqwest::header::HeaderName) -> &str {
    resp.headers()
        .get(&name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("{}: no {name} header: {:?}", resp.url(), resp.headers()))
}

/// Status, headers and body of a 200, with the body's length checked against Content-Length.
async fn ok_bytes(resp: Response) -> (reqwest::header::HeaderMap, Vec<u8>) {
    assert_eq!(resp.status(), 200, "{}: {:?}", resp.url(), resp.headers());
    let headers = resp.headers().clone();
    let body = resp.bytes().await.expect("read body").to_vec();
    let length: usize = headers[CONTENT_LENGTH]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("Content-Length is a number");
    assert_eq!(length, body.len());
    (headers, body)
}

/// One request written byte for byte on a fresh connection, so the path reaches the server
/// exactly as written (reqwest would resolve `..` and `%2e%2e` before sending). Returns the
/// status and the body; the server closes the connection (`Connection: close`).
async fn raw_get(srv: &TestServer, target: &str) -> (u16, String) {
    let mut tcp = tokio::net::TcpStream::connect(srv.addr)
        .await
        .expect("connect");
    let request = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("{target}: no header end in {text:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{target}: no status in {head:?}"));
    (status, body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_page_is_html_with_the_security_headers_and_an_etag() {
    let (_dir, srv) = fresh().await;
    let resp = request(&srv, Method::GET, "/", &[]).await;
    assert_eq!(header(&resp, CONTENT_TYPE), "text/html; charset=utf-8");
    assert_eq!(
        header(&resp, "content-security-policy".parse().expect("name")),
        CSP
    );
    assert!(!CSP.contains("unsafe-inline"));
    assert_eq!(
        header(&resp, "referrer-policy".parse().expect("name")),
        "same-origin"
    );
    assert_eq!(
        header(&resp, "x-content-type-options".parse().expect("name")),
        "nosniff"
    );
    assert_eq!(header(&resp, CACHE_CONTROL), "no-cache");
    let etag = header(&resp, ETAG).to_owned();
    assert!(
        etag.len() > 2 && etag.starts_with('"') && etag.ends_with('"'),
        "a strong, quoted tag: {etag}"
    );
    let (_, body) = ok_bytes(resp).await;
    assert_eq!(body, on_disk("index.html"));

    // /index.html is the same file.
    let resp = request(&srv, Method::GET, "/index.html", &[]).await;
    assert_eq!(header(&resp, ETAG), etag);
    assert_eq!(header(&resp, CONTENT_TYPE), "text/html; charset=utf-8");
    assert_eq!(ok_bytes(resp).await.1, body);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_is_javascript_without_the_html_headers() {
    let (_dir, srv) = fresh().await;
    let resp = request(&srv, Method::GET, MODULE, &[]).await;
    assert_eq!(
        header(&resp, CONTENT_TYPE),
        "text/javascript; charset=utf-8"
    );
    assert!(resp.headers().get("content-security-policy").is_none());
    assert!(resp.headers().get(CONTENT_ENCODING).is_none());
    assert_eq!(header(&resp, CACHE_CONTROL), "no-cache");
    assert_eq!(header(&resp, VARY), "Accept-Encoding");
    let (_, body) = ok_bytes(resp).await;
    assert_eq!(body, on_disk("js/realtime.js"));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_none_match_with_the_current_tag_is_304_without_a_body() {
    let (_dir, srv) = fresh().await;
    for path in ["/", MODULE] {
        let first = request(&srv, Method::GET, path, &[]).await;
        let etag = header(&first, ETAG).to_owned();
        ok_bytes(first).await;

        let weak = format!("W/{etag}");
        let listed = format!("\"something-else\", {etag}");
        for held in [etag.as_str(), weak.as_str(), listed.as_str(), "*"] {
            for method in [Method::GET, Method::HEAD] {
                let resp = request(&srv, method.clone(), path, &[(IF_NONE_MATCH, held)]).await;
                assert_eq!(resp.status(), 304, "{method} {path} If-None-Match: {held}");
                assert_eq!(header(&resp, ETAG), etag);
                assert_eq!(header(&resp, CACHE_CONTROL), "no-cache");
                assert!(resp.bytes().await.expect("body").is_empty());
            }
        }

        for stale in ["\"0123\"", "W/\"0123\", \"4567\"", "garbage"] {
            let resp = request(&srv, Method::GET, path, &[(IF_NONE_MATCH, stale)]).await;
            assert_eq!(header(&resp, ETAG), etag);
            let (_, body) = ok_bytes(resp).await;
            assert!(!body.is_empty(), "{path} If-None-Match: {stale}");
        }
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_when_accepted_and_the_same_bytes_once_unzipped() {
    let (_dir, srv) = fresh().await;
    let (plain_headers, plain) = ok_bytes(request(&srv, Method::GET, MODULE, &[]).await).await;
    assert!(plain.len() > 1024, "{MODULE} is over 1 KiB");

    for _ in 0..2 {
        let resp = request(&srv, Method::GET, MODULE, &[(ACCEPT_ENCODING, "gzip, br")]).await;
        assert_eq!(header(&resp, CONTENT_ENCODING), "gzip");
        assert_eq!(header(&resp, VARY), "Accept-Encoding");
        assert_eq!(
            header(&resp, CONTENT_TYPE),
            "text/javascript; charset=utf-8"
        );
        let gzip_etag = header(&resp, ETAG).to_owned();
        assert_ne!(
            gzip_etag, plain_headers[ETAG],
            "each encoding has its own tag"
        );
        let (_, compressed) = ok_bytes(resp).await;
        assert!(compressed.len() < plain.len());
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&compressed[..])
            .read_to_end(&mut unzipped)
            .expect("a valid gzip stream");
        assert_eq!(unzipped, plain);

        // The gzip tag revalidates too.
        let resp = request(
            &srv,
            Method::GET,
            MODULE,
            &[
                (ACCEPT_ENCODING, "gzip"),
                (IF_NONE_MATCH, gzip_etag.as_str()),
            ],
        )
        .await;
        assert_eq!(resp.status(), 304);
    }

    // Refused by q=0, or not offered: the file as it is.
    for refused in ["gzip;q=0", "identity", "br"] {
        let resp = request(&srv, Method::GET, MODULE, &[(ACCEPT_ENCODING, refused)]).await;
        assert!(resp.headers().get(CONTENT_ENCODING).is_none(), "{refused}");
        assert_eq!(ok_bytes(resp).await.1, plain);
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_has_the_headers_of_get_and_no_body() {
    let (_dir, srv) = fresh().await;
    for (path, encoding) in [("/", "identity"), (MODULE, "identity"), (MODULE, "gzip")] {
        let accept = [(ACCEPT_ENCODING, encoding)];
        let (get_headers, _) = ok_bytes(request(&srv, Method::GET, path, &accept).await).await;
        let resp = request(&srv, Method::HEAD, path, &accept).await;
        assert_eq!(resp.status(), 200, "HEAD {path} ({encoding})");
        for name in [CONTENT_LENGTH, CONTENT_TYPE, ETAG, CACHE_CONTROL] {
            assert_eq!(
                resp.headers().get(&name),
                get_headers.get(&name),
                "HEAD {path} ({encoding}): {name}"
            );
        }
        assert_eq!(
            resp.headers().get(CONTENT_ENCODING),
            get_headers.get(CONTENT_ENCODING)
        );
        assert!(resp.bytes().await.expect("body").is_empty());
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_path_escapes_the_assets_folder() {
    let (_dir, srv) = fresh().await;
    for target in [
        "/../Cargo.toml",
        "/%2e%2e/Cargo.toml",
        "/%2E%2E/%2E%2E/Cargo.toml",
        "/js/..%2f..%2fCargo.toml",
        "/js/%2e%2e%2f%2e%2e%2fCargo.toml",
        "/js/../../Cargo.toml",
        "/..%5cCargo.toml",
        "/js/%5c..%5c..%5cCargo.toml",
        "/index.html%00",
        "/index.html%00.js",
        "/.git/config",
        "/./index.html",
        "//etc/passwd",
        "/js/",
        "/js",
        "/%252e%252e/Cargo.toml",
        "/src/main.rs",
        "/nope.js",
    ] {
        let (status, body) = raw_get(&srv, target).await;
        assert_eq!(status, 404, "GET {target}: {body}");
        let error: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("GET {target}: not JSON ({e}): {body}"));
        assert_eq!(error["error"]["code"], "not_found", "GET {target}: {body}");
        assert!(!body.contains("[package]"));
    }
    // A raw backslash is not even a valid request target: refused one way or another.
    let (status, body) = raw_get(&srv, "/..\\Cargo.toml").await;
    assert!(status == 400 || status == 404, "{status}: {body}");
    assert!(!body.contains("[package]"));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_keeps_its_paths_and_its_json_errors() {
    let (_dir, srv) = fresh().await;
    let resp = request(&srv, Method::GET, "/api/nope", &[]).await;
    assert_eq!(header(&resp, CONTENT_TYPE), "application/json");
    assert_error(resp, 404, "not_found").await;
    // Unknown static paths are the same JSON 404.
    assert_error(get_anon(&srv, "/missing.css").await, 404, "not_found").await;
    // API routes answer as before: a wrong method is still the API's 405, not a file.
    let health = expect(get_anon(&srv, "/healthz").await, 200).await;
    assert_eq!(health["status"], "ok");
    let resp = request(&srv, Method::HEAD, "/api/server", &[]).await;
    assert_eq!(resp.status(), 405);
    let info = expect(get_anon(&srv, "/api/server").await, 200).await;
    assert_eq!(info["needsSetup"], true);
    // A file takes GET and HEAD only.
    let resp = request(&srv, Method::POST, "/", &[]).await;
    assert_eq!(header(&resp, "allow".parse().expect("name")), "GET, HEAD");
    assert_error(resp, 405, "method_not_allowed").await;
    srv.stop().await;
}
