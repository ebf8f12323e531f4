//! parley's load harness: Socket.IO v5 / Engine.IO v4 spoken over raw WebSocket frames (and raw
//! HTTP long-polling), tens of thousands of connections from many loopback source addresses,
//! one JSON line of results per run on stdout (progress goes to stderr).
//!
//! ```text
//! cargo bench --bench load -- <fanout|rooms|idle|ingest|history|polling> [--target parley|peer] [flags]
//! ```
//!
//! It starts the server under test itself (`target/release/parley serve` on a free port with a
//! temporary data directory, or the Node.js socket.io peer in benches/peers/socketio-node), or
//! attaches to a running one with `--url http://127.0.0.1:PORT --server-pid PID`. Server CPU
//! and RSS are read from /proc/<pid>; the harness's own CPU from /proc/self. `--help` lists
//! every flag. benches/compare.sh runs every scenario against both servers and prints ratios.
//!
//! Two limits of parley shape the load: a socket may send a burst of 50 events and then 20
//! per second, so senders are spread over several sockets (the harness keeps each socket
//! under 19/s); and registration is limited to 10 accounts per address per hour, so users are
//! registered from many loopback source addresses and a scenario uses a modest number of users
//! with several sockets each. Messages reach every socket of every member of a room, so the
//! ingest scenario gives each socket an account and a room of its own (one delivery per
//! message, as with the peer, where a sender's socket is in its room too).

#[path = "load/client.rs"]
mod client;
#[path = "load/setup.rs"]
mod setup;
#[path = "load/stats.rs"]
mod stats;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinSet;

use client::{ConnReport, Endpoint, Phase, SendPlan, source_addr};
use setup::{Launch, Rooms, Server, Target};
use stats::{CpuWindow, SendCounters, now_ns, quantile_ms, round};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// N clients in one room, one logical sender at --rate messages/s
    Fanout,
    /// --clients spread over rooms of --room-size, each client sending at --rate messages/s
    Rooms,
    /// N idle connections: server RSS per connection and heartbeat CPU
    Idle,
    /// Durable messages/s with acks for --senders concurrent closed-loop senders
    Ingest,
    /// GET /api/rooms/{id}/messages?cursor=<random>&limit=50 on a room of --messages messages
    History,
    /// fanout with long-polling receivers (WebSocket senders)
    Polling,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Fanout => "fanout",
            Scenario::Rooms => "rooms",
            Scenario::Idle => "idle",
            Scenario::Ingest => "ingest",
            Scenario::History => "history",
            Scenario::Polling => "polling",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Provision {
    Store,
    Api,
}

#[derive(Parser, Debug)]
#[command(
    name = "load",
    about = "parley's load harness (one JSON line of results on stdout)"
)]
struct Args {
    scenario: Scenario,
    /// Which server: parley, or the Node.js socket.io peer
    #[arg(long, value_enum, default_value = "parley")]
    target: Target,
    /// Attach to a running server (http://HOST:PORT) instead of starting one
    #[arg(long)]
    url: Option<String>,
    /// The attached server's pid, for its CPU and RSS
    #[arg(long)]
    server_pid: Option<u32>,
    /// Clients (sockets); defaults: fanout 1000, rooms 10000, idle 10000, polling 1000
    #[arg(long)]
    clients: Option<usize>,
    /// fanout/polling: messages per second in total; rooms: messages per second per client
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds of measurement (after the warm-up)
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring (sent and checked for loss, not measured)
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Seconds to wait for the last deliveries after sending stops
    #[arg(long, default_value_t = 15.0)]
    drain: f64,
    /// rooms: clients per room
    #[arg(long, default_value_t = 10)]
    room_size: usize,
    /// Accounts the clients share (fanout, idle, polling; default min(clients, 100))
    #[arg(long)]
    users: Option<usize>,
    /// fanout/polling: sockets the sender spreads its messages over (default rate/15, at
    /// least 1); ingest: concurrent closed-loop senders (default 10)
    #[arg(long)]
    senders: Option<usize>,
    /// ingest: sockets (each with its own account and room) the senders rotate over; default
    /// 100 per sender, at most 4000 (each socket stays under 19 messages/s)
    #[arg(long)]
    sockets: Option<usize>,
    /// idle: seconds of the heartbeat CPU window (default pingInterval is 25 s)
    #[arg(long, default_value_t = 30.0)]
    window: f64,
    /// history: messages in the room
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// history: concurrent HTTP connections
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// history: page size
    #[arg(long, default_value_t = 50)]
    limit: u64,
    /// parley's data directory, kept between runs (history reuses a seeded room from it)
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// parley binary [default: $CARGO_TARGET_DIR/release/parley or target/release/parley]
    #[arg(long)]
    parley_bin: Option<PathBuf>,
    /// The peer's directory [default: benches/peers/socketio-node]
    #[arg(long)]
    peer_dir: Option<PathBuf>,
    #[arg(long, default_value = "node")]
    node_bin: String,
    /// Extra arguments for the server started here (repeat), e.g. --server-arg=--ping-interval-ms=5000
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// How parley's accounts are made when the harness starts it: written into its store
    /// before it starts (fast, and keeps argon2's memory out of the server's RSS), or
    /// registered through the API (always the case with --url)
    #[arg(long, value_enum, default_value = "store")]
    provision: Provision,
    /// Loopback source addresses to spread connections over (127.0.0.2, …)
    #[arg(long, default_value_t = 16)]
    source_addrs: u32,
    /// Connections being opened at once
    #[arg(long, default_value_t = 128)]
    connect_concurrency: usize,
    /// The harness's own threads (1 = a single-threaded runtime: no wake-ups across threads,
    /// the cheapest per delivery while one core keeps up)
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Free-form label copied into the JSON line
    #[arg(long)]
    label: Option<String>,
    /// Passed by `cargo bench`; ignored
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> Result<()> {
    // `cargo test --all-targets` (CI) runs every bench binary with no arguments, and
    // `cargo bench` without a scenario passes only `--bench`: both only prove it builds.
    if std::env::args().skip(1).all(|arg| arg == "--bench") {
        eprintln!("load: no scenario given, nothing to run (see --help)");
        return Ok(());
    }
    let args = Args::parse();
    let nofile = raise_nofile()?;
    let clients = args.clients.unwrap_or(match args.scenario {
        Scenario::Rooms | Scenario::Idle => 10_000,
        _ => 1_000,
    });
    // Each side holds one descriptor per connection (the harness in this process, the server
    // it starts under the same limit), plus some for files and listeners.
    if args.scenario != Scenario::History && clients as u64 + 200 > nofile {
        bail!(
            "{clients} connections need more open files than the limit of {nofile}: raise the \
             hard limit first (`ulimit -Hn 1048576` as root with CAP_SYS_RESOURCE, or \
             LimitNOFILE= under systemd); where that is not allowed, stay under {nofile}"
        );
    }
    let runtime = match args.threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n.max(1))
            .enable_all()
            .build()?,
    };
    let result = runtime.block_on(run(args, clients))?;
    println!("{result}");
    // Tens of thousands of sockets close faster with the process than one by one.
    runtime.shutdown_timeout(Duration::from_millis(100));
    Ok(())
}

/// Raises RLIMIT_NOFILE for the harness and the server it starts (children inherit it): to
/// 1,048,576 when the process may raise its hard limit (CAP_SYS_RESOURCE), else the soft limit
/// to the hard one. Returns the limit in force.
fn raise_nofile() -> Result<u64> {
    use rlimit::Resource;
    const WANT: u64 = 1 << 20;
    let (_, hard) = Resource::NOFILE.get()?;
    if hard < WANT && Resource::NOFILE.set(WANT, WANT).is_ok() {
        return Ok(WANT);
    }
    Ok(rlimit::increase_nofile_limit(WANT)?)
}

async fn run(args: Args, clients: usize) -> Result<Value> {
    let parley_bin = args
        .parley_bin
        .clone()
        .unwrap_or_else(setup::default_parley_bin);
    let peer_dir = args
        .peer_dir
        .clone()
        .unwrap_or_else(setup::default_peer_dir);
    let users = args.users.unwrap_or(clients.min(100)).max(1);
    let history_seed = history_meta(&args);
    let needs = match args.scenario {
        Scenario::Fanout | Scenario::Polling => Some((users, Rooms::Shared)),
        Scenario::Rooms => Some((clients / args.room_size.max(1), Rooms::OwnEach)),
        Scenario::Idle => Some((users, Rooms::None)),
        Scenario::Ingest => Some((ingest_pool(&args), Rooms::OwnEach)),
        Scenario::History if history_seed.is_some() => None,
        Scenario::History => Some((1, Rooms::OwnEach)),
    };
    let preprovision = needs.filter(|_| {
        args.provision == Provision::Store && args.target == Target::Parley && args.url.is_none()
    });
    let (server, written) = Server::launch(Launch {
        target: args.target,
        url: args.url.as_deref(),
        server_pid: args.server_pid,
        parley_bin: &parley_bin,
        peer_dir: &peer_dir,
        node_bin: &args.node_bin,
        data_dir: args.data_dir.as_deref(),
        max_connections: clients + 5_000,
        server_args: &args.server_args,
        preprovision,
    })
    .await?;
    let accounts = match (written, needs) {
        (Some(accounts), _) => Some(accounts),
        (None, Some((users, rooms))) => Some(setup::provision(&server, users, rooms).await?),
        (None, None) => None,
    };
    let started = Instant::now();
    let (params, figures) = match (args.scenario, accounts) {
        (Scenario::History, accounts) => history(&args, &server, accounts, history_seed).await?,
        (_, None) => bail!("no accounts provisioned"),
        (Scenario::Fanout | Scenario::Polling, Some(a)) => {
            fanout(&args, &server, clients, a).await?
        }
        (Scenario::Rooms, Some(a)) => rooms(&args, &server, clients, a).await?,
        (Scenario::Idle, Some(a)) => idle(&args, &server, clients, a).await?,
        (Scenario::Ingest, Some(a)) => ingest(&args, &server, a).await?,
    };
    Ok(json!({
        "scenario": args.scenario.name(),
        "target": args.target.name(),
        "label": args.label,
        "params": params,
        "figures": figures,
        "elapsed_s": round(started.elapsed().as_secs_f64(), 1),
    }))
}

/// The sockets of a scenario, connected and running.
struct Fleet {
    phase: watch::Sender<Phase>,
    tasks: JoinSet<ConnReport>,
    counters: Arc<SendCounters>,
}

struct SocketSpec {
    token: String,
    rooms: Vec<u64>,
    plan: SendPlan,
    /// Whether this socket's deliveries are counted (the WebSocket senders of the polling
    /// scenario are not).
    counting: bool,
}

impl Fleet {
    fn new() -> Fleet {
        Fleet {
            phase: watch::channel(Phase::Setup).0,
            tasks: JoinSet::new(),
            counters: Arc::new(SendCounters::default()),
        }
    }

    /// Opens every socket (at most `concurrency` handshakes at once) and returns once all
    /// are signed in.
    async fn connect(
        &mut self,
        args: &Args,
        endpoint: &Endpoint,
        specs: Vec<SocketSpec>,
    ) -> Result<()> {
        let total = specs.len();
        let started = Instant::now();
        let limit = Arc::new(Semaphore::new(args.connect_concurrency));
        let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<Result<(), String>>();
        let offset = self.tasks.len() as u32;
        for (i, spec) in specs.into_iter().enumerate() {
            let endpoint = endpoint.clone();
            let limit = limit.clone();
            let ready = ready_tx.clone();
            let phase = self.phase.subscribe();
            let counters = self.counters.clone();
            let source = source_addr((offset + i as u32) % args.source_addrs.max(1));
            let tag = u64::from(offset) + i as u64;
            self.tasks.spawn(async move {
                let permit = limit.acquire_owned().await;
                let ws = client::connect_socket(source, &endpoint, &spec.token, &spec.rooms).await;
                drop(permit);
                match ws {
                    Ok(ws) => {
                        let _ = ready.send(Ok(()));
                        client::run_socket(ws, tag, spec.plan, phase, counters, spec.counting).await
                    }
                    Err(e) => {
                        let _ = ready.send(Err(format!("{e:#}")));
                        ConnReport {
                            failed: Some(format!("{e:#}")),
                            ..ConnReport::default()
                        }
                    }
                }
            });
        }
        drop(ready_tx);
        let mut done = 0;
        while done < total {
            match ready_rx.recv().await {
                Some(Ok(())) => done += 1,
                Some(Err(e)) => {
                    bail!("a socket failed to connect ({done} of {total} were up): {e}")
                }
                None => bail!("connection tasks ended early"),
            }
            if done % 10_000 == 0 && done < total {
                eprintln!("load: {done}/{total} sockets up");
            }
        }
        eprintln!(
            "load: {total} sockets connected in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    fn set(&self, phase: Phase) {
        let _ = self.phase.send(phase);
    }

    /// Stops every socket and sums their reports.
    async fn stop(mut self) -> Result<Totals> {
        self.set(Phase::Stop);
        let mut totals = Totals::default();
        while let Some(report) = self.tasks.join_next().await {
            let report = report.context("connection task panicked")?;
            totals.received += report.received;
            totals.pings += report.pings;
            if let Some(why) = report.failed {
                totals.failed += 1;
                totals.first_failure.get_or_insert(why);
            }
        }
        Ok(totals)
    }
}

#[derive(Default)]
struct Totals {
    received: u64,
    pings: u64,
    failed: u64,
    first_failure: Option<String>,
}

fn server_rss_mib(server: &Server) -> Option<f64> {
    let pid = server.pid?;
    stats::rss_kib(&pid.to_string())
        .ok()
        .map(|kib| round(kib as f64 / 1024.0, 1))
}

/// Runs the send schedule (warm-up + measurement), then drains until every acked message
/// reached every socket it should have (`per_message` sockets each) or the drain time ends.
async fn measure_deliveries(
    args: &Args,
    server: &Server,
    fleet: &Fleet,
    per_message: u64,
) -> Result<Value> {
    let start_ns = now_ns() + 200_000_000;
    fleet.set(Phase::Run { start_ns });
    let warmup = Duration::from_secs_f64(args.warmup);
    let duration = Duration::from_secs_f64(args.duration);
    tokio::time::sleep(Duration::from_millis(200) + warmup).await;
    let delivered0 = stats::delivered_total();
    let cpu = CpuWindow::start(server.pid)?;
    tokio::time::sleep(duration).await;
    let delivered1 = stats::delivered_total();
    let cpu = cpu.stop()?;
    let rss = server_rss_mib(server);
    fleet.set(Phase::Drain);
    let drain_started = Instant::now();
    // A send that raced the phase change is counted before the drain looks at the counters.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let counters = &fleet.counters;
    loop {
        let settled = counters.sent() == counters.ok() + counters.err();
        let expected = counters.ok() * per_message;
        if settled && stats::delivered_total() >= expected {
            break;
        }
        if drain_started.elapsed() > Duration::from_secs_f64(args.drain) {
            eprintln!("load: drain time over with deliveries or acks missing");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drain_s = drain_started.elapsed().as_secs_f64();
    let e2e = stats::merged_e2e();
    Ok(json!({
        "deliveries_per_sec": round((delivered1 - delivered0) as f64 / cpu.seconds, 0),
        "latency_p50_ms": quantile_ms(&e2e, 0.5),
        "latency_p99_ms": quantile_ms(&e2e, 0.99),
        "latency_p999_ms": quantile_ms(&e2e, 0.999),
        "latency_max_ms": quantile_ms(&e2e, 1.0),
        "server_cpu_pct": cpu.server_pct,
        "server_rss_mib": rss,
        "harness_cpu_pct": cpu.harness_pct,
        "drain_s": round(drain_s, 2),
    }))
}

/// Adds the loss accounting to a deliveries result, after the fleet stopped.
fn finish_deliveries(
    mut figures: Value,
    counters: &SendCounters,
    totals: &Totals,
    per_message: u64,
) -> Value {
    let expected = counters.ok() * per_message;
    let sent = counters.sent();
    figures["messages_sent"] = json!(sent);
    figures["messages_acked"] = json!(counters.ok());
    figures["send_errors"] = json!(counters.err());
    figures["unacked"] = json!(sent - counters.ok() - counters.err());
    figures["deliveries_expected"] = json!(expected);
    figures["deliveries"] = json!(totals.received);
    figures["lost"] = json!(expected.saturating_sub(totals.received));
    figures["extra"] = json!(totals.received.saturating_sub(expected));
    figures["sockets_failed"] = json!(totals.failed);
    if let Some(e) = counters.last_error.lock().expect("error slot").clone() {
        figures["last_send_error"] = json!(e);
    }
    if let Some(e) = &totals.first_failure {
        figures["first_socket_failure"] = json!(e);
    }
    figures
}

fn schedule(room: u64, offset_ns: u64, interval_ns: u64, args: &Args) -> SendPlan {
    let warmup_ns = (args.warmup * 1e9) as u64;
    SendPlan::Schedule {
        room,
        offset_ns,
        interval_ns,
        // Senders run through warm-up and measurement; the drain phase starts when they end.
        stop_after_ns: warmup_ns + (args.duration * 1e9) as u64,
        warmup_ns,
    }
}

fn check_parley_rate(server: &Server, per_socket: f64) -> Result<()> {
    if server.target == Target::Parley && per_socket > 19.0 {
        bail!(
            "{per_socket:.1} messages/s per socket is over parley's limit of 20/s: use more --senders"
        );
    }
    Ok(())
}

/// fanout and polling: N receivers in one room, S sender sockets sharing --rate between them.
async fn fanout(
    args: &Args,
    server: &Server,
    clients: usize,
    accounts: setup::Provisioned,
) -> Result<(Value, Value)> {
    let polling = args.scenario == Scenario::Polling;
    let rate = args.rate.unwrap_or(if polling { 10.0 } else { 20.0 });
    let senders = args
        .senders
        .unwrap_or(((rate / 15.0).ceil() as usize).max(1));
    if !polling && senders > clients {
        bail!("more senders than clients");
    }
    check_parley_rate(server, rate / senders as f64)?;
    let users = accounts.tokens.len();
    let room = accounts.rooms[0];
    let interval = (senders as f64 * 1e9 / rate) as u64;
    let spacing = (1e9 / rate) as u64;
    let mut fleet = Fleet::new();
    if polling {
        // Long-polling receivers first, then the WebSocket senders.
        let started = Instant::now();
        let limit = Arc::new(Semaphore::new(args.connect_concurrency));
        let mut connecting = JoinSet::new();
        for c in 0..clients {
            let endpoint = server.endpoint.clone();
            let token = accounts.tokens[c % users].clone();
            let limit = limit.clone();
            let source = source_addr(c as u32 % args.source_addrs.max(1));
            connecting.spawn(async move {
                let _permit = limit.acquire().await?;
                client::Polling::connect(source, &endpoint, &token, &[room]).await
            });
        }
        let mut pollers = Vec::with_capacity(clients);
        while let Some(p) = connecting.join_next().await {
            pollers.push(p??);
        }
        for poller in pollers {
            fleet.tasks.spawn(poller.run(fleet.phase.subscribe()));
        }
        eprintln!(
            "load: {clients} polling clients connected in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let specs = (0..senders)
            .map(|s| SocketSpec {
                token: accounts.tokens[s % users].clone(),
                rooms: vec![room],
                plan: schedule(room, s as u64 * spacing, interval, args),
                counting: false,
            })
            .collect();
        fleet.connect(args, &server.endpoint, specs).await?;
    } else {
        let specs = (0..clients)
            .map(|c| SocketSpec {
                token: accounts.tokens[c % users].clone(),
                rooms: vec![room],
                plan: if c < senders {
                    schedule(room, c as u64 * spacing, interval, args)
                } else {
                    SendPlan::None
                },
                counting: true,
            })
            .collect();
        fleet.connect(args, &server.endpoint, specs).await?;
    }
    // Let connect-time traffic (presence, room events) settle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let per_message = clients as u64;
    let figures = measure_deliveries(args, server, &fleet, per_message).await?;
    let counters = fleet.counters.clone();
    let totals = fleet.stop().await?;
    let figures = finish_deliveries(figures, &counters, &totals, per_message);
    let params = json!({
        "clients": clients, "rate": rate, "senders": senders, "users": users,
        "duration_s": args.duration, "warmup_s": args.warmup,
        "transport": if polling { "polling" } else { "websocket" },
    });
    Ok((params, figures))
}

/// rooms: clients in rooms of --room-size, every client sending at --rate.
async fn rooms(
    args: &Args,
    server: &Server,
    clients: usize,
    accounts: setup::Provisioned,
) -> Result<(Value, Value)> {
    let size = args.room_size.max(1);
    if !clients.is_multiple_of(size) {
        bail!("--clients must be a multiple of --room-size");
    }
    let rate = args.rate.unwrap_or(1.0);
    check_parley_rate(server, rate)?;
    let room_count = clients / size;
    // One account per room (parley subscribes a socket to all of its user's rooms).
    let interval = (1e9 / rate) as u64;
    let specs = (0..clients)
        .map(|c| {
            let r = c / size;
            let room = accounts.rooms[r];
            let offset = rand::random::<u64>() % interval.max(1);
            SocketSpec {
                token: accounts.tokens[r].clone(),
                rooms: vec![room],
                plan: schedule(room, offset, interval, args),
                counting: true,
            }
        })
        .collect();
    let mut fleet = Fleet::new();
    fleet.connect(args, &server.endpoint, specs).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let per_message = size as u64;
    let figures = measure_deliveries(args, server, &fleet, per_message).await?;
    let counters = fleet.counters.clone();
    let totals = fleet.stop().await?;
    let mut figures = finish_deliveries(figures, &counters, &totals, per_message);
    figures["messages_per_sec"] = json!(round(
        figures["deliveries_per_sec"].as_f64().unwrap_or(0.0) / size as f64,
        0
    ));
    let params = json!({
        "clients": clients, "rooms": room_count, "room_size": size, "rate_per_client": rate,
        "duration_s": args.duration, "warmup_s": args.warmup,
    });
    Ok((params, figures))
}

/// idle: RSS per connection and the CPU the heartbeat costs.
async fn idle(
    args: &Args,
    server: &Server,
    clients: usize,
    accounts: setup::Provisioned,
) -> Result<(Value, Value)> {
    let users = accounts.tokens.len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pid = server.pid.map(|p| p.to_string());
    let rss = |pid: &Option<String>| pid.as_deref().and_then(|p| stats::rss_kib(p).ok());
    let before = rss(&pid);
    let specs = (0..clients)
        .map(|c| SocketSpec {
            token: accounts.tokens[c % users].clone(),
            rooms: Vec::new(),
            plan: SendPlan::None,
            counting: true,
        })
        .collect();
    let mut fleet = Fleet::new();
    fleet.connect(args, &server.endpoint, specs).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss(&pid);
    eprintln!("load: heartbeat window of {} s", args.window);
    let cpu = CpuWindow::start(server.pid)?;
    tokio::time::sleep(Duration::from_secs_f64(args.window)).await;
    let cpu = cpu.stop()?;
    let after_window = rss(&pid);
    let totals = fleet.stop().await?;
    let per_conn = match (before, after) {
        (Some(b), Some(a)) => Some(round(a.saturating_sub(b) as f64 / clients as f64, 2)),
        _ => None,
    };
    let figures = json!({
        "rss_per_conn_kib": per_conn,
        "server_rss_before_mib": before.map(|k| round(k as f64 / 1024.0, 1)),
        "server_rss_after_mib": after.map(|k| round(k as f64 / 1024.0, 1)),
        "server_rss_after_window_mib": after_window.map(|k| round(k as f64 / 1024.0, 1)),
        "heartbeat_cpu_pct": cpu.server_pct,
        "harness_cpu_pct": cpu.harness_pct,
        "pings_answered": totals.pings,
        "sockets_failed": totals.failed,
        "first_socket_failure": totals.first_failure,
    });
    let params = json!({ "clients": clients, "users": users, "window_s": args.window });
    Ok((params, figures))
}

/// ingest: closed-loop senders (send, wait for the ack, send again), each rotating over its
/// share of the socket pool so no socket goes over parley's per-socket rate.
fn ingest_pool(args: &Args) -> usize {
    let senders = args.senders.unwrap_or(10).max(1);
    args.sockets
        .unwrap_or((senders * 100).min(4000))
        .max(senders)
}

async fn ingest(
    args: &Args,
    server: &Server,
    accounts: setup::Provisioned,
) -> Result<(Value, Value)> {
    let senders = args.senders.unwrap_or(10).max(1);
    let pool = accounts.tokens.len();
    let mut fleet = Fleet::new();
    let mut commands = Vec::with_capacity(pool);
    let specs = (0..pool)
        .map(|s| {
            let (tx, rx) = mpsc::channel(4);
            commands.push((accounts.rooms[s], tx));
            SocketSpec {
                token: accounts.tokens[s].clone(),
                rooms: vec![accounts.rooms[s]],
                plan: SendPlan::Commands(rx),
                counting: true,
            }
        })
        .collect();
    fleet.connect(args, &server.endpoint, specs).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Sender j owns sockets j, j + senders, j + 2 * senders, …
    let mut shares: Vec<Vec<(u64, mpsc::Sender<client::Command>)>> = vec![Vec::new(); senders];
    for (s, socket) in commands.into_iter().enumerate() {
        shares[s % senders].push(socket);
    }
    let warmup_end = Instant::now() + Duration::from_secs_f64(args.warmup);
    let end = warmup_end + Duration::from_secs_f64(args.duration);
    let mut drivers = JoinSet::new();
    for share in shares {
        drivers.spawn(drive_sender(share, warmup_end, end));
    }
    tokio::time::sleep_until(warmup_end.into()).await;
    let ok0 = fleet.counters.ok();
    let cpu = CpuWindow::start(server.pid)?;
    tokio::time::sleep_until(end.into()).await;
    let ok1 = fleet.counters.ok();
    let cpu = cpu.stop()?;
    let rss = server_rss_mib(server);
    let mut throttled = Duration::ZERO;
    let mut failures = 0u64;
    while let Some(driver) = drivers.join_next().await {
        let (waited, failed) = driver??;
        throttled += waited;
        failures += failed;
    }
    let counters = fleet.counters.clone();
    let totals = fleet.stop().await?;
    let acks = stats::merged_ack();
    let figures = json!({
        "messages_per_sec": round((ok1 - ok0) as f64 / cpu.seconds, 0),
        "ack_p50_ms": quantile_ms(&acks, 0.5),
        "ack_p99_ms": quantile_ms(&acks, 0.99),
        "ack_p999_ms": quantile_ms(&acks, 0.999),
        "ack_max_ms": quantile_ms(&acks, 1.0),
        "server_cpu_pct": cpu.server_pct,
        "server_rss_mib": rss,
        "harness_cpu_pct": cpu.harness_pct,
        "send_errors": counters.err() + failures,
        "last_send_error": counters.last_error.lock().expect("error slot").clone(),
        "harness_throttled_pct": round(
            throttled.as_secs_f64() / (senders as f64 * (args.duration + args.warmup)) * 100.0, 2),
        "sockets_failed": totals.failed,
        "first_socket_failure": totals.first_failure,
    });
    let params = json!({
        "senders": senders, "sockets": pool, "duration_s": args.duration, "warmup_s": args.warmup,
        "harness_cap_per_sec": pool as f64 * SOCKET_RATE,
    });
    Ok((params, figures))
}

/// The harness's own per-socket pace, under parley's 20 events/s.
const SOCKET_RATE: f64 = 19.0;
/// Tokens a socket may bank: small, so a run measures the steady state, not the burst.
const SOCKET_BURST: f64 = 3.0;

/// One closed-loop sender: returns the time it waited for a socket under the rate and the
/// number of refused or lost sends.
async fn drive_sender(
    sockets: Vec<(u64, mpsc::Sender<client::Command>)>,
    warmup_end: Instant,
    end: Instant,
) -> Result<(Duration, u64)> {
    let mut tokens: Vec<(f64, Instant)> = vec![(1.0, Instant::now()); sockets.len()];
    let mut waited = Duration::ZERO;
    let mut failed = 0;
    let mut next = 0usize;
    while Instant::now() < end {
        // The next socket in rotation with a token; else wait for the soonest one.
        let now = Instant::now();
        let mut chosen = None;
        let mut soonest = Duration::MAX;
        for k in 0..sockets.len() {
            let i = (next + k) % sockets.len();
            let (level, at) = &mut tokens[i];
            *level =
                (*level + now.duration_since(*at).as_secs_f64() * SOCKET_RATE).min(SOCKET_BURST);
            *at = now;
            if *level >= 1.0 {
                chosen = Some(i);
                break;
            }
            soonest = soonest.min(Duration::from_secs_f64((1.0 - *level) / SOCKET_RATE));
        }
        let Some(i) = chosen else {
            waited += soonest;
            tokio::time::sleep(soonest).await;
            continue;
        };
        tokens[i].0 -= 1.0;
        next = i + 1;
        let (room, tx) = &sockets[i];
        let (acked, ack) = oneshot::channel();
        let command = client::Command {
            room: *room,
            measured: now >= warmup_end,
            acked,
        };
        if tx.send(command).await.is_err() {
            bail!("a sender socket closed");
        }
        match tokio::time::timeout(Duration::from_secs(30), ack).await {
            Ok(Ok(true)) => {}
            _ => failed += 1,
        }
    }
    Ok((waited, failed))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct HistorySeed {
    username: String,
    password: String,
    room: u64,
    messages: u64,
}

/// history: random-cursor pages of a big room over keep-alive HTTP connections.
async fn history(
    args: &Args,
    server: &Server,
    accounts: Option<setup::Provisioned>,
    reuse: Option<HistorySeed>,
) -> Result<(Value, Value)> {
    let (token, room, seeded_s) = seed_history(args, server, accounts, reuse).await?;
    let limit = args.limit;
    let messages = args.messages;
    let warmup_end = Instant::now() + Duration::from_secs_f64(args.warmup);
    let end = warmup_end + Duration::from_secs_f64(args.duration);
    let mut workers = JoinSet::new();
    for w in 0..args.concurrency.max(1) {
        let endpoint = server.endpoint.clone();
        let token = token.clone();
        workers.spawn(async move {
            let mut http = client::Http::connect(source_addr(w as u32), &endpoint).await?;
            let mut hist = stats::new_histogram();
            let mut pages = 0u64;
            let mut checked = false;
            while Instant::now() < end {
                let cursor = limit + 1 + rand::random::<u64>() % (messages - limit).max(1);
                let path = format!("/api/rooms/{room}/messages?cursor={cursor}&limit={limit}");
                let sent = Instant::now();
                let response = http.get(&path, Some(&token)).await?;
                let took = sent.elapsed();
                if response.status != 200 {
                    bail!("GET {path} answered {}", response.status);
                }
                if !checked {
                    let page: Value = serde_json::from_slice(&response.body)?;
                    let items = page["items"].as_array().map_or(0, Vec::len) as u64;
                    if items != limit {
                        bail!("GET {path} gave {items} items, not {limit}");
                    }
                    checked = true;
                }
                if sent >= warmup_end {
                    hist.saturating_record(took.as_nanos() as u64);
                    pages += 1;
                }
            }
            anyhow::Ok((hist, pages))
        });
    }
    tokio::time::sleep_until(warmup_end.into()).await;
    let cpu = CpuWindow::start(server.pid)?;
    tokio::time::sleep_until(end.into()).await;
    let cpu = cpu.stop()?;
    let mut all = stats::new_histogram();
    let mut pages = 0;
    while let Some(worker) = workers.join_next().await {
        let (hist, n) = worker??;
        all.add(&hist)?;
        pages += n;
    }
    let figures = json!({
        "pages_per_sec": round(pages as f64 / cpu.seconds, 0),
        "page_p50_ms": us_ms(&all, 0.5),
        "page_p99_ms": us_ms(&all, 0.99),
        "page_p999_ms": us_ms(&all, 0.999),
        "server_cpu_pct": cpu.server_pct,
        "server_rss_mib": server_rss_mib(server),
        "harness_cpu_pct": cpu.harness_pct,
        "seed_s": seeded_s,
    });
    let params = json!({
        "messages": messages, "limit": limit, "concurrency": args.concurrency,
        "duration_s": args.duration, "warmup_s": args.warmup, "room": room,
    });
    Ok((params, figures))
}

/// Milliseconds with microsecond resolution (history latencies are well under a millisecond).
fn us_ms(h: &hdrhistogram::Histogram<u64>, q: f64) -> Option<f64> {
    (!h.is_empty()).then(|| round(h.value_at_quantile(q) as f64 / 1e6, 3))
}

/// The seeded history room recorded in `--data-dir`, when parley is started here on it and
/// it holds as many messages as asked for.
fn history_meta(args: &Args) -> Option<HistorySeed> {
    if args.scenario != Scenario::History || args.target != Target::Parley || args.url.is_some() {
        return None;
    }
    let path = args.data_dir.as_ref()?.join("bench-history.json");
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice::<HistorySeed>(&bytes)
        .ok()
        .filter(|m| m.messages == args.messages)
}

/// The history room: reused from `--data-dir` when it was seeded with as many messages
/// before, else created and filled through `POST /api/rooms/{id}/messages` from 32 keep-alive
/// connections (the store commits them in groups). Returns a token, the room and the seconds
/// seeding took (0 when reused).
async fn seed_history(
    args: &Args,
    server: &Server,
    accounts: Option<setup::Provisioned>,
    reuse: Option<HistorySeed>,
) -> Result<(String, u64, f64)> {
    let endpoint = &server.endpoint;
    if let Some(meta) = reuse {
        let mut http = client::Http::connect(source_addr(0), endpoint).await?;
        let login = setup::post_json(
            &mut http,
            "/api/auth/login",
            None,
            &json!({"username": meta.username, "password": meta.password}),
            200,
        )
        .await?;
        let token = login["token"].as_str().context("no token")?.to_owned();
        eprintln!(
            "load: reusing room {} with {} messages",
            meta.room, meta.messages
        );
        return Ok((token, meta.room, 0.0));
    }
    let accounts = accounts.context("no account for the history room")?;
    let token = accounts.tokens[0].clone();
    let room = accounts.rooms[0];
    let started = Instant::now();
    let total = args.messages;
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut workers = JoinSet::new();
    for w in 0..32u32 {
        let endpoint = endpoint.clone();
        let token = token.clone();
        let next = next.clone();
        workers.spawn(async move {
            let mut http = client::Http::connect(source_addr(w), &endpoint).await?;
            let path = format!("/api/rooms/{room}/messages");
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return anyhow::Ok(());
                }
                if i > 0 && i.is_multiple_of(100_000) {
                    eprintln!("load: seeded {i}/{total}");
                }
                let body = json!({ "content": format!("history message {i} with some ordinary chat text in it") });
                setup::post_json(&mut http, &path, Some(&token), &body, 201).await?;
            }
        });
    }
    while let Some(worker) = workers.join_next().await {
        worker??;
    }
    let seeded = started.elapsed().as_secs_f64();
    eprintln!("load: seeded {total} messages in {seeded:.1} s");
    if let (Target::Parley, None, Some(dir), Some(username)) = (
        server.target,
        &args.url,
        &args.data_dir,
        accounts.usernames.first(),
    ) {
        let seed = HistorySeed {
            username: username.clone(),
            password: setup::BENCH_PASSWORD.to_owned(),
            room,
            messages: total,
        };
        std::fs::write(
            dir.join("bench-history.json"),
            serde_json::to_vec_pretty(&seed)?,
        )?;
    }
    Ok((token, room, round(seeded, 1)))
}
