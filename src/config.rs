//! The one `Config`, built in layers: defaults < TOML file < `PARLEY_*` environment < flags.
//!
//! This module is pure: the environment is passed in as a lookup function so tests can drive
//! every layer. Must not: open files other than the config file, or know about other modules.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "parley-data";
pub const DEFAULT_SESSION_DAYS: u32 = 30;
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
pub const MAX_SESSION_DAYS: u32 = 3650;
pub const DEFAULT_PING_INTERVAL_MS: u64 = 25_000;
pub const DEFAULT_PING_TIMEOUT_MS: u64 = 20_000;
pub const DEFAULT_MAX_PAYLOAD: usize = 1_000_000;
pub const DEFAULT_RECOVERY_WINDOW_SECS: u64 = 120;
pub const DEFAULT_PRESENCE_GRACE_MS: u64 = 3_000;

/// Who may create accounts. The first account can always be created (it becomes the admin).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    #[default]
    Open,
    Invite,
    Closed,
}

impl FromStr for Registration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "open" => Ok(Registration::Open),
            "invite" => Ok(Registration::Invite),
            "closed" => Ok(Registration::Closed),
            other => Err(format!("expected open, invite or closed, got {other:?}")),
        }
    }
}

impl Registration {
    pub fn as_str(self) -> &'static str {
        match self {
            Registration::Open => "open",
            Registration::Invite => "invite",
            Registration::Closed => "closed",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (coloured when stderr is a terminal).
    #[default]
    Text,
    /// One JSON object per line, for journald or a log shipper.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("expected text or json, got {other:?}")),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Directory holding `parley.redb` (created if missing).
    pub data_dir: PathBuf,
    /// `open`, `invite` or `closed`.
    pub registration: Registration,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// A `tracing` filter such as `info` or `parley=debug,info`.
    pub log_level: String,
    /// Sessions expire after this many days without use.
    pub session_days: u32,
    /// Open connections beyond this are closed at accept.
    pub max_connections: usize,
    /// Take the client address from `X-Forwarded-For` (only behind a reverse proxy you run).
    pub trust_proxy: bool,
    /// Engine.IO heartbeat: the server pings this often…
    pub ping_interval_ms: u64,
    /// …and closes a connection whose pong is this late.
    pub ping_timeout_ms: u64,
    /// Largest realtime message (and polling POST body) in bytes.
    pub max_payload: usize,
    /// How long a dropped socket may come back and recover what it missed.
    pub recovery_window_secs: u64,
    /// Origins other than the server's own that may open realtime connections.
    pub allowed_origins: Vec<String>,
    /// How long after a user's last connection closes they are shown offline.
    pub presence_grace_ms: u64,
    /// PEM certificate chain for HTTPS (with `tls_key`); reloaded on SIGHUP.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS (with `tls_cert`).
    pub tls_key: Option<PathBuf>,
    /// When set, `GET /metrics` needs `Authorization: Bearer <token>`; when unset, only
    /// clients on the loopback interface may read it.
    pub metrics_token: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            registration: Registration::Open,
            log_format: LogFormat::Text,
            log_level: "info".to_owned(),
            session_days: DEFAULT_SESSION_DAYS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            trust_proxy: false,
            ping_interval_ms: DEFAULT_PING_INTERVAL_MS,
            ping_timeout_ms: DEFAULT_PING_TIMEOUT_MS,
            max_payload: DEFAULT_MAX_PAYLOAD,
            recovery_window_secs: DEFAULT_RECOVERY_WINDOW_SECS,
            allowed_origins: Vec::new(),
            presence_grace_ms: DEFAULT_PRESENCE_GRACE_MS,
            tls_cert: None,
            tls_key: None,
            metrics_token: None,
        }
    }
}

/// Values given on the command line; `None` means "not given, keep the lower layer".
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub registration: Option<Registration>,
    pub log_format: Option<LogFormat>,
    pub log_level: Option<String>,
    pub session_days: Option<u32>,
    pub max_connections: Option<usize>,
    pub trust_proxy: Option<bool>,
    pub ping_interval_ms: Option<u64>,
    pub ping_timeout_ms: Option<u64>,
    pub max_payload: Option<usize>,
    pub recovery_window_secs: Option<u64>,
    pub allowed_origins: Option<Vec<String>>,
    pub presence_grace_ms: Option<u64>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub metrics_token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {name}: {message}")]
    Env { name: &'static str, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// Every setting's environment variable, in the order of the fields above.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("PARLEY_LISTEN", "listen"),
    ("PARLEY_DATA_DIR", "data_dir"),
    ("PARLEY_REGISTRATION", "registration"),
    ("PARLEY_LOG_FORMAT", "log_format"),
    ("PARLEY_LOG", "log_level"),
    ("PARLEY_SESSION_DAYS", "session_days"),
    ("PARLEY_MAX_CONNECTIONS", "max_connections"),
    ("PARLEY_TRUST_PROXY", "trust_proxy"),
    ("PARLEY_PING_INTERVAL_MS", "ping_interval_ms"),
    ("PARLEY_PING_TIMEOUT_MS", "ping_timeout_ms"),
    ("PARLEY_MAX_PAYLOAD", "max_payload"),
    ("PARLEY_RECOVERY_WINDOW_SECS", "recovery_window_secs"),
    ("PARLEY_ALLOWED_ORIGINS", "allowed_origins"),
    ("PARLEY_PRESENCE_GRACE_MS", "presence_grace_ms"),
    ("PARLEY_TLS_CERT", "tls_cert"),
    ("PARLEY_TLS_KEY", "tls_key"),
    ("PARLEY_METRICS_TOKEN", "metrics_token"),
];

/// `a, b,c` -> `["a", "b", "c"]` (empty pieces dropped).
pub fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Names the config file: `--config` wins over `PARLEY_CONFIG`.
pub const CONFIG_FILE_ENV: &str = "PARLEY_CONFIG";

impl Config {
    /// Builds the config: defaults < `file` < `env` < `flags`.
    pub fn layered(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        flags: &Overrides,
    ) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        config.apply_env(env)?;
        config.apply(flags);
        config.validate()?;
        Ok(config)
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parsed<T: FromStr>(name: &'static str, value: &str) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            value.trim().parse().map_err(|e: T::Err| ConfigError::Env {
                name,
                message: e.to_string(),
            })
        }
        let mut overrides = Overrides::default();
        if let Some(v) = env("PARLEY_LISTEN") {
            overrides.listen = Some(parsed("PARLEY_LISTEN", &v)?);
        }
        if let Some(v) = env("PARLEY_DATA_DIR") {
            overrides.data_dir = Some(PathBuf::from(v));
        }
        if let Some(v) = env("PARLEY_REGISTRATION") {
            overrides.registration = Some(parsed("PARLEY_REGISTRATION", &v)?);
        }
        if let Some(v) = env("PARLEY_LOG_FORMAT") {
            overrides.log_format = Some(parsed("PARLEY_LOG_FORMAT", &v)?);
        }
        if let Some(v) = env("PARLEY_LOG") {
            overrides.log_level = Some(v);
        }
        if let Some(v) = env("PARLEY_SESSION_DAYS") {
            overrides.session_days = Some(parsed("PARLEY_SESSION_DAYS", &v)?);
        }
        if let Some(v) = env("PARLEY_MAX_CONNECTIONS") {
            overrides.max_connections = Some(parsed("PARLEY_MAX_CONNECTIONS", &v)?);
        }
        if let Some(v) = env("PARLEY_TRUST_PROXY") {
            overrides.trust_proxy = Some(parsed("PARLEY_TRUST_PROXY", &v)?);
        }
        if let Some(v) = env("PARLEY_PING_INTERVAL_MS") {
            overrides.ping_interval_ms = Some(parsed("PARLEY_PING_INTERVAL_MS", &v)?);
        }
        if let Some(v) = env("PARLEY_PING_TIMEOUT_MS") {
            overrides.ping_timeout_ms = Some(parsed("PARLEY_PING_TIMEOUT_MS", &v)?);
        }
        if let Some(v) = env("PARLEY_MAX_PAYLOAD") {
            overrides.max_payload = Some(parsed("PARLEY_MAX_PAYLOAD", &v)?);
        }
        if let Some(v) = env("PARLEY_RECOVERY_WINDOW_SECS") {
            overrides.recovery_window_secs = Some(parsed("PARLEY_RECOVERY_WINDOW_SECS", &v)?);
        }
        if let Some(v) = env("PARLEY_ALLOWED_ORIGINS") {
            overrides.allowed_origins = Some(split_list(&v));
        }
        if let Some(v) = env("PARLEY_PRESENCE_GRACE_MS") {
            overrides.presence_grace_ms = Some(parsed("PARLEY_PRESENCE_GRACE_MS", &v)?);
        }
        if let Some(v) = env("PARLEY_TLS_CERT") {
            overrides.tls_cert = Some(PathBuf::from(v));
        }
        if let Some(v) = env("PARLEY_TLS_KEY") {
            overrides.tls_key = Some(PathBuf::from(v));
        }
        if let Some(v) = env("PARLEY_METRICS_TOKEN") {
            overrides.metrics_token = Some(v);
        }
        self.apply(&overrides);
        Ok(())
    }

    fn apply(&mut self, o: &Overrides) {
        if let Some(v) = o.listen {
            self.listen = v;
        }
        if let Some(v) = &o.data_dir {
            self.data_dir = v.clone();
        }
        if let Some(v) = o.registration {
            self.registration = v;
        }
        if let Some(v) = o.log_format {
            self.log_format = v;
        }
        if let Some(v) = &o.log_level {
            self.log_level = v.clone();
        }
        if let Some(v) = o.session_days {
            self.session_days = v;
        }
        if let Some(v) = o.max_connections {
            self.max_connections = v;
        }
        if let Some(v) = o.trust_proxy {
            self.trust_proxy = v;
        }
        if let Some(v) = o.ping_interval_ms {
            self.ping_interval_ms = v;
        }
        if let Some(v) = o.ping_timeout_ms {
            self.ping_timeout_ms = v;
        }
        if let Some(v) = o.max_payload {
            self.max_payload = v;
        }
        if let Some(v) = o.recovery_window_secs {
            self.recovery_window_secs = v;
        }
        if let Some(v) = &o.allowed_origins {
            self.allowed_origins = v.clone();
        }
        if let Some(v) = o.presence_grace_ms {
            self.presence_grace_ms = v;
        }
        if let Some(v) = &o.tls_cert {
            self.tls_cert = Some(v.clone());
        }
        if let Some(v) = &o.tls_key {
            self.tls_key = Some(v.clone());
        }
        if let Some(v) = &o.metrics_token {
            self.metrics_token = Some(v.clone());
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.session_days == 0 || self.session_days > MAX_SESSION_DAYS {
            return Err(ConfigError::Invalid(format!(
                "session_days must be between 1 and {MAX_SESSION_DAYS}"
            )));
        }
        if self.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "max_connections must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// Where the database file lives.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("parley.redb")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    /// docs/configuration.md must name every setting, its variable and its flag.
    #[test]
    fn documentation_covers_every_setting() {
        let doc = include_str!("../docs/configuration.md");
        let as_toml = toml::to_string(&Config {
            tls_cert: Some("c".into()),
            tls_key: Some("k".into()),
            metrics_token: Some("m".repeat(16)),
            allowed_origins: vec!["o".into()],
            ..Config::default()
        })
        .expect("serialize");
        let keys: Vec<&str> = as_toml
            .lines()
            .filter_map(|line| line.split_once(" = ").map(|(k, _)| k))
            .collect();
        assert_eq!(
            keys.len(),
            ENV_VARS.len(),
            "every setting has an environment variable"
        );
        for key in &keys {
            assert!(
                doc.contains(&format!("| `{key}` |")),
                "docs/configuration.md lacks `{key}`"
            );
            let (var, _) = ENV_VARS
                .iter()
                .find(|(_, field)| field == key)
                .unwrap_or_else(|| panic!("no environment variable for `{key}`"));
            assert!(
                doc.contains(&format!("`{var}`")),
                "docs/configuration.md lacks `{var}`"
            );
        }
        let readme = include_str!("../README.md");
        for (var, _) in ENV_VARS {
            assert!(
                readme.contains(var),
                "README's configuration table lacks {var}"
            );
        }
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = Config::layered(None, env_of(&[]), &Overrides::default()).expect("config");
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.data_dir, PathBuf::from("parley-data"));
        assert_eq!(c.registration, Registration::Open);
    }

    #[test]
    fn layers_apply_in_order_file_env_flags() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("parley.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:1000\"\ndata_dir = \"/from-file\"\nregistration = \"closed\"\nsession_days = 7\n",
        )
        .expect("write");
        let env = env_of(&[
            ("PARLEY_LISTEN", "127.0.0.1:2000"),
            ("PARLEY_DATA_DIR", "/from-env"),
        ]);
        let flags = Overrides {
            listen: Some("127.0.0.1:3000".parse().expect("addr")),
            ..Overrides::default()
        };
        let c = Config::layered(Some(&file), env, &flags).expect("config");
        assert_eq!(c.listen.port(), 3000, "flag beats env");
        assert_eq!(c.data_dir, PathBuf::from("/from-env"), "env beats file");
        assert_eq!(c.registration, Registration::Closed, "file beats default");
        assert_eq!(c.session_days, 7);
    }

    #[test]
    fn bad_values_name_their_source() {
        let err = Config::layered(
            None,
            env_of(&[("PARLEY_REGISTRATION", "sometimes")]),
            &Overrides::default(),
        )
        .expect_err("must fail");
        assert!(err.to_string().contains("PARLEY_REGISTRATION"), "{err}");

        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "listne = \"x\"\n").expect("write");
        let err = Config::layered(Some(&file), env_of(&[]), &Overrides::default())
            .expect_err("unknown key must fail");
        assert!(err.to_string().contains("listne"), "{err}");
    }
}
