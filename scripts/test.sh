#!/usr/bin/env bash
# Runs every parley check and test: formatting, lints, unit tests, integration tests over real
# sockets (Rust and the official Node socket.io-client), the web client end to end in headless
# Chromium (playwright-core), the packaging test (systemd units, install script, .deb), a build
# of the benchmarks, and bounded fuzzing of the protocol parsers. Installs what the tests need
# first when it is missing. This is the README's test command, and CI runs exactly this (via
# .ci/run).
#
#   PARLEY_FUZZ_SECONDS=N   seconds per fuzz target (default 30; 0 skips fuzzing)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }
fuzz_seconds="${PARLEY_FUZZ_SECONDS:-30}"

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
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  say "installing Node.js and npm (Debian packages)"
  apt-get update -qq && apt-get install -y -qq nodejs npm
fi
if [ ! -x /usr/bin/chromium ]; then
  # The end-to-end suite drives Debian's Chromium (playwright-core downloads no browser).
  say "installing Chromium (Debian package, for the end-to-end suite)"
  if [ "$(id -u)" = 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    echo "/usr/bin/chromium is missing and this is not root (and there is no sudo):" >&2
    echo "install it with: apt-get install chromium" >&2
    exit 1
  fi
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends chromium
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci (pinned test dependencies from package-lock.json)"
  npm ci --no-audit --no-fund
fi
if [ "$fuzz_seconds" != 0 ] && ! cargo fuzz --version >/dev/null 2>&1; then
  say "installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi

# --- checks --------------------------------------------------------------------------------
say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy (warnings are errors)"
cargo clippy --all-targets --locked -- -D warnings

# --- tests ---------------------------------------------------------------------------------
say "cargo test (unit tests and tests/ over real sockets)"
cargo test --all-targets --locked

say "realtime suite: the official socket.io-client against the real binary"
PARLEY_BIN="$PWD/target/debug/parley" node --test --test-concurrency=2 tests/realtime/

say "web client unit tests: its pure modules (timeline, text, languages, dates) in Node"
node --test tests/web/

say "end-to-end suite: the web client in headless Chromium against the real binary"
PARLEY_BIN="$PWD/target/debug/parley" node --test --test-concurrency=1 tests/e2e/

say "benchmarks build (cargo bench --no-run), so they cannot rot"
cargo bench --no-run --locked

say "packaging: systemd units, install.sh, the .deb (built, installed, purged)"
bash packaging/test.sh

if [ "$fuzz_seconds" != 0 ]; then
  # libFuzzer needs unstable compiler flags; RUSTC_BOOTSTRAP lets the stable toolchain accept
  # them (no sanitizer: the targets are safe Rust, we look for panics and round-trip bugs).
  for target in socketio_packet engineio_payload websocket_frame websocket_reassembly client_event; do
    say "fuzz $target for ${fuzz_seconds}s"
    RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none "$target" -- \
      -max_total_time="$fuzz_seconds" -print_final_stats=1 2>&1 | tail -n 3
  done
fi

say "all checks and tests passed"
