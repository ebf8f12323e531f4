//! Sessions that something live depends on, and ending them everywhere at once.
//!
//! An HTTP request proves its session each time; a socket signs in once and then keeps its
//! identity. So that a session that ends ends everywhere, each signed-in socket binds itself
//! here to its session (`SessionBindings::bind`, with what to do when it ends), and:
//!
//! - whoever ends a session in this process (logout, password change) ends its bindings
//!   *before* the store write, so nothing reaches the socket after the caller is answered;
//! - `sweep`, run once a second, catches what this process did not do itself: sessions ended
//!   by another process (the admin CLI's `user disable` / `user passwd`, seen as a moved
//!   `session_epoch` in the store, one key read per sweep), sessions that expired, and any
//!   binding made since the last sweep (checked once, so a bind racing an end is caught).
//!
//! Must not: know what a binding is for (the realtime layer passes a closure), or call one
//! while holding the registry's lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::clock::Timestamp;
use crate::ids::UserId;
use crate::store::{Snapshot, StoreError};

/// How often `sweep` runs: what another process ends, or expiry, is acted on within this.
pub const SESSION_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Why a session ended, as the client is told (`session:ended`'s `reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SessionEnd {
    LoggedOut,
    /// The password was changed (from another session, or by the operator).
    PasswordChanged,
    AccountDisabled,
    Expired,
    /// Ended by another process for a reason this one cannot see.
    Revoked,
}

impl SessionEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionEnd::LoggedOut => "logged_out",
            SessionEnd::PasswordChanged => "password_changed",
            SessionEnd::AccountDisabled => "account_disabled",
            SessionEnd::Expired => "expired",
            SessionEnd::Revoked => "revoked",
        }
    }
}

type OnEnd = Box<dyn FnOnce(SessionEnd) + Send>;

/// One live thing (a socket) bound to a session. Cheap to check on every delivery.
pub struct SessionBinding {
    token_hash: [u8; 32],
    id: u64,
    ended: AtomicBool,
    on_end: Mutex<Option<OnEnd>>,
}

impl SessionBinding {
    /// False from the moment the session is known to have ended.
    pub fn is_live(&self) -> bool {
        !self.ended.load(Ordering::Acquire)
    }

    fn end(&self, reason: SessionEnd) {
        if self.ended.swap(true, Ordering::AcqRel) {
            return;
        }
        let on_end = lock(&self.on_end).take();
        if let Some(on_end) = on_end {
            on_end(reason);
        }
    }
}

struct Entry {
    user: UserId,
    /// As last read from the store; `None` until the first sweep reads it.
    expires_at: Option<Timestamp>,
    /// Whether the store has been checked since the last binding was added.
    verified: bool,
    bindings: Vec<Arc<SessionBinding>>,
}

/// Every bound session of this process, by the sha256 of its token.
#[derive(Default)]
pub struct SessionBindings {
    entries: Mutex<HashMap<[u8; 32], Entry>>,
    /// The store's `session_epoch` as of the last sweep.
    epoch: AtomicU64,
    next_id: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn end_all(doomed: Vec<Arc<SessionBinding>>, reason: SessionEnd) {
    for binding in doomed {
        binding.end(reason);
    }
}

impl SessionBindings {
    /// Binds something live to the session `token_hash` of `user`; `on_end` runs once, when
    /// the session ends (never if the binding is unbound first).
    pub fn bind(
        &self,
        token_hash: [u8; 32],
        user: UserId,
        on_end: impl FnOnce(SessionEnd) + Send + 'static,
    ) -> Arc<SessionBinding> {
        let binding = Arc::new(SessionBinding {
            token_hash,
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            ended: AtomicBool::new(false),
            on_end: Mutex::new(Some(Box::new(on_end))),
        });
        let mut entries = lock(&self.entries);
        let entry = entries.entry(token_hash).or_insert_with(|| Entry {
            user,
            expires_at: None,
            verified: false,
            bindings: Vec::new(),
        });
        entry.verified = false;
        entry.bindings.push(Arc::clone(&binding));
        binding
    }

    /// Forgets a binding whose owner went away on its own.
    pub fn unbind(&self, binding: &SessionBinding) {
        let mut entries = lock(&self.entries);
        if let Some(entry) = entries.get_mut(&binding.token_hash) {
            entry.bindings.retain(|b| b.id != binding.id);
            if entry.bindings.is_empty() {
                entries.remove(&binding.token_hash);
            }
        }
    }

    /// Sessions with at least one binding.
    pub fn bound_sessions(&self) -> usize {
        lock(&self.entries).len()
    }

    /// Ends every binding of one session.
    pub fn end_session(&self, token_hash: &[u8; 32], reason: SessionEnd) {
        let doomed = lock(&self.entries)
            .remove(token_hash)
            .map(|entry| entry.bindings)
            .unwrap_or_default();
        end_all(doomed, reason);
    }

    /// Ends every binding of every session of `user`, except those of session `keep`.
    pub fn end_user(&self, user: UserId, keep: Option<&[u8; 32]>, reason: SessionEnd) {
        let mut doomed = Vec::new();
        lock(&self.entries).retain(|hash, entry| {
            let ends = entry.user == user && Some(hash) != keep;
            if ends {
                doomed.append(&mut entry.bindings);
            }
            !ends
        });
        end_all(doomed, reason);
    }

    /// Checks bound sessions against the store and ends those that ended elsewhere or expired:
    /// all of them when the store's session epoch moved, else only the unverified and the
    /// due. Returns how many sessions it ended.
    pub fn sweep(&self, snapshot: &Snapshot, now: Timestamp) -> Result<usize, StoreError> {
        let epoch = snapshot.session_epoch()?;
        let all = self.epoch.swap(epoch, Ordering::AcqRel) != epoch;
        let due: Vec<([u8; 32], UserId)> = lock(&self.entries)
            .iter()
            .filter(|(_, e)| all || !e.verified || e.expires_at.is_none_or(|at| at <= now))
            .map(|(hash, e)| (*hash, e.user))
            .collect();
        let mut ended = Vec::new();
        let mut live = Vec::new();
        for (hash, user) in due {
            let disabled = || -> Result<bool, StoreError> {
                Ok(snapshot.user(user)?.is_none_or(|u| u.disabled))
            };
            match snapshot.session(&hash)? {
                None if disabled()? => ended.push((hash, SessionEnd::AccountDisabled)),
                None => ended.push((hash, SessionEnd::Revoked)),
                Some(s) if s.expires_at <= now => ended.push((hash, SessionEnd::Expired)),
                Some(_) if disabled()? => ended.push((hash, SessionEnd::AccountDisabled)),
                Some(s) => live.push((hash, s.expires_at)),
            }
        }
        {
            let mut entries = lock(&self.entries);
            for (hash, expires_at) in live {
                if let Some(entry) = entries.get_mut(&hash) {
                    entry.expires_at = Some(expires_at);
                    entry.verified = true;
                }
            }
        }
        let count = ended.len();
        for (hash, reason) in ended {
            if reason == SessionEnd::Expired {
                tracing::debug!("a bound session expired");
            }
            self.end_session(&hash, reason);
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn recorder() -> (mpsc::Sender<SessionEnd>, mpsc::Receiver<SessionEnd>) {
        mpsc::channel()
    }

    #[test]
    fn ending_a_session_ends_each_binding_once_and_only_its_own() {
        let bindings = SessionBindings::default();
        let (tx, rx) = recorder();
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let tx2 = tx.clone();
        let first = bindings.bind(a, UserId(1), move |r| {
            let _ = tx.send(r);
        });
        let other = bindings.bind(b, UserId(1), move |r| {
            let _ = tx2.send(r);
        });
        bindings.end_session(&a, SessionEnd::LoggedOut);
        bindings.end_session(&a, SessionEnd::LoggedOut);
        assert!(!first.is_live());
        assert!(other.is_live());
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [SessionEnd::LoggedOut]);
        assert_eq!(bindings.bound_sessions(), 1);
    }

    #[test]
    fn end_user_keeps_the_session_that_asked() {
        let bindings = SessionBindings::default();
        let keep = bindings.bind([1; 32], UserId(1), |_| {});
        let other_session = bindings.bind([2; 32], UserId(1), |_| {});
        let other_user = bindings.bind([3; 32], UserId(2), |_| {});
        bindings.end_user(UserId(1), Some(&[1; 32]), SessionEnd::PasswordChanged);
        assert!(keep.is_live());
        assert!(!other_session.is_live());
        assert!(other_user.is_live());
    }

    #[test]
    fn an_unbound_binding_is_never_ended() {
        let bindings = SessionBindings::default();
        let (tx, rx) = recorder();
        let gone = bindings.bind([1; 32], UserId(1), move |r| {
            let _ = tx.send(r);
        });
        let stays = bindings.bind([1; 32], UserId(1), |_| {});
        bindings.unbind(&gone);
        bindings.end_session(&[1; 32], SessionEnd::Expired);
        assert!(rx.try_recv().is_err());
        assert!(!stays.is_live());
        assert_eq!(bindings.bound_sessions(), 0);
    }

    /// The sweep against a real store: what another process ended, what expired, and a
    /// binding made just after its session ended (a sign-in racing a logout) are all ended;
    /// live sessions are left alone.
    #[tokio::test]
    async fn sweep_ends_what_ended_elsewhere_or_expired_and_nothing_else() {
        use crate::store::records::SessionRecord;
        use crate::store::{Admission, Store};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("parley.redb")).expect("open");
        let mut users = Vec::new();
        for name in ["alice", "bob", "carol"] {
            let (id, _) = store
                .create_user(name.into(), name.into(), "x".into(), Admission::Open)
                .await
                .expect("user");
            users.push(id);
        }
        let now = Timestamp::now();
        let session = |user, secs| SessionRecord {
            user,
            created_at: now,
            expires_at: now.plus_seconds(secs),
            last_seen: Some(now),
        };
        let (live, revoked, expiring, disabled) = ([1u8; 32], [2u8; 32], [3u8; 32], [4u8; 32]);
        store
            .create_session(live, session(users[0], 3600))
            .await
            .expect("s");
        store
            .create_session(revoked, session(users[0], 3600))
            .await
            .expect("s");
        store
            .create_session(expiring, session(users[1], 1))
            .await
            .expect("s");
        store
            .create_session(disabled, session(users[2], 3600))
            .await
            .expect("s");

        let bindings = SessionBindings::default();
        let (tx, rx) = mpsc::channel();
        let bind = |hash: [u8; 32], user| {
            let tx = tx.clone();
            bindings.bind(hash, user, move |reason| {
                let _ = tx.send((hash, reason));
            })
        };
        let all = [
            bind(live, users[0]),
            bind(revoked, users[0]),
            bind(expiring, users[1]),
            bind(disabled, users[2]),
        ];
        assert_eq!(
            bindings
                .sweep(&store.snapshot().expect("snap"), now)
                .expect("sweep"),
            0
        );

        // Another process (the admin CLI) ends two sessions; one expires.
        store.delete_session(revoked).await.expect("delete");
        store.set_disabled(users[2], true).await.expect("disable");
        let later = now.plus_seconds(2);
        assert_eq!(
            bindings
                .sweep(&store.snapshot().expect("snap"), later)
                .expect("sweep"),
            3
        );
        let mut ended: Vec<_> = rx.try_iter().collect();
        ended.sort();
        assert_eq!(
            ended,
            [
                (revoked, SessionEnd::Revoked),
                (expiring, SessionEnd::Expired),
                (disabled, SessionEnd::AccountDisabled),
            ]
        );
        assert!(all[0].is_live());

        // A socket that authenticated just before its session ended binds after the sweep that
        // saw the end: the next sweep (store epoch unchanged) still catches it.
        let late = bind(revoked, users[0]);
        assert!(late.is_live());
        bindings
            .sweep(&store.snapshot().expect("snap"), later)
            .expect("sweep");
        assert!(!late.is_live());
        assert!(all[0].is_live(), "the live session keeps its binding");
        assert_eq!(bindings.bound_sessions(), 1);
    }
}
