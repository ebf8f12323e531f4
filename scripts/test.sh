#!/usr/bin/env bash
# Runs every parley check and test: formatting, lints, unit tests, integration tests over real
# sockets, and a build of the benchmarks. Installs what the tests need first when it is missing.
# This is the README's test command, and CI runs exactly this (via .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }

# --- what the tests need -------------------------------------------------------------------
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install Rust (https://rustup.rs) and run this again" >&2
  exit 1
fi
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    say "installing the $component component"
    rustup component add "$component"
  fi
done

# --- checks --------------------------------------------------------------------------------
say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy (warnings are errors)"
cargo clippy --all-targets --locked -- -D warnings

# --- tests ---------------------------------------------------------------------------------
say "cargo test (unit tests and tests/ over real sockets)"
cargo test --all-targets --locked

say "all checks and tests passed"
