#!/usr/bin/env bash
# Cross-builds parley for ARM Linux (Raspberry Pi and ARM VPSes) with cargo-zigbuild: zig is
# the C compiler and linker (ring, which rustls uses, has C and assembly), so no cross gcc or
# sysroot is needed.
#
#   packaging/cross-build.sh [--deb] [TARGET...]
#
#   TARGET  default: aarch64-unknown-linux-gnu (Pi 3/4/5 and Pi Zero 2 W on a 64-bit OS,
#           ARM servers) and armv7-unknown-linux-gnueabihf (32-bit Raspberry Pi OS on Pi 2/3/4)
#   --deb   also package each build with `cargo deb --target TARGET --no-build`
#
#   PARLEY_GLIBC=2.31   oldest glibc the binaries must run on (default 2.31: Debian 11,
#                       Ubuntu 20.04, Raspberry Pi OS bullseye and everything newer)
#
# Writes target/dist/parley-<version>-<target> (and target/<target>/debian/*.deb with --deb).
# Needs, and installs when missing: the Rust standard library for each target (rustup target
# add — downloads from static.rust-lang.org), zig (PyPI package `ziglang`) and cargo-zigbuild
# (crates.io). If a download is impossible (offline machine), it says what is missing and stops.
set -euo pipefail
cd "$(dirname "$0")/.."

glibc="${PARLEY_GLIBC:-2.31}"
make_deb=0
targets=()
for arg in "$@"; do
  case "$arg" in
    --deb) make_deb=1 ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    -*) echo "cross-build.sh: unknown option $arg" >&2; exit 2 ;;
    *) targets+=("$arg") ;;
  esac
done
[ "${#targets[@]}" -gt 0 ] || targets=(aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf)

say() { printf '\n==> %s\n' "$*"; }
cannot() {
  echo "cross-build.sh: $*" >&2
  exit 3
}

command -v rustup >/dev/null 2>&1 ||
  cannot "rustup is needed to add Rust targets (Debian's packaged Rust cannot cross-compile); see https://rustup.rs"

# 1. The target standard libraries.
installed="$(rustup target list --installed)"
for target in "${targets[@]}"; do
  if ! grep -qx "$target" <<<"$installed"; then
    say "rustup target add $target"
    if ! rustup target add "$target"; then
      cannot "could not download the Rust standard library for $target (rustup needs
  https://static.rust-lang.org). Options: run this on a machine with that access, copy
  ~/.rustup/toolchains/<toolchain>/lib/rustlib/$target from one, or build natively on the
  device (cargo build --release on the Pi takes a while but needs nothing else)."
    fi
  fi
done

# 2. zig, from PyPI (a self-contained wheel; no system packages needed).
if command -v zig >/dev/null 2>&1; then
  zig_version="$(zig version)"
elif zig_version="$(python3 -m ziglang version 2>/dev/null)"; then
  :
else
  say "pip install ziglang (zig from PyPI)"
  python3 -m pip install --quiet ziglang ||
    cannot "could not install zig: pip install ziglang failed (needs PyPI), or install zig from https://ziglang.org"
  zig_version="$(python3 -m ziglang version)"
fi
echo "zig $zig_version"

# 3. cargo-zigbuild, from crates.io.
if ! cargo-zigbuild --version >/dev/null 2>&1; then
  say "cargo install --locked cargo-zigbuild"
  cargo install --locked cargo-zigbuild || cannot "could not install cargo-zigbuild from crates.io"
fi

# 4. Build.
version="$(cargo metadata --no-deps --format-version 1 |
  python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "parley"))')"
mkdir -p target/dist
for target in "${targets[@]}"; do
  say "cargo zigbuild --release --target $target.$glibc"
  cargo zigbuild --locked --release --target "$target.$glibc"
  out="target/dist/parley-$version-$target"
  cp "target/$target/release/parley" "$out"
  echo "$out: $(stat -c %s "$out") bytes"
  if command -v file >/dev/null 2>&1; then file "$out"; fi
  if [ "$make_deb" = 1 ]; then
    say "cargo deb --target $target --no-build"
    cargo deb --target "$target" --no-build
  fi
done

say "done: $(printf '%s ' target/dist/parley-"$version"-*)"
echo "Copy one to the device, then: ./parley --version && ldd ./parley (see docs/install.md)"
