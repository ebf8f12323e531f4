//! The real `parley` binary: `serve` (address logging, SIGTERM), `user`, `backup`, `export`,
//! and config layering. Commands that touch the store also run while a server holds it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;

/// Generous bounds: the machine is small and the tests run in parallel.
const START_DEADLINE: Duration = Duration::from_secs(60);
const EXIT_DEADLINE: Duration = Duration::from_secs(30);

/// The binary with a clean `PARLEY_*` environment and no colours.
fn parley() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_parley"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PARLEY_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("NO_COLOR", "1").env_remove("RUST_LOG");
    cmd
}

/// Runs a command to completion with `stdin` fed in; returns the output.
fn run(mut cmd: Command, stdin: &str) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn parley");
    {
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("wait for parley")
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn assert_success(out: &Output, what: &str) {
    assert!(out.status.success(), "{what} failed: {}", describe(out));
}

/// `parley user add NAME --password-stdin --data-dir DIR`, password (plus the newline
/// `echo` would add) on stdin.
fn user_add(dir: &Path, name: &str, password: &str) -> Output {
    let mut cmd = parley();
    cmd.args(["user", "add", name, "--password-stdin", "--data-dir"])
        .arg(dir);
    run(cmd, &format!("{password}\n"))
}

fn user_cmd(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = parley();
    cmd.arg("user").args(args).arg("--data-dir").arg(dir);
    run(cmd, "")
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ params final-byte
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The address in a `listening on <addr>` log line, text or JSON format.
fn listen_addr(line: &str) -> Option<SocketAddr> {
    let line = strip_ansi(line);
    if let Ok(v) = serde_json::from_str::<Value>(&line) {
        for addr in [&v["fields"]["addr"], &v["addr"]] {
            if let Some(addr) = addr.as_str().and_then(|s| s.parse().ok()) {
                return Some(addr);
            }
        }
    }
    let at = line.find("listening on ")? + "listening on ".len();
    let token: String = line[at..]
        .chars()
        .take_while(|c| !c.is_whitespace() && !matches!(c, '"' | ',' | '}'))
        .collect();
    token.parse().ok()
}

/// A `parley serve` child process. Killed on drop if still running.
pub(crate) struct Serve {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Serve {
    /// `parley serve ARGS` with extra environment; waits (bounded) for the address log line.
    pub(crate) fn spawn(args: &[&str], dir: &Path, envs: &[(&str, &str)]) -> Serve {
        let mut cmd = parley();
        cmd.arg("serve")
            .args(args)
            .arg("--data-dir")
            .arg(dir)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn parley serve");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let pump = |stream: Box<dyn std::io::Read + Send>| {
            let tx = tx.clone();
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    log.lock().expect("log lock").push(line.clone());
                    let _ = tx.send(line);
                }
            });
        };
        pump(Box::new(stdout));
        pump(Box::new(stderr));
        drop(tx);

        let deadline = Instant::now() + START_DEADLINE;
        let mut serve = Serve {
            child,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            log,
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = listen_addr(&line) {
                        serve.addr = addr;
                        return serve;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!(
                        "no `listening on` line within {START_DEADLINE:?}:\n{}",
                        serve.output()
                    )
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = serve.child.wait().ok();
                    panic!(
                        "parley serve exited ({status:?}) before listening:\n{}",
                        serve.output()
                    )
                }
            }
        }
    }

    fn remote(&self) -> Remote {
        Remote::new(self.addr)
    }

    pub(crate) fn output(&self) -> String {
        self.log.lock().expect("log lock").join("\n")
    }

    /// SIGTERM, then wait (bounded) for the exit status.
    pub(crate) fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + EXIT_DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "parley serve still running {EXIT_DEADLINE:?} after SIGTERM:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn terminate_cleanly(self) {
        let log = Arc::clone(&self.log);
        let status = self.terminate();
        assert!(
            status.success(),
            "parley serve exited with {status:?} after SIGTERM:\n{}",
            log.lock().expect("log lock").join("\n")
        );
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn serve_local(dir: &Path) -> Serve {
    Serve::spawn(&["--listen", "127.0.0.1:0"], dir, &[])
}

/// Polls `cond` until it holds, failing after `deadline`.
async fn eventually(what: &str, deadline: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn help_lists_the_subcommands() {
    let mut cmd = parley();
    cmd.arg("--help");
    let out = run(cmd, "");
    assert_success(&out, "parley --help");
    let text = String::from_utf8_lossy(&out.stdout);
    for sub in ["serve", "user", "backup", "export"] {
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().next() == Some(sub)),
            "`parley --help` does not list `{sub}`:\n{text}"
        );
    }
    let mut cmd = parley();
    cmd.args(["user", "--help"]);
    let out = run(cmd, "");
    assert_success(&out, "parley user --help");
    let text = String::from_utf8_lossy(&out.stdout);
    for sub in ["add", "list", "disable"] {
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().next() == Some(sub)),
            "`parley user --help` does not list `{sub}`:\n{text}"
        );
    }
}

#[test]
fn listen_addr_parses_text_and_json_log_lines() {
    // Guards the parser the other CLI tests depend on.
    let text = "2026-11-23T13:16:35.123Z  INFO parley::server: listening on 127.0.0.1:4242 addr=127.0.0.1:4242";
    assert_eq!(
        listen_addr(text),
        Some(SocketAddr::from(([127, 0, 0, 1], 4242)))
    );
    let ansi =
        "\u{1b}[32m INFO\u{1b}[0m listening on 127.0.0.1:80 \u{1b}[3maddr\u{1b}[0m=127.0.0.1:80";
    assert_eq!(
        listen_addr(ansi),
        Some(SocketAddr::from(([127, 0, 0, 1], 80)))
    );
    let json = r#"{"timestamp":"x","level":"INFO","fields":{"message":"listening on 127.0.0.2:99","addr":"127.0.0.2:99"}}"#;
    assert_eq!(
        listen_addr(json),
        Some(SocketAddr::from(([127, 0, 0, 2], 99)))
    );
    assert_eq!(listen_addr("starting up"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_logs_its_address_answers_healthz_and_exits_zero_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let serve = serve_local(dir.path());
    assert_eq!(serve.addr.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_ne!(
        serve.addr.port(),
        0,
        "logged the requested port, not the bound one"
    );
    let remote = serve.remote();
    let health = expect(get_anon(&remote, "/healthz").await, 200).await;
    assert_eq!(health["status"], "ok");
    let (_, token) = register(&remote, "alice", PASSWORD).await;
    let room = id(&create_room(&remote, &token, "general", "public").await);
    send_message(&remote, &token, room, "before sigterm").await;
    serve.terminate_cleanly();

    // What was acknowledged before SIGTERM is there on the next start.
    let serve = serve_local(dir.path());
    let remote = serve.remote();
    let (_, token) = login_ok(&remote, "alice", PASSWORD).await;
    let all = history(&remote, &token, room).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["content"], "before sigterm");
    serve.terminate_cleanly();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_format_json_carries_the_addr_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let serve = Serve::spawn(
        &["--listen", "127.0.0.1:0", "--log-format", "json"],
        dir.path(),
        &[],
    );
    let line = serve
        .output()
        .lines()
        .find(|l| l.contains("listening on"))
        .expect("listening line")
        .to_owned();
    let v: Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("--log-format json line is not JSON ({e}): {line}"));
    let addr = v["fields"]["addr"].as_str().or(v["addr"].as_str());
    assert_eq!(addr, Some(serve.addr.to_string().as_str()), "{line}");
    serve.terminate_cleanly();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_add_then_list_shows_the_user_and_they_can_log_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert_success(&user_add(dir.path(), "alice", PASSWORD), "user add alice");
    let out = user_cmd(dir.path(), &["list"]);
    assert_success(&out, "user list");
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains("alice"), "user list:\n{}", describe(&out));

    // The same name again, or a bad one, is refused with a non-zero exit.
    let out = user_add(dir.path(), "ALICE", PASSWORD);
    assert!(
        !out.status.success(),
        "duplicate user add succeeded: {}",
        describe(&out)
    );
    let out = user_add(dir.path(), "bad name", PASSWORD);
    assert!(
        !out.status.success(),
        "invalid username accepted: {}",
        describe(&out)
    );
    let out = user_add(dir.path(), "bobby", "short");
    assert!(
        !out.status.success(),
        "short password accepted: {}",
        describe(&out)
    );

    // The password is the stdin line without its newline.
    let srv = TestServer::start(dir.path()).await;
    let (user, _) = login_ok(&srv, "alice", PASSWORD).await;
    assert_eq!(user["username"], "alice");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_add_and_disable_work_while_the_server_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let serve = serve_local(dir.path());
    let remote = serve.remote();
    register(&remote, "admin", PASSWORD).await;

    assert_success(
        &user_add(dir.path(), "alice", PASSWORD),
        "user add alice (server running)",
    );
    let out = user_cmd(dir.path(), &["list"]);
    assert_success(&out, "user list (server running)");
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains("alice") && listed.contains("admin"),
        "{}",
        describe(&out)
    );

    // The running server sees the account the other process wrote.
    let (user, token) = login_ok(&remote, "alice", PASSWORD).await;
    assert_eq!(user["username"], "alice");
    assert_eq!(user["isAdmin"], false);
    expect(get(&remote, "/api/me", &token).await, 200).await;

    assert_success(
        &user_cmd(dir.path(), &["disable", "alice"]),
        "user disable alice",
    );
    let resp = login(&remote, "alice", PASSWORD).await;
    assert_error(resp, 403, "account_disabled").await;
    // Others are unaffected.
    login_ok(&remote, "admin", PASSWORD).await;
    serve.terminate_cleanly();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_the_server_takes_writes_holds_every_acknowledged_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let serve = serve_local(dir.path());
    let remote = serve.remote();
    let (_, token) = register(&remote, "alice", PASSWORD).await;
    let room = id(&create_room(&remote, &token, "general", "public").await);

    let acked: Arc<Mutex<Vec<(u64, String)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (remote, token, acked, stop) =
            (remote.clone(), token.clone(), acked.clone(), stop.clone());
        tokio::spawn(async move {
            let path = format!("/api/rooms/{room}/messages");
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let content = format!("write {i}");
                let resp = post(&remote, &path, &token, &json!({ "content": content })).await;
                let msg = expect(resp, 201).await;
                acked.lock().expect("acked lock").push((seq(&msg), content));
                i += 1;
            }
        })
    };
    let count = || acked.lock().expect("acked lock").len();
    eventually("20 acknowledged writes", START_DEADLINE, || count() >= 20).await;
    let before: Vec<(u64, String)> = acked.lock().expect("acked lock").clone();

    let out_dir = tempfile::tempdir().expect("tempdir");
    let backup_file = out_dir.path().join("parley-backup.redb");
    let mut cmd = parley();
    cmd.arg("backup")
        .arg(&backup_file)
        .arg("--data-dir")
        .arg(dir.path());
    let out = run(cmd, "");
    assert_success(&out, "parley backup (server running)");

    // The server kept taking writes through the backup and after it.
    let after_backup = count();
    eventually("writes after the backup", START_DEADLINE, || {
        count() >= after_backup + 5
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    writer
        .await
        .expect("writer task: every send acknowledged with 201");
    let acked: BTreeMap<u64, String> = acked.lock().expect("acked lock").iter().cloned().collect();
    serve.terminate_cleanly();

    // Restore: the backup file becomes a fresh data dir's parley.redb.
    let restored = tempfile::tempdir().expect("tempdir");
    std::fs::copy(&backup_file, restored.path().join("parley.redb")).expect("copy backup");
    let srv = TestServer::start(restored.path()).await; // App::open on the backup
    let (_, t) = login_ok(&srv, "alice", PASSWORD).await;
    let got = history(&srv, &t, room).await;
    let got: BTreeMap<u64, String> = got
        .iter()
        .map(|m| (seq(m), m["content"].as_str().unwrap_or_default().to_owned()))
        .collect();
    for (q, content) in &before {
        assert_eq!(
            got.get(q),
            Some(content),
            "message {q} acknowledged before the backup started is missing from it"
        );
    }
    // A consistent snapshot: a dense prefix of what the server acknowledged.
    let n = got.len() as u64;
    assert_eq!(
        got.keys().copied().collect::<Vec<_>>(),
        (1..=n).collect::<Vec<_>>()
    );
    for (q, content) in &got {
        assert_eq!(
            acked.get(q),
            Some(content),
            "backup has seq {q} the server never acknowledged"
        );
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_prints_one_json_message_per_line_in_seq_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let serve = serve_local(dir.path());
    let remote = serve.remote();
    let (_, a) = register(&remote, "alice", PASSWORD).await;
    let room = id(&create_room(&remote, &a, "general", "public").await);
    let other = id(&create_room(&remote, &a, "other", "public").await);
    for i in 1..=4 {
        send_message(&remote, &a, room, &format!("line {i}\nwith a newline")).await;
    }
    send_message(&remote, &a, other, "not in this export").await;
    expect(
        patch(
            &remote,
            &format!("/api/rooms/{room}/messages/2"),
            &a,
            &json!({ "content": "edited" }),
        )
        .await,
        200,
    )
    .await;
    expect(
        delete(&remote, &format!("/api/rooms/{room}/messages/3"), &a).await,
        200,
    )
    .await;
    let served = history(&remote, &a, room).await;
    serve.terminate_cleanly();

    let mut cmd = parley();
    cmd.args(["export", "--room", &room.to_string(), "--data-dir"])
        .arg(dir.path());
    let out = run(cmd, "");
    assert_success(&out, "parley export");
    let stdout = String::from_utf8(out.stdout.clone()).expect("UTF-8 export");
    let exported: Vec<Value> = stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    for m in &exported {
        assert_message_shape(m);
        assert_eq!(m["roomId"], room);
    }
    assert_eq!(exported.iter().map(seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(exported, served, "export differs from what the API serves");

    let mut cmd = parley();
    cmd.args(["export", "--room", "987654", "--data-dir"])
        .arg(dir.path());
    let out = run(cmd, "");
    assert!(
        !out.status.success(),
        "export of a missing room succeeded: {}",
        describe(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_flag_wins_over_parley_listen_env() {
    let dir = tempfile::tempdir().expect("tempdir");
    let serve = Serve::spawn(
        &["--listen", "127.0.0.1:0"],
        dir.path(),
        &[("PARLEY_LISTEN", "127.0.0.2:0")],
    );
    assert_eq!(
        serve.addr.ip(),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        "{}",
        serve.output()
    );
    expect(get_anon(&serve.remote(), "/healthz").await, 200).await;
    serve.terminate_cleanly();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parley_listen_env_applies_without_the_flag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let serve = Serve::spawn(&[], dir.path(), &[("PARLEY_LISTEN", "127.0.0.2:0")]);
    assert_eq!(
        serve.addr.ip(),
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
        "{}",
        serve.output()
    );
    expect(get_anon(&serve.remote(), "/healthz").await, 200).await;
    serve.terminate_cleanly();
}
