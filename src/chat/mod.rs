//! The rules of parley: who may do what, input validation, and turning requests into store
//! writes. HTTP handlers (and socket events) call these functions and nothing else, so a rule
//! lives in exactly one place.
//!
//! Must not: know about HTTP, cookies, sockets or redb. Reads go through `Store::snapshot`,
//! writes through the store's typed write methods.

mod accounts;
mod error;
mod messages;
mod rooms;
pub mod sessions;
pub mod validate;
pub mod views;

pub use accounts::RegisterInput;
pub use error::ChatError;
pub use messages::{HistoryQuery, SendMessage};
pub use sessions::{SessionBinding, SessionBindings, SessionEnd};

use std::time::Duration;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::auth::{PasswordHasher, WindowLimiter};
use crate::config::{Config, Registration};
use crate::hub::Status;
use crate::ids::UserId;
use crate::store::Store;
use crate::store::records::{MemberRecord, UserRecord};
use views::{MemberView, UserView};

/// Live presence of connected users, written by the realtime layer, read when building
/// `User` views. Users not in it are offline.
pub type PresenceBoard = Arc<RwLock<HashMap<UserId, Status>>>;

/// Failed logins allowed per username per window.
pub const LOGIN_FAILURES_PER_USERNAME: u32 = 5;
/// Failed logins allowed per client address per window.
pub const LOGIN_FAILURES_PER_ADDRESS: u32 = 20;
pub const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Accounts one address may register per window.
pub const REGISTRATIONS_PER_ADDRESS: u32 = 10;
pub const REGISTRATION_WINDOW: Duration = Duration::from_secs(60 * 60);
/// A session's expiry is slid forward at most this often (each slide is a store write).
pub const SESSION_TOUCH_INTERVAL_SECS: i64 = 60 * 60;

pub struct Chat {
    store: Store,
    hasher: PasswordHasher,
    registration: Registration,
    session_secs: i64,
    /// Failed logins by lowercased username.
    login_by_user: WindowLimiter,
    /// Failed logins by client address.
    login_by_address: WindowLimiter,
    /// Registrations by client address.
    register_by_address: WindowLimiter,
    presence: PresenceBoard,
    /// Live sockets' sessions, so a session that ends ends them too.
    sessions: SessionBindings,
}

impl Chat {
    pub fn new(store: Store, config: &Config) -> Chat {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Chat {
            store,
            hasher: PasswordHasher::new(cores),
            registration: config.registration,
            session_secs: i64::from(config.session_days) * 24 * 60 * 60,
            login_by_user: WindowLimiter::new(LOGIN_FAILURES_PER_USERNAME, LOGIN_WINDOW),
            login_by_address: WindowLimiter::new(LOGIN_FAILURES_PER_ADDRESS, LOGIN_WINDOW),
            register_by_address: WindowLimiter::new(REGISTRATIONS_PER_ADDRESS, REGISTRATION_WINDOW),
            presence: PresenceBoard::default(),
            sessions: SessionBindings::default(),
        }
    }

    pub fn presence(&self) -> &PresenceBoard {
        &self.presence
    }

    pub fn status_of(&self, user: UserId) -> Status {
        self.presence
            .read()
            .ok()
            .and_then(|board| board.get(&user).copied())
            .unwrap_or(Status::Offline)
    }

    /// A user as clients see them, with live presence.
    pub fn user_view(&self, id: UserId, user: &UserRecord) -> UserView {
        let mut view = UserView::new(id, user);
        view.status = self.status_of(id).as_str();
        view
    }

    pub fn member_view(&self, id: UserId, user: &UserRecord, member: &MemberRecord) -> MemberView {
        let mut view = MemberView::new(id, user, member);
        view.user.status = self.status_of(id).as_str();
        view
    }

    pub fn sessions(&self) -> &SessionBindings {
        &self.sessions
    }

    /// Ends the bindings of sessions that another process ended or that expired; runs once a
    /// `SESSION_SWEEP_INTERVAL` until the runtime stops.
    pub fn spawn_session_sweeper(self: &Arc<Chat>) {
        let chat = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(sessions::SESSION_SWEEP_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(chat) = chat.upgrade() else { return };
                let swept = chat
                    .store
                    .snapshot()
                    .and_then(|s| chat.sessions.sweep(&s, crate::clock::Timestamp::now()));
                match swept {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(sessions = n, "ended sockets of sessions that ended"),
                    Err(e) => tracing::warn!(error = %e, "session sweep failed"),
                }
            }
        });
    }

    pub fn store(&self) -> &Store {
        &self.store
    }
}
