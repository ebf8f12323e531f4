//! Passwords, session tokens and login rate limits.
//!
//! argon2id with the crate's default parameters runs on tokio's blocking pool, with at most
//! one hash per core at a time so a burst of logins cannot starve the server. Session tokens are
//! 32 random bytes (base64url on the wire); only their sha256 is stored.
//!
//! Must not: touch the store or know about HTTP.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OnceCell, Semaphore};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("password hashing task failed: {0}")]
    Task(String),
}

/// Hashes and verifies passwords off the async threads, a bounded number at a time.
#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// A real hash of a random password, verified against when a username does not exist, so
    /// that "no such user" takes as long as "wrong password".
    decoy: Arc<OnceCell<String>>,
}

impl PasswordHasher {
    pub fn new(concurrency: usize) -> PasswordHasher {
        PasswordHasher {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            decoy: Arc::new(OnceCell::new()),
        }
    }

    pub async fn hash(&self, password: String) -> Result<String, AuthError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| AuthError::Task(e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            let mut salt = [0u8; 16];
            rand::rng().fill_bytes(&mut salt);
            let hash: PasswordHash = Argon2::default()
                .hash_password_with_salt(password.as_bytes(), &salt)
                .map_err(|e| AuthError::Hash(e.to_string()))?;
            Ok(hash.to_string())
        })
        .await
        .map_err(|e| AuthError::Task(e.to_string()))?
    }

    /// True when `password` matches `phc`. A malformed stored hash never matches.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool, AuthError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| AuthError::Task(e.to_string()))?;
        tokio::task::spawn_blocking(move || match PasswordHash::new(&phc) {
            Ok(parsed) => Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        })
        .await
        .map_err(|e| AuthError::Task(e.to_string()))
    }

    /// Spends the same work as a real verification, and always fails.
    pub async fn verify_decoy(&self, password: String) -> Result<bool, AuthError> {
        let decoy = self
            .decoy
            .get_or_try_init(|| self.hash(new_token().0))
            .await?
            .clone();
        self.verify(password, decoy).await.map(|_| false)
    }
}

/// A fresh random token and its stored form: `(token for the client, sha256 for the store)`.
pub fn new_token() -> (String, [u8; 32]) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    (URL_SAFE_NO_PAD.encode(bytes), Sha256::digest(bytes).into())
}

/// The stored form of a token a client presented, or `None` if it cannot be one of ours.
pub fn token_hash(token: &str) -> Option<[u8; 32]> {
    if token.len() != 43 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    let bytes: [u8; 32] = bytes.try_into().ok()?;
    Some(Sha256::digest(bytes).into())
}

/// Counts events per key in fixed windows and refuses once a key reaches `max` in a window.
/// Memory stays bounded: expired windows are dropped whenever the map grows large.
pub struct WindowLimiter {
    max: u32,
    window: Duration,
    entries: Mutex<HashMap<String, (u32, Instant)>>,
}

/// Keys tracked before expired windows are swept.
const LIMITER_SWEEP_AT: usize = 10_000;

impl WindowLimiter {
    pub fn new(max: u32, window: Duration) -> WindowLimiter {
        WindowLimiter {
            max,
            window,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds until allowed)` when `key` is at its limit.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), u64> {
        let Ok(entries) = self.entries.lock() else {
            return Ok(());
        };
        match entries.get(key) {
            Some((count, start)) if *count >= self.max => {
                let elapsed = now.saturating_duration_since(*start);
                if elapsed >= self.window {
                    Ok(())
                } else {
                    Err((self.window - elapsed).as_secs().max(1))
                }
            }
            _ => Ok(()),
        }
    }

    pub fn record(&self, key: &str, now: Instant) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= LIMITER_SWEEP_AT {
            let window = self.window;
            entries.retain(|_, (_, start)| now.saturating_duration_since(*start) < window);
        }
        let entry = entries.entry(key.to_owned()).or_insert((0, now));
        if now.saturating_duration_since(entry.1) >= self.window {
            *entry = (0, now);
        }
        entry.0 = entry.0.saturating_add(1);
    }

    pub fn reset(&self, key: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_hash_matches_only_our_tokens() {
        let (token, hash) = new_token();
        assert_eq!(token.len(), 43);
        assert_eq!(token_hash(&token), Some(hash));
        assert_eq!(token_hash("short"), None);
        assert_eq!(token_hash(&"!".repeat(43)), None);
    }

    #[test]
    fn limiter_refuses_at_max_and_recovers_after_window() {
        let limiter = WindowLimiter::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(limiter.check("k", t0).is_ok());
        limiter.record("k", t0);
        limiter.record("k", t0);
        let wait = limiter.check("k", t0).expect_err("limited");
        assert!(wait > 0 && wait <= 60);
        assert!(limiter.check("other", t0).is_ok());
        assert!(limiter.check("k", t0 + Duration::from_secs(61)).is_ok());
        limiter.reset("k");
        assert!(limiter.check("k", t0).is_ok());
    }

    #[tokio::test]
    async fn hash_then_verify() {
        let hasher = PasswordHasher::new(1);
        let phc = hasher.hash("correct horse".into()).await.expect("hash");
        assert!(phc.starts_with("$argon2id$"));
        assert!(
            hasher
                .verify("correct horse".into(), phc.clone())
                .await
                .expect("verify")
        );
        assert!(!hasher.verify("wrong".into(), phc).await.expect("verify"));
        assert!(
            !hasher
                .verify("x".into(), "not a phc".into())
                .await
                .expect("verify")
        );
        assert!(!hasher.verify_decoy("anything".into()).await.expect("decoy"));
    }
}
