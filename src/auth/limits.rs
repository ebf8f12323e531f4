//! Rate limits shared by HTTP routes and socket events: fixed windows per key
//! (`WindowLimiter`, for logins and registrations) and a token bucket (`TokenBucket`, for a
//! steady rate with bursts, such as one socket's events).
//!
//! Must not: know what is being limited, touch the store, or read the clock itself where a
//! caller can pass the time in (so the rules are testable).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// A token bucket: `burst` tokens to start with, refilled at `per_second`, one taken per
/// event. Counts the refusals in a row (`strikes`) so a caller can cut off a client that keeps
/// flooding instead of answering each refusal forever.
#[derive(Debug)]
pub struct TokenBucket {
    burst: f64,
    per_second: f64,
    tokens: f64,
    last: Instant,
    strikes: u32,
}

impl TokenBucket {
    pub fn new(burst: f64, per_second: f64, now: Instant) -> TokenBucket {
        TokenBucket {
            burst,
            per_second,
            tokens: burst,
            last: now,
            strikes: 0,
        }
    }

    /// Takes a token if there is one. A success resets the strikes; a refusal adds one.
    pub fn take(&mut self, now: Instant) -> bool {
        let refill = now.saturating_duration_since(self.last).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.strikes = 0;
            true
        } else {
            self.strikes = self.strikes.saturating_add(1);
            false
        }
    }

    /// Refusals since the last success.
    pub fn strikes(&self) -> u32 {
        self.strikes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn bucket_allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(3.0, 2.0, t0);
        assert!((0..3).all(|_| bucket.take(t0)), "the burst");
        assert!(!bucket.take(t0));
        assert!(!bucket.take(t0));
        assert_eq!(bucket.strikes(), 2);
        assert!(
            bucket.take(t0 + Duration::from_millis(500)),
            "one token per 1/rate"
        );
        assert_eq!(bucket.strikes(), 0, "a success resets the strikes");
        assert!(!bucket.take(t0 + Duration::from_millis(500)));
        // Refill is capped at the burst however long the pause.
        let later = t0 + Duration::from_secs(3600);
        assert!((0..3).all(|_| bucket.take(later)));
        assert!(!bucket.take(later));
    }
}
