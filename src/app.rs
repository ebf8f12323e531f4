//! The running application's shared state: the config and the chat rules over the open store.
//! Passed around as a cheap clone (`Arc` inside), never a global.

use std::sync::Arc;
use std::time::Duration;

use crate::chat::Chat;
use crate::config::Config;
use crate::engineio::EngineConfig;
use crate::realtime::{self, SocketEngine};
use crate::store::{Store, StoreError};

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
}

#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
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
        let (store, feed) = Store::open_with_feed(&config.database_path())?;
        let chat = Arc::new(Chat::new(store, &config));
        let realtime = realtime::start(
            Arc::clone(&chat),
            feed,
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

    pub fn realtime(&self) -> &Arc<SocketEngine> {
        &self.inner.realtime
    }

    /// Closes every realtime session, finishes queued writes and stops the store's writer.
    pub async fn close(&self) {
        self.inner.realtime.shutdown(REALTIME_SHUTDOWN_GRACE).await;
        self.inner.chat.store().close().await;
    }
}
