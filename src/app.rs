//! The running application's shared state: the config and the chat rules over the open store.
//! Passed around as a cheap clone (`Arc` inside), never a global.

use std::sync::Arc;

use crate::chat::Chat;
use crate::config::Config;
use crate::store::{Store, StoreError};

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
    chat: Chat,
}

impl App {
    /// Creates the data directory if needed and opens the store in it.
    pub fn open(config: Config) -> Result<App, OpenError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| OpenError::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        })?;
        let store = Store::open(&config.database_path())?;
        let chat = Chat::new(store, &config);
        Ok(App {
            inner: Arc::new(Inner { config, chat }),
        })
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn chat(&self) -> &Chat {
        &self.inner.chat
    }

    /// Finishes queued writes and stops the store's writer.
    pub async fn close(&self) {
        self.inner.chat.store().close().await;
    }
}
