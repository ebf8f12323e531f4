//! An acknowledged message survives `kill -9`: the real binary, real sockets, a real redb file.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Starts `parley serve` on 127.0.0.1:0 and returns it with its base URL (read from the log).
fn start(data_dir: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_parley"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--data-dir",
        ])
        .arg(data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn parley");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Ok(event) = serde_json::from_str::<Value>(&line)
            && let Some(addr) = event["addr"].as_str()
        {
            // Keep draining the log so the server never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines.by_ref() {});
            return (child, format!("http://{addr}"));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("parley did not log its address");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut server, base) = start(dir.path());
    let http = reqwest::Client::new();

    let signed_in: Value = http
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"username": "alice", "password": "correct horse"}))
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("json");
    let token = signed_in["token"].as_str().expect("token").to_owned();
    let room: Value = http
        .post(format!("{base}/api/rooms"))
        .bearer_auth(&token)
        .json(&json!({"name": "durable"}))
        .send()
        .await
        .expect("room")
        .json()
        .await
        .expect("json");
    let room_id = room["id"].as_u64().expect("id");

    // Many concurrent senders, so acknowledgements come out of shared group commits.
    let mut sends = Vec::new();
    for i in 0..300 {
        let http = http.clone();
        let url = format!("{base}/api/rooms/{room_id}/messages");
        let token = token.clone();
        sends.push(tokio::spawn(async move {
            let response = http
                .post(url)
                .bearer_auth(token)
                .json(&json!({"content": format!("message {i}")}))
                .send()
                .await
                .expect("send");
            assert_eq!(response.status(), 201);
            let message: Value = response.json().await.expect("json");
            (
                message["seq"].as_u64().expect("seq"),
                format!("message {i}"),
            )
        }));
    }
    let mut acknowledged = Vec::new();
    for send in sends {
        acknowledged.push(send.await.expect("join"));
    }

    server.kill().expect("SIGKILL");
    server.wait().expect("reap");

    let (mut server, base) = start(dir.path());
    let token: Value = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"username": "alice", "password": "correct horse"}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let token = token["token"].as_str().expect("token");
    // Read everything back the way a client catches up: `after`, following nextCursor.
    let mut stored = std::collections::HashMap::new();
    let mut after = 0;
    loop {
        let page: Value = http
            .get(format!(
                "{base}/api/rooms/{room_id}/messages?after={after}&limit=200"
            ))
            .bearer_auth(token)
            .send()
            .await
            .expect("history")
            .json()
            .await
            .expect("json");
        for m in page["items"].as_array().expect("items") {
            let seq = m["seq"].as_u64().expect("seq");
            stored.insert(seq, m["content"].as_str().expect("content").to_owned());
        }
        match page["nextCursor"].as_u64() {
            Some(next) => after = next,
            None => break,
        }
    }
    for (seq, content) in &acknowledged {
        assert_eq!(
            stored.get(seq),
            Some(content),
            "acknowledged seq {seq} lost"
        );
    }
    assert_eq!(stored.len(), acknowledged.len());
    let _ = server.kill();
    let _ = server.wait();
}
