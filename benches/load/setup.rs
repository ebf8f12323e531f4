//! The server under test (parley started here, the Node.js peer started here, or one already
//! running) and the accounts and rooms a scenario needs on it.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::client::{Endpoint, Http, source_addr};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    Parley,
    Peer,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Parley => "parley",
            Target::Peer => "peer",
        }
    }
}

/// The server under test. A process started here is killed when this is dropped.
pub struct Server {
    pub target: Target,
    pub endpoint: Endpoint,
    pub pid: Option<u32>,
    child: Option<Child>,
    _temp: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub struct Launch<'a> {
    pub target: Target,
    pub url: Option<&'a str>,
    pub server_pid: Option<u32>,
    pub parley_bin: &'a Path,
    pub peer_dir: &'a Path,
    pub node_bin: &'a str,
    pub data_dir: Option<&'a Path>,
    pub max_connections: usize,
    pub server_args: &'a [String],
    /// Accounts to write straight into parley's store before it starts (see `provision_store`).
    pub preprovision: Option<(usize, Rooms)>,
}

impl Server {
    /// Starts (or attaches to) the server; for parley started here with `preprovision`, also
    /// returns the accounts written into its store.
    pub async fn launch(launch: Launch<'_>) -> Result<(Server, Option<Provisioned>)> {
        if let Some(url) = launch.url {
            let endpoint = endpoint_of(url)?;
            wait_healthy(&endpoint, Duration::from_secs(5)).await?;
            let server = Server {
                target: launch.target,
                endpoint,
                pid: launch.server_pid,
                child: None,
                _temp: None,
            };
            return Ok((server, None));
        }
        match launch.target {
            Target::Parley => start_parley(launch).await,
            Target::Peer => Ok((start_peer(launch).await?, None)),
        }
    }
}

fn endpoint_of(url: &str) -> Result<Endpoint> {
    let host = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("--url must be http://HOST:PORT"))?
        .trim_end_matches('/');
    let server = host
        .to_socket_addrs()?
        .find(SocketAddr::is_ipv4)
        .ok_or_else(|| anyhow!("{host} has no IPv4 address"))?;
    Ok(Endpoint {
        server,
        host: host.to_owned(),
    })
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn wait_healthy(endpoint: &Endpoint, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    loop {
        let attempt = async {
            let mut http = Http::connect(source_addr(0), endpoint).await?;
            let response = http.get("/healthz", None).await?;
            anyhow::ensure!(
                response.status == 200,
                "healthz answered {}",
                response.status
            );
            Ok(())
        };
        match attempt.await {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                return Err(e.context(format!("server at {} never became healthy", endpoint.host)));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn start_parley(launch: Launch<'_>) -> Result<(Server, Option<Provisioned>)> {
    if !launch.parley_bin.exists() {
        bail!(
            "no parley binary at {} (build it with `cargo build --release`, or pass --parley-bin)",
            launch.parley_bin.display()
        );
    }
    let (data_dir, temp) = match launch.data_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            (dir.to_path_buf(), None)
        }
        None => {
            let temp = tempfile::Builder::new().prefix("parley-load-").tempdir()?;
            (temp.path().to_path_buf(), Some(temp))
        }
    };
    let accounts = match launch.preprovision {
        Some((users, rooms)) => Some(provision_store(&data_dir, users, rooms).await?),
        None => None,
    };
    let port = free_port()?;
    let log = std::fs::File::create(data_dir.join("server.log"))?;
    let child = Command::new(launch.parley_bin)
        .arg("serve")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--max-connections")
        .arg(launch.max_connections.to_string())
        .arg("--log")
        .arg("warn")
        .args(launch.server_args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {}", launch.parley_bin.display()))?;
    let endpoint = Endpoint {
        server: SocketAddr::from(([127, 0, 0, 1], port)),
        host: format!("127.0.0.1:{port}"),
    };
    let server = Server {
        target: Target::Parley,
        endpoint,
        pid: Some(child.id()),
        child: Some(child),
        _temp: temp,
    };
    wait_healthy(&server.endpoint, Duration::from_secs(30))
        .await
        .with_context(|| format!("see {}", data_dir.join("server.log").display()))?;
    eprintln!(
        "load: parley pid {} on {} (data {})",
        server.pid.unwrap_or(0),
        server.endpoint.host,
        data_dir.display()
    );
    Ok((server, accounts))
}

async fn start_peer(launch: Launch<'_>) -> Result<Server> {
    let script = launch.peer_dir.join("server.mjs");
    if !launch.peer_dir.join("node_modules/socket.io").exists() {
        bail!(
            "the peer's dependencies are missing: run `npm ci` in {}",
            launch.peer_dir.display()
        );
    }
    let mut child = Command::new(launch.node_bin)
        .arg(&script)
        .args(launch.server_args)
        .current_dir(launch.peer_dir)
        .env("PORT", "0")
        .env("HOST", "127.0.0.1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start {} {}", launch.node_bin, script.display()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next();
        let _ = tx.send(first);
        // Keep draining so the peer never blocks on a full pipe.
        for line in lines.map_while(Result::ok) {
            eprintln!("peer: {line}");
        }
    });
    let pid = child.id();
    let mut server = Server {
        target: Target::Peer,
        endpoint: Endpoint {
            server: SocketAddr::from(([127, 0, 0, 1], 0)),
            host: String::new(),
        },
        pid: Some(pid),
        child: Some(child),
        _temp: None,
    };
    let line = tokio::time::timeout(Duration::from_secs(30), rx)
        .await
        .context("the peer did not print its port within 30 s")?
        .context("the peer exited")?
        .context("the peer printed nothing")??;
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .ok_or_else(|| anyhow!("unexpected peer output: {line}"))?;
    server.endpoint = endpoint_of(url)?;
    wait_healthy(&server.endpoint, Duration::from_secs(10)).await?;
    eprintln!("load: peer pid {pid} on {}", server.endpoint.host);
    Ok(server)
}

/// Resolves the parley binary: the flag, else `$CARGO_TARGET_DIR/release/parley`, else the
/// crate's `target/release/parley`.
pub fn default_parley_bin() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("release/parley"),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/parley"),
    }
}

pub fn default_peer_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers/socketio-node")
}

// ---------------------------------------------------------------------------------------------
// Accounts and rooms

/// How users relate to rooms in a scenario.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Rooms {
    /// No rooms at all (idle connections).
    None,
    /// One room every user is a member of.
    Shared,
    /// Each user in a room of their own (so a message reaches only that user's sockets).
    OwnEach,
}

pub struct Provisioned {
    /// Per user: the token for the Socket.IO CONNECT payload.
    pub tokens: Vec<String>,
    /// Rooms::Shared: one id; Rooms::OwnEach: one per user, same index.
    pub rooms: Vec<u64>,
    /// Per user (empty for the peer).
    pub usernames: Vec<String>,
}

/// Users (and rooms) on the server. The peer accepts any token and takes its rooms from the
/// CONNECT payload, so nothing is created there; parley gets real accounts, registered through
/// the API from many loopback source addresses (registration is limited to 10 per address per
/// hour), 8 at a time (argon2 runs on the server's blocking pool).
pub async fn provision(server: &Server, users: usize, rooms: Rooms) -> Result<Provisioned> {
    if server.target == Target::Peer {
        let tokens = (0..users).map(|i| format!("peer-token-{i}")).collect();
        let rooms = match rooms {
            Rooms::None => Vec::new(),
            Rooms::Shared => vec![1],
            Rooms::OwnEach => (1..=users as u64).collect(),
        };
        return Ok(Provisioned {
            tokens,
            rooms,
            usernames: Vec::new(),
        });
    }
    let started = Instant::now();
    let run = rand::random::<u32>() % 1_000_000;
    // A fresh block of source addresses per run: reruns against a server that stays up would
    // otherwise hit the per-address registration window.
    let address_base = 100_000 + (run % 1000) * 10_000;
    let endpoint = Arc::new(server.endpoint.clone());
    let limit = Arc::new(Semaphore::new(8));
    let mut set = JoinSet::new();
    for i in 0..users {
        let endpoint = endpoint.clone();
        let limit = limit.clone();
        set.spawn(async move {
            let _permit = limit.acquire().await?;
            let source = source_addr(address_base + (i as u32) / 10);
            let mut http = Http::connect(source, &endpoint).await?;
            let body = json!({
                "username": format!("r{run}u{i}"),
                "password": BENCH_PASSWORD,
            });
            let user = post_json(&mut http, "/api/auth/register", None, &body, 201).await?;
            let token = user["token"]
                .as_str()
                .ok_or_else(|| anyhow!("no token in {user}"))?
                .to_owned();
            let room = if rooms == Rooms::OwnEach {
                let room = create_room(&mut http, &token, &format!("bench {run} {i}")).await?;
                Some(room)
            } else {
                None
            };
            anyhow::Ok((i, token, room))
        });
    }
    let mut tokens = vec![String::new(); users];
    let mut own = vec![0u64; users];
    while let Some(joined) = set.join_next().await {
        let (i, token, room) = joined??;
        tokens[i] = token;
        if let Some(room) = room {
            own[i] = room;
        }
    }
    let room_ids = match rooms {
        Rooms::None => Vec::new(),
        Rooms::OwnEach => own,
        Rooms::Shared => {
            let mut http = Http::connect(source_addr(0), &endpoint).await?;
            let room = create_room(&mut http, &tokens[0], &format!("bench {run}")).await?;
            let mut set = JoinSet::new();
            for token in &tokens[1..] {
                let token = token.clone();
                let endpoint = endpoint.clone();
                let limit = limit.clone();
                set.spawn(async move {
                    let _permit = limit.acquire().await?;
                    let mut http = Http::connect(source_addr(0), &endpoint).await?;
                    post_json(
                        &mut http,
                        &format!("/api/rooms/{room}/join"),
                        Some(&token),
                        &json!({}),
                        200,
                    )
                    .await?;
                    anyhow::Ok(())
                });
            }
            while let Some(joined) = set.join_next().await {
                joined??;
            }
            vec![room]
        }
    };
    eprintln!(
        "load: {users} users provisioned in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(Provisioned {
        tokens,
        rooms: room_ids,
        usernames: (0..users).map(|i| format!("r{run}u{i}")).collect(),
    })
}

/// Writes accounts, sessions and rooms straight into parley's store before the server starts,
/// through the same store functions the server and `parley user add` use. Much faster than
/// registering through the API, and it keeps argon2 out of the server under test: hashing a
/// password allocates 19 MiB that glibc keeps resident afterwards (registering 100 accounts
/// through the API leaves parley at about 500 MiB RSS), which would drown the idle scenario's
/// per-connection figure. Every account gets the same password hash (of `BENCH_PASSWORD`).
pub async fn provision_store(data_dir: &Path, users: usize, rooms: Rooms) -> Result<Provisioned> {
    use parley::clock::Timestamp;
    use parley::ids::UserId;
    use parley::store::records::{RoomRole, SessionRecord, Visibility};
    use parley::store::{Admission, Store};

    let started = Instant::now();
    let hash = parley::auth::PasswordHasher::new(1)
        .hash(BENCH_PASSWORD.to_owned())
        .await?;
    let store = Store::open(&data_dir.join("parley.redb"))?;
    let run = rand::random::<u32>() % 1_000_000;
    let result = async {
        let mut tokens = vec![String::new(); users];
        let mut ids = vec![UserId(0); users];
        let mut own = vec![0u64; users];
        for chunk in (0..users).collect::<Vec<_>>().chunks(512) {
            let mut set = JoinSet::new();
            for &i in chunk {
                let store = store.clone();
                let hash = hash.clone();
                set.spawn(async move {
                    let username = format!("r{run}u{i}");
                    let (user, _) = store
                        .create_user(
                            username.clone(),
                            username,
                            hash,
                            Admission::Operator { admin: i == 0 },
                        )
                        .await?;
                    let (token, token_hash) = parley::auth::new_token();
                    let now = Timestamp::now();
                    let session = SessionRecord {
                        user,
                        created_at: now,
                        expires_at: now.plus_seconds(30 * 86_400),
                        last_seen: None,
                    };
                    store.create_session(token_hash, session).await?;
                    let room = if rooms == Rooms::OwnEach {
                        let (room, _) = store
                            .create_room(format!("bench {run} {i}"), Visibility::Public, None, user)
                            .await?;
                        room.0
                    } else {
                        0
                    };
                    anyhow::Ok((i, user, token, room))
                });
            }
            while let Some(done) = set.join_next().await {
                let (i, user, token, room) = done??;
                ids[i] = user;
                tokens[i] = token;
                own[i] = room;
            }
        }
        let room_ids = match rooms {
            Rooms::None => Vec::new(),
            Rooms::OwnEach => own,
            Rooms::Shared => {
                let (room, _) = store
                    .create_room(format!("bench {run}"), Visibility::Public, None, ids[0])
                    .await?;
                let mut set = JoinSet::new();
                for &user in &ids[1..] {
                    let store = store.clone();
                    set.spawn(async move { store.add_member(room, user, RoomRole::Member).await });
                }
                while let Some(done) = set.join_next().await {
                    done??;
                }
                vec![room.0]
            }
        };
        anyhow::Ok(Provisioned {
            tokens,
            rooms: room_ids,
            usernames: (0..users).map(|i| format!("r{run}u{i}")).collect(),
        })
    }
    .await;
    store.close().await;
    let provisioned = result?;
    eprintln!(
        "load: {users} users written into the store in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(provisioned)
}

/// The password of accounts written by `provision_store`.
pub const BENCH_PASSWORD: &str = "bench-password";

pub async fn post_json(
    http: &mut Http,
    path: &str,
    token: Option<&str>,
    body: &Value,
    expect: u16,
) -> Result<Value> {
    let response = http
        .request(
            "POST",
            path,
            token,
            Some("application/json"),
            Bytes::from(body.to_string()),
        )
        .await?;
    if response.status != expect {
        bail!(
            "POST {path} answered {}: {}",
            response.status,
            String::from_utf8_lossy(&response.body)
        );
    }
    if response.body.is_empty() {
        return Ok(Value::Null);
    }
    Ok(serde_json::from_slice(&response.body)?)
}

pub async fn create_room(http: &mut Http, token: &str, name: &str) -> Result<u64> {
    let room = post_json(
        http,
        "/api/rooms",
        Some(token),
        &json!({ "name": name, "visibility": "public" }),
        201,
    )
    .await?;
    room["id"]
        .as_u64()
        .ok_or_else(|| anyhow!("no room id in {room}"))
}
