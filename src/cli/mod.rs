//! The command line: `parley [serve]`, `parley user add|passwd|list|disable`, `parley backup`,
//! `parley export`. Every command works while a server runs on the same data directory (the
//! store is opened in redb's multi-process mode). This file holds the flags and the dispatch;
//! `serve.rs` runs the server, `admin.rs` the commands that work on the store directly.

mod admin;
mod serve;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::bail;
use clap::{Args, Parser, Subcommand};

use crate::config::{CONFIG_FILE_ENV, Config, LogFormat, Overrides, Registration, split_list};
use crate::ids::RoomId;

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
        None | Some(Command::Serve(_)) => serve::serve(config).await,
        Some(Command::User(user)) => admin::user_command(user, &config).await,
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
        Some(Command::Export { room }) => admin::export(&config, RoomId(room)).await,
        Some(Command::ProtocolConformance { listen }) => {
            Ok(crate::conformance::serve(listen).await?)
        }
    }
}
