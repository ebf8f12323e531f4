//! parley: self-hosted team chat in one binary.
//!
//! Layers, top to bottom (each module's header says what it owns):
//! `cli`/`main` → `server` (accept loop, shutdown) → `http` (routing, JSON, cookies, limits)
//! → `chat` (the rules) → `store` (redb, the single writer). `auth` hashes passwords and
//! rate-limits logins; `config` builds the one `Config`.

pub mod app;
pub mod auth;
pub mod chat;
pub mod cli;
pub mod clock;
pub mod config;
pub mod conformance;
pub mod engineio;
pub mod http;
pub mod hub;
pub mod ids;
pub mod metrics;
pub mod realtime;
pub mod server;
pub mod socketio;
pub mod store;
pub mod systemd;
pub mod tls;
