//! HTTP integration tests for parley: every test starts its own server on 127.0.0.1:0 over a
//! fresh temp data dir and talks to it with reqwest, checking the contract in docs/API.md.

mod assets;
mod auth;
mod authz_matrix;
mod cli;
mod common;
mod engineio;
mod hostile;
mod limits;
mod messages;
mod ops;
mod persistence;
mod polling_socket;
mod rooms;
mod session_end;
