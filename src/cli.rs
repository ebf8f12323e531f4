//! The command line: `parley [serve]`, `parley user add|passwd|list|disable`, `parley backup`,
//! `parley export`. Every command works while a server runs on the same data directory (the
//! store is opened in redb's multi-process mode).

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::app::App;
use crate::auth::{PasswordHasher, new_token};
use crate::chat::validate;
use crate::chat::views::MessageView;
use crate::config::{CONFIG_FILE_ENV, Config, LogFormat, Overrides, Registration, split_list};
use crate::ids::{MessageSeq, RoomId};
use crate::store::{Admission, Store};

const ENV_HELP: &str = "\
Configuration is layered: defaults < TOML file (--config or PARLEY_CONFIG) < environment < flags.
Environment variables: PARLEY_LISTEN, PARLEY_DATA_DIR, PARLEY_REGISTRATION, PARLEY_LOG_FORMAT,
PARLEY_LOG, PARLEY_SESSION_DAYS, PARLEY_MAX_CONNECTIONS, PARLEY_TRUST_PROXY, PARLEY_PING_INTERVAL_MS,
PARLEY_PING_TIMEOUT_MS, PARLEY_MAX_PAYLOAD, PARLEY_RECOVERY_WINDOW_SECS, PARLEY_ALLOWED_ORIGINS,
PARLEY_PRESENCE_GRACE_MS, PARLEY_TLS_CERT, PARLEY_TLS_KEY, PARLEY_METRICS_TOKEN.
With no command, parley runs `serve`.";

#[derive(Parser, Debug)]
#[command(name = "parley", version, about = "Self-hosted team chat in one binary", after_help = ENV_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Args, Debug, Default)]
pub struct GlobalArgs {
    /// TOML config file [env: PARLEY_CONFIG]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory holding parley.redb [default: ./parley-data]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log format: text or json [default: text]
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Log filter, e.g. info or parley=debug [default: info]
    #[arg(long = "log", global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the chat server (the default command)
    Serve(ServeArgs),
    /// Manage accounts
    #[command(subcommand)]
    User(UserCommand),
    /// Write a consistent copy of the database to PATH (safe while the server runs)
    Backup {
        /// Where to write the copy (must not exist)
        path: PathBuf,
    },
    /// Print a room's messages as JSON lines, oldest first
    Export {
        /// The room's id
        #[arg(long)]
        room: u64,
    },
    /// Serve the reference behaviour of the official Engine.IO/Socket.IO protocol test suites
    #[command(hide = true)]
    ProtocolConformance {
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: SocketAddr,
    },
}

#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Who may create accounts: open, invite or closed [default: open]
    #[arg(long, value_name = "MODE")]
    pub registration: Option<Registration>,
    /// Days a session lasts without use [default: 30]
    #[arg(long, value_name = "DAYS")]
    pub session_days: Option<u32>,
    /// Most open connections [default: 10000]
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Trust X-Forwarded-For (only behind your own reverse proxy)
    #[arg(long)]
    pub trust_proxy: bool,
    /// Realtime heartbeat: ping interval in ms [default: 25000]
    #[arg(long, value_name = "MS")]
    pub ping_interval_ms: Option<u64>,
    /// Realtime heartbeat: pong deadline in ms [default: 20000]
    #[arg(long, value_name = "MS")]
    pub ping_timeout_ms: Option<u64>,
    /// Largest realtime message in bytes [default: 1000000]
    #[arg(long, value_name = "BYTES")]
    pub max_payload: Option<usize>,
    /// Seconds a dropped socket may reconnect and recover missed events [default: 120]
    #[arg(long, value_name = "SECS")]
    pub recovery_window_secs: Option<u64>,
    /// Other origins allowed to open realtime connections, comma-separated
    #[arg(long, value_name = "ORIGINS")]
    pub allowed_origins: Option<String>,
    /// Ms after a user's last connection closes before they show offline [default: 3000]
    #[arg(long, value_name = "MS")]
    pub presence_grace_ms: Option<u64>,
    /// PEM certificate chain: serve HTTPS (with --tls-key); SIGHUP reloads it
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Bearer token required for GET /metrics (default: loopback clients only)
    #[arg(long, value_name = "TOKEN")]
    pub metrics_token: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create an account (prints a generated password unless --password-stdin)
    Add {
        username: String,
        /// Make the account a server admin
        #[arg(long)]
        admin: bool,
        /// Display name [default: the username]
        #[arg(long)]
        display_name: Option<String>,
        /// Read the password from the first line of standard input
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set an account's password and end its sessions
    Passwd {
        username: String,
        /// Read the password from the first line of standard input
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts
    List,
    /// Disable an account (ends its sessions); --enable reverses it
    Disable {
        username: String,
        #[arg(long)]
        enable: bool,
    },
}

impl Cli {
    /// The layered config for this invocation.
    pub fn config(&self) -> anyhow::Result<Config> {
        let serve = match &self.command {
            Some(Command::Serve(args)) => Some(args),
            _ => None,
        };
        let flags = Overrides {
            listen: serve.and_then(|s| s.listen),
            data_dir: self.global.data_dir.clone(),
            registration: serve.and_then(|s| s.registration),
            log_format: self.global.log_format,
            log_level: self.global.log_level.clone(),
            session_days: serve.and_then(|s| s.session_days),
            max_connections: serve.and_then(|s| s.max_connections),
            trust_proxy: serve.and_then(|s| s.trust_proxy.then_some(true)),
            ping_interval_ms: serve.and_then(|s| s.ping_interval_ms),
            ping_timeout_ms: serve.and_then(|s| s.ping_timeout_ms),
            max_payload: serve.and_then(|s| s.max_payload),
            recovery_window_secs: serve.and_then(|s| s.recovery_window_secs),
            allowed_origins: serve.and_then(|s| s.allowed_origins.as_deref().map(split_list)),
            presence_grace_ms: serve.and_then(|s| s.presence_grace_ms),
            tls_cert: serve.and_then(|s| s.tls_cert.clone()),
            tls_key: serve.and_then(|s| s.tls_key.clone()),
            metrics_token: serve.and_then(|s| s.metrics_token.clone()),
        };
        let file = self
            .global
            .config
            .clone()
            .or_else(|| std::env::var_os(CONFIG_FILE_ENV).map(PathBuf::from));
        Ok(Config::layered(
            file.as_deref(),
            |name| std::env::var(name).ok(),
            &flags,
        )?)
    }
}

pub async fn run(command: Option<Command>, config: Config) -> anyhow::Result<()> {
    match command {
        None | Some(Command::Serve(_)) => serve(config).await,
        Some(Command::User(user)) => user_command(user, &config).await,
        Some(Command::Backup { path }) => {
            let source = config.database_path();
            if !source.exists() {
                bail!("no database at {}", source.display());
            }
            let target = path.clone();
            let copied =
                tokio::task::spawn_blocking(move || crate::store::backup_to(&source, &target))
                    .await??;
            println!("backed up {copied} records to {}", path.display());
            Ok(())
        }
        Some(Command::Export { room }) => export(&config, RoomId(room)).await,
        Some(Command::ProtocolConformance { listen }) => {
            Ok(crate::conformance::serve(listen).await?)
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let app = App::open(config.clone())?;
    tracing::info!(
        data_dir = %config.data_dir.display(),
        registration = config.registration.as_str(),
        tls = app.tls().is_some(),
        "parley {} starting",
        env!("CARGO_PKG_VERSION")
    );
    spawn_watchdog(&app);
    spawn_tls_reloader(&app);
    crate::systemd::notify("READY=1");
    let signalled = shutdown_signal();
    let stopping = async {
        signalled.await;
        crate::systemd::notify("STOPPING=1");
    };
    crate::server::run(listener, app, stopping).await?;
    Ok(())
}

/// Pings systemd's watchdog (when it asked for pings) while the store answers and the accept
/// loop comes round; a stuck server stops pinging and systemd restarts it.
fn spawn_watchdog(app: &App) {
    let Some(every) = crate::systemd::watchdog_interval() else {
        return;
    };
    let app = app.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if app.healthy(every.max(crate::server::LIVENESS_TICK * 3)) {
                crate::systemd::notify("WATCHDOG=1");
            } else {
                tracing::error!("unhealthy: not pinging the systemd watchdog");
            }
        }
    });
}

/// Handles SIGHUP (`systemctl reload`): reloads the TLS certificate and key when HTTPS is on,
/// and otherwise just says there is nothing to reload. Without a handler, SIGHUP's default
/// action would end the process.
fn spawn_tls_reloader(app: &App) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let tls = app.tls().cloned();
        // Installed before the server starts listening, for the same reason as shutdown_signal.
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; reload disabled");
            return;
        };
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                match &tls {
                    None => tracing::info!("SIGHUP: nothing to reload (no TLS configured)"),
                    Some(tls) => match tls.reload() {
                        Ok(()) => tracing::info!("TLS certificate reloaded"),
                        Err(e) => {
                            tracing::error!(error = %e, "TLS reload failed; keeping the old certificate")
                        }
                    },
                }
            }
        });
    }
}

/// Resolves on Ctrl-C or SIGTERM (what systemd sends). The handlers are installed when this is
/// called, not when the future is first polled, so a signal sent the moment the "listening"
/// line appears is already ours (otherwise its default action would kill the process).
fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let handlers = signal(SignalKind::terminate()).and_then(|terminate| {
            signal(SignalKind::interrupt()).map(|interrupt| (terminate, interrupt))
        });
        async move {
            match handlers {
                Ok((mut terminate, mut interrupt)) => tokio::select! {
                    _ = terminate.recv() => tracing::info!("SIGTERM received"),
                    _ = interrupt.recv() => tracing::info!("interrupt received"),
                },
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM/SIGINT");
                    std::future::pending::<()>().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("interrupt received");
    }
}

fn open_store(config: &Config) -> anyhow::Result<Store> {
    let path = config.database_path();
    if !path.exists() {
        bail!(
            "no database at {} (start the server once, or pass --data-dir)",
            path.display()
        );
    }
    Ok(Store::open(&path)?)
}

/// The password from stdin, or a generated one (printed by the caller).
fn read_password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if !from_stdin {
        let (token, _) = new_token();
        return Ok((token[..20].to_owned(), true));
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    validate::password(&password, "password").map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((password, false))
}

async fn user_command(command: UserCommand, config: &Config) -> anyhow::Result<()> {
    // `add` may create the database (an operator setting up before the first start); every
    // other command needs one that exists.
    let store = match &command {
        UserCommand::Add { .. } => {
            std::fs::create_dir_all(&config.data_dir)
                .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
            Store::open(&config.database_path())?
        }
        _ => open_store(config)?,
    };
    let result = user_command_on(&store, command).await;
    store.close().await;
    result
}

async fn user_command_on(store: &Store, command: UserCommand) -> anyhow::Result<()> {
    let hasher = PasswordHasher::new(1);
    let find = |username: &str| -> anyhow::Result<crate::ids::UserId> {
        store
            .snapshot()?
            .user_id_by_name(username)?
            .with_context(|| format!("no user named {username:?}"))
    };
    match command {
        UserCommand::Add {
            username,
            admin,
            display_name,
            password_stdin,
        } => {
            let username = validate::username(&username).map_err(|e| anyhow::anyhow!("{e}"))?;
            let display_name = match display_name {
                Some(name) => validate::display_name(&name).map_err(|e| anyhow::anyhow!("{e}"))?,
                None => username.clone(),
            };
            let (password, generated) = read_password(password_stdin)?;
            let hash = hasher.hash(password.clone()).await?;
            let (id, user) = store
                .create_user(username, display_name, hash, Admission::Operator { admin })
                .await?;
            println!(
                "created user {} (id {id}{})",
                user.username,
                if user.is_admin { ", admin" } else { "" }
            );
            if generated {
                println!("password: {password}");
            }
        }
        UserCommand::Passwd {
            username,
            password_stdin,
        } => {
            let id = find(&username)?;
            let (password, generated) = read_password(password_stdin)?;
            let hash = hasher.hash(password.clone()).await?;
            store.set_password(id, hash, None).await?;
            println!("password changed for {username}; its sessions were ended");
            if generated {
                println!("password: {password}");
            }
        }
        UserCommand::List => {
            let users = store.snapshot()?.all_users()?;
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:>6}  {:<32}  {:<24}  {:<5}  {:<8}  CREATED",
                "ID", "USERNAME", "DISPLAY NAME", "ADMIN", "DISABLED"
            )?;
            for (id, user) in users {
                writeln!(
                    out,
                    "{:>6}  {:<32}  {:<24}  {:<5}  {:<8}  {}",
                    id.0,
                    user.username,
                    user.display_name,
                    if user.is_admin { "yes" } else { "no" },
                    if user.disabled { "yes" } else { "no" },
                    user.created_at.to_rfc3339()
                )?;
            }
        }
        UserCommand::Disable { username, enable } => {
            let id = find(&username)?;
            store.set_disabled(id, !enable).await?;
            println!(
                "{username} is {}",
                if enable {
                    "enabled"
                } else {
                    "disabled; its sessions were ended"
                }
            );
        }
    }
    Ok(())
}

async fn export(config: &Config, room: RoomId) -> anyhow::Result<()> {
    const PAGE: usize = 500;
    let store = open_store(config)?;
    let snapshot = store.snapshot()?;
    snapshot
        .room(room)?
        .with_context(|| format!("no room with id {room}"))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut after = MessageSeq(0);
    loop {
        let page = snapshot.messages_after(room, after, PAGE)?;
        let Some((last, _)) = page.last() else { break };
        after = *last;
        for (seq, message) in &page {
            serde_json::to_writer(&mut out, &MessageView::new(room, *seq, message))?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    drop(snapshot);
    store.close().await;
    Ok(())
}
