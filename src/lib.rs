//! parley: self-hosted team chat in one binary.
//!
//! Layers, top to bottom; a module uses only modules below it (each module's header says
//! what it owns, and docs/ARCHITECTURE.md draws the path of a message through them):
//!
//! - `main`, `cli`: commands and flags; `server`: accept loop, connection limit, graceful
//!   shutdown.
//! - `http`: routing, JSON, cookies, limits, the embedded web client; `conformance`: the
//!   reference app for the official protocol suites.
//! - `app`: the running application's shared state (config, the chat rules over the open
//!   store, the realtime endpoint), handed to every request.
//! - `realtime`: Socket.IO sockets, client events, fanout and recovery, over `engineio`
//!   (Engine.IO sessions and transports) and `socketio` (the pure packet codec).
//! - `chat`: the rules (who may do what, validation, views).
//! - `feed`: the commit-feed dispatcher; `hub`: subscriptions, presence, typing, fanout.
//! - `store`: redb, the single writer with group commit, reads, backup.
//! - `auth` (passwords, tokens, rate limits), `config`, `ids`, `clock`, `metrics`, `tls`,
//!   `systemd`: leaves that know nothing above them.

pub mod app;
pub mod auth;
pub mod chat;
pub mod cli;
pub mod clock;
pub mod config;
pub mod conformance;
pub mod engineio;
pub mod feed;
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
