//! Build script: makes a release build notice a file added to or removed from `assets/`.
//!
//! Release builds embed `assets/` (rust-embed, `src/http/assets.rs`) with one `include_bytes!`
//! per file, so cargo rebuilds when an embedded file changes but not when a new one appears.
//! Watching the folder closes that gap. Debug builds read `assets/` from disk at run time, so
//! they watch nothing and an edit to the client never recompiles the server.

fn main() {
    if std::env::var_os("CARGO_CFG_DEBUG_ASSERTIONS").is_none() {
        println!("cargo::rerun-if-changed=assets");
    } else {
        println!("cargo::rerun-if-changed=build.rs");
    }
}
