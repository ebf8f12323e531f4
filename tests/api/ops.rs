//! Operations: `/metrics`, HTTPS with certificate reload on SIGHUP, and systemd's notify
//! protocol (READY, WATCHDOG, STOPPING) — the last two through the real binary.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parley::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

use crate::cli::Serve;
use crate::common::*;

/// Sends SIGHUP to the server process.
fn hang_up(serve: &Serve) {
    let pid = serve.child.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
}

fn sample(text: &str, line_prefix: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_happened() {
    let (_dir, srv) = fresh().await;
    let (_, token) = register(&srv, "alice", PASSWORD).await;
    let room = create_room(&srv, &token, "general", "public").await;
    for i in 0..5 {
        send_message(&srv, &token, id(&room), &format!("m{i}")).await;
    }
    let response = get_anon(&srv, "/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain")
    );
    let text = response.text().await.expect("body");
    assert_eq!(
        sample(&text, "parley_messages_persisted_total "),
        Some(5),
        "{text}"
    );
    assert_eq!(sample(&text, "parley_rooms "), Some(1));
    assert!(
        sample(&text, "parley_commits_total ").is_some_and(|n| n >= 7),
        "{text}"
    );
    assert!(sample(&text, "parley_commit_batch_size_count ").is_some_and(|n| n >= 7));
    assert!(text.contains("parley_connections{transport=\"websocket\"} 0"));
    assert!(
        text.contains(
            "parley_http_requests_total{route=\"/api/rooms/{roomId}/messages\",status=\"201\"} 5"
        ),
        "{text}"
    );
    assert!(text.contains("# TYPE parley_commit_seconds histogram"));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_token_when_one_is_set() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config {
        metrics_token: Some("a-long-metrics-token".into()),
        ..config_for(dir.path())
    };
    let srv = TestServer::start_with(config).await;
    assert_error(get_anon(&srv, "/metrics").await, 403, "forbidden").await;
    assert_error(
        get(&srv, "/metrics", "wrong-token-wrong-token").await,
        403,
        "forbidden",
    )
    .await;
    assert_eq!(
        get(&srv, "/metrics", "a-long-metrics-token").await.status(),
        200
    );
    srv.stop().await;
}

fn write_certificate(dir: &Path) -> rustls::pki_types::CertificateDer<'static> {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("generate certificate");
    std::fs::write(dir.join("cert.pem"), certified.cert.pem()).expect("write cert");
    std::fs::write(dir.join("key.pem"), certified.signing_key.serialize_pem()).expect("write key");
    certified.cert.der().clone()
}

/// GET /healthz over TLS, trusting only `trusted`. `Err` if the handshake fails.
async fn https_health(
    addr: std::net::SocketAddr,
    trusted: &rustls::pki_types::CertificateDer<'static>,
) -> Result<String, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.clone()).map_err(|e| e.to_string())?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = rustls::pki_types::ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    tls.read_to_string(&mut response)
        .await
        .map_err(|e| e.to_string())?;
    Ok(response)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_and_reloads_the_certificate_on_sighup() {
    let data = tempfile::tempdir().expect("tempdir");
    let certs = tempfile::tempdir().expect("tempdir");
    let first = write_certificate(certs.path());
    let cert = certs.path().join("cert.pem");
    let key = certs.path().join("key.pem");
    let serve = Serve::spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().expect("utf8"),
            "--tls-key",
            key.to_str().expect("utf8"),
        ],
        data.path(),
        &[],
    );
    let response = https_health(serve.addr, &first)
        .await
        .expect("TLS with the first certificate");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    let second = write_certificate(certs.path());
    hang_up(&serve);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if https_health(serve.addr, &second).await.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served:\n{}",
            serve.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        https_health(serve.addr, &first).await.is_err(),
        "the old certificate is gone"
    );
    assert!(serve.terminate().success());
}

#[test]
fn https_with_a_bad_certificate_fails_to_start_with_a_clear_error() {
    let data = tempfile::tempdir().expect("tempdir");
    let certs = tempfile::tempdir().expect("tempdir");
    std::fs::write(certs.path().join("cert.pem"), "not a certificate").expect("write");
    std::fs::write(certs.path().join("key.pem"), "not a key").expect("write");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_parley"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .arg("--tls-cert")
        .arg(certs.path().join("cert.pem"))
        .arg("--tls-key")
        .arg(certs.path().join("key.pem"))
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cert.pem"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_hears_ready_watchdog_and_stopping() {
    let data = tempfile::tempdir().expect("tempdir");
    let socket_dir = tempfile::tempdir().expect("tempdir");
    let socket_path = socket_dir.path().join("notify");
    let socket = UnixDatagram::bind(&socket_path).expect("bind notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let serve = Serve::spawn(
        &["--listen", "127.0.0.1:0"],
        data.path(),
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().expect("utf8")),
            ("WATCHDOG_USEC", "200000"),
        ],
    );
    let mut heard = Vec::new();
    let mut buffer = [0u8; 256];
    while !(heard.iter().any(|m| m == "READY=1") && heard.iter().any(|m| m == "WATCHDOG=1")) {
        let n = socket
            .recv(&mut buffer)
            .expect("a notification within 10 s");
        heard.push(String::from_utf8_lossy(&buffer[..n]).into_owned());
    }
    assert_eq!(
        heard.first().map(String::as_str),
        Some("READY=1"),
        "{heard:?}"
    );
    assert!(serve.terminate().success());
    loop {
        let n = socket.recv(&mut buffer).expect("STOPPING=1 within 10 s");
        if &buffer[..n] == b"STOPPING=1" {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_behind_a_trusted_proxy_judge_the_forwarded_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config {
        trust_proxy: true,
        ..config_for(dir.path())
    };
    let srv = TestServer::start_with(config).await;
    let http = srv.client();
    let from = |address: &'static str| {
        http.get(srv.url("/metrics"))
            .header("x-forwarded-for", address)
            .send()
    };
    assert_eq!(from("203.0.113.7").await.expect("get").status(), 403);
    assert_eq!(from("127.0.0.1").await.expect("get").status(), 200);
    srv.stop().await;
}

#[test]
fn sighup_without_tls_does_not_stop_the_server() {
    let data = tempfile::tempdir().expect("tempdir");
    let serve = Serve::spawn(&["--listen", "127.0.0.1:0"], data.path(), &[]);
    hang_up(&serve);
    // Still serving afterwards (and the log says why nothing happened).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !serve.output().contains("nothing to reload") {
        assert!(
            Instant::now() < deadline,
            "no reload log line:\n{}",
            serve.output()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let health = std::net::TcpStream::connect(serve.addr).and_then(|mut tcp| {
        use std::io::{Read, Write};
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
        let mut response = String::new();
        tcp.read_to_string(&mut response)?;
        Ok(response)
    });
    assert!(health.expect("still answering").starts_with("HTTP/1.1 200"));
    assert!(serve.terminate().success());
}
