//! Accounts' secrets and the limits around them: password hashing (`password`), session
//! tokens and where a request carries one (`token`), and rate limits (`limits`).
//!
//! Must not: touch the store (callers store what these return) or decide who may do what.

mod limits;
mod password;
mod token;

pub use limits::{TokenBucket, WindowLimiter};
pub use password::{AuthError, PasswordHasher};
pub use token::{SESSION_COOKIE, TokenSource, new_token, session_token, token_hash};
