//! The running application's shared state: the config and the chat rules over the open store.
//! Passed around as a cheap clone (`Arc` inside), never a global.

use std::sync::Arc;
use std::time::Duration;

use crate::chat::Chat;
use crate::config::Config;
use crate::engineio::EngineConfig;
use crate::feed::Dispatcher;
use crate::realtime::{self, SocketEngine};
use crate::store::{Store, StoreError};

/// Committed batches queued for the realtime fanout before the store writer waits for it.
const FANOUT_FEED_DEPTH: usize = 1024;
/// How long WebSockets get to send their close frames at shutdown.
const REALTIME_SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    /// HTTPS certificate and key, when configured.
    tls: Option<Arc<crate::tls::Tls>>,
    /// When the accept loop last came round (unix ms): the watchdog's proof it is not stuck.
    accept_loop_alive_ms: std::sync::atomic::AtomicI64,
    /// HTTP requests answered, by route pattern and status (for `/metrics`).
    http_requests: std::sync::Mutex<std::collections::HashMap<(&'static str, u16), u64>>,
    config: Config,
    chat: Arc<Chat>,
    /// The Socket.IO endpoint (Engine.IO sessions and the realtime actor behind them).
    realtime: Arc<SocketEngine>,
}

impl App {
    /// Creates the data directory if needed, opens the store in it and starts the realtime
    /// layer. Must run inside a tokio runtime.
    pub fn open(config: Config) -> Result<App, OpenError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| OpenError::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        })?;
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(Arc::new(crate::tls::Tls::load(cert, key)?)),
            _ => None,
        };
        let (store, commits) = Store::open_with_feed(&config.database_path())?;
        let chat = Arc::new(Chat::new(store, &config));
        chat.spawn_session_sweeper();
        let mut feed = Dispatcher::new();
        let fanout = feed.subscribe_lossless(FANOUT_FEED_DEPTH);
        feed.start(commits);
        let realtime = realtime::start(
            Arc::clone(&chat),
            fanout,
            EngineConfig {
                ping_interval: Duration::from_millis(config.ping_interval_ms),
                ping_timeout: Duration::from_millis(config.ping_timeout_ms),
                max_payload: config.max_payload,
                ..EngineConfig::default()
            },
            Duration::from_secs(config.recovery_window_secs),
            Duration::from_millis(config.presence_grace_ms),
        );
        Ok(App {
            inner: Arc::new(Inner {
                tls,
                accept_loop_alive_ms: std::sync::atomic::AtomicI64::new(
                    crate::clock::Timestamp::now().0,
                ),
                http_requests: std::sync::Mutex::default(),
                config,
                chat,
                realtime,
            }),
        })
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn chat(&self) -> &Chat {
        &self.inner.chat
    }

    pub fn tls(&self) -> Option<&Arc<crate::tls::Tls>> {
        self.inner.tls.as_ref()
    }

    /// Called by the accept loop each time round.
    pub fn mark_accept_loop_alive(&self) {
        self.inner.accept_loop_alive_ms.store(
            crate::clock::Timestamp::now().0,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// The store answers and the accept loop came round within `within`.
    pub fn healthy(&self, within: Duration) -> bool {
        let last = self
            .inner
            .accept_loop_alive_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        let loop_alive = crate::clock::Timestamp::now().0 - last <= within.as_millis() as i64;
        let store_answers = self
            .inner
            .chat
            .store()
            .snapshot()
            .and_then(|s| s.ping())
            .is_ok();
        loop_alive && store_answers
    }

    pub fn count_request(&self, route: &'static str, status: u16) {
        if let Ok(mut counts) = self.inner.http_requests.lock() {
            *counts.entry((route, status)).or_default() += 1;
        }
    }

    pub fn request_counts(&self) -> Vec<((&'static str, u16), u64)> {
        let mut counts: Vec<_> = self
            .inner
            .http_requests
            .lock()
            .map(|c| c.iter().map(|(k, v)| (*k, *v)).collect())
            .unwrap_or_default();
        counts.sort_unstable();
        counts
    }

    pub fn realtime(&self) -> &Arc<SocketEngine> {
        &self.inner.realtime
    }

    /// Closes every realtime session, finishes queued writes and stops the store's writer.
    pub async fn close(&self) {
        self.inner.realtime.shutdown(REALTIME_SHUTDOWN_GRACE).await;
        self.inner.chat.store().close().await;
    }
}
