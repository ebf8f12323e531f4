#!/usr/bin/env bash
# The packaging test (scripts/test.sh calls it; it also runs on its own):
#   1. shellcheck the packaging scripts and the Debian maintainer scripts
#   2. the example config names every Config key and the binary accepts it uncommented
#   3. install.sh twice into a temp root: files and modes land, the second run changes nothing
#   4. systemd-analyze verify every unit (ExecStart pointed at a real binary in a temp copy)
#   5. systemd-analyze security: parley.service exposure must be <= 2.0
#   6. static checks of the container files (they cannot be built here)
#   7. cargo deb → dpkg -i → checks → dpkg --purge, leaving the machine as it was found
#      (skipped with PARLEY_SKIP_DEB=1; the slow step: a release build)
#
# Installs what it needs when missing (shellcheck and systemd from Debian, cargo-deb).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }
fail() {
  echo "packaging test FAILED: $*" >&2
  exit 1
}
started=$SECONDS
max_exposure=2.0
tmp="$(mktemp -d)"
deb_installed_by_us=0
cleanup() {
  if [ "$deb_installed_by_us" = 1 ]; then
    echo "cleanup: dpkg --purge parley" >&2
    dpkg --purge parley >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# --- tools ---------------------------------------------------------------------------------
apt_updated=0
need_deb() { # need_deb COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  say "installing $2 (Debian package, for $1)"
  if [ "$apt_updated" = 0 ]; then
    apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
need_deb shellcheck shellcheck
need_deb systemd-analyze systemd

# --- 1. shellcheck ---------------------------------------------------------------------------
say "shellcheck"
shellcheck packaging/install.sh packaging/test.sh packaging/cross-build.sh
shellcheck --shell=sh packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm
for f in packaging/install.sh packaging/test.sh packaging/cross-build.sh \
  packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm; do
  [ -x "$f" ] || fail "$f is not executable"
done

# --- the binary ----------------------------------------------------------------------------
if [ -x target/release/parley ]; then
  bin="$PWD/target/release/parley"
elif [ -x target/debug/parley ]; then
  bin="$PWD/target/debug/parley"
else
  say "no built parley: cargo build"
  cargo build --locked --bin parley
  bin="$PWD/target/debug/parley"
fi
echo "using $bin ($("$bin" --version))"

# --- 2. the example config -------------------------------------------------------------------
say "example config covers every Config key and parses"
keys="$(sed -n '/^pub struct Config {/,/^}/s/^ *pub \([a-z_0-9]*\):.*/\1/p' src/config.rs)"
[ -n "$keys" ] || fail "found no Config fields in src/config.rs"
for key in $keys; do
  grep -q "^#\{0,1\}$key = " packaging/parley.toml || fail "packaging/parley.toml lacks $key"
done
echo "all $(echo "$keys" | wc -w) keys present"
sed 's/^#\([a-z_0-9]* = \)/\1/' packaging/parley.toml >"$tmp/all-keys.toml"
# Loading the config happens before the command looks for a database: "no database" means the
# file (every key uncommented) was accepted.
out="$("$bin" --config "$tmp/all-keys.toml" --data-dir "$tmp/empty" user list 2>&1 || true)"
case "$out" in
  *"no database"*) echo "the binary accepts every key" ;;
  *) fail "the binary rejects the uncommented example config: $out" ;;
esac
out="$("$bin" --config packaging/parley.toml --data-dir "$tmp/empty" user list 2>&1 || true)"
case "$out" in
  *"no database"*) ;;
  *) fail "the binary rejects packaging/parley.toml: $out" ;;
esac

# --- 3. install.sh -------------------------------------------------------------------------
say "install.sh into a temp root, twice"
root="$tmp/root"
packaging/install.sh --binary "$bin" --root "$root" >"$tmp/install1.log"
cat "$tmp/install1.log"
expect_file() { # expect_file PATH MODE
  [ -f "$root$1" ] || fail "install.sh did not install $1"
  [ "$(stat -c %a "$root$1")" = "$2" ] || fail "$1 has mode $(stat -c %a "$root$1"), want $2"
}
expect_file /usr/local/bin/parley 755
expect_file /etc/systemd/system/parley.service 644
expect_file /etc/systemd/system/parley-backup.service 644
expect_file /etc/systemd/system/parley-backup.timer 644
expect_file /etc/parley/parley.toml 644
cmp -s "$bin" "$root/usr/local/bin/parley" || fail "installed binary differs from $bin"
grep -q '^ExecStart=/usr/local/bin/parley serve ' "$root/etc/systemd/system/parley.service" ||
  fail "installed parley.service does not run /usr/local/bin/parley"
grep -q 'would run: useradd --system' "$tmp/install1.log" || fail "--root did not report useradd"
grep -q 'would run: systemctl enable parley.service' "$tmp/install1.log" ||
  fail "--root did not report systemctl enable"
snapshot() { (cd "$root" && find . -printf '%p %m %T@\n' | sort && find . -type f -exec sha256sum {} + | sort); }
snapshot >"$tmp/snap1"
sleep 1 # so that a rewritten file would show a different mtime
packaging/install.sh --binary "$bin" --root "$root" >"$tmp/install2.log"
snapshot >"$tmp/snap2"
diff -u "$tmp/snap1" "$tmp/snap2" || fail "the second install.sh run changed files"
grep -q 'nothing changed' "$tmp/install2.log" || fail "the second run did not say 'nothing changed'"
grep -q '^installed' "$tmp/install2.log" && fail "the second run installed something"
echo "second run: nothing changed (checksums, modes and mtimes identical)"
# An admin's config survives a re-run.
echo 'registration = "closed"' >"$root/etc/parley/parley.toml"
packaging/install.sh --binary "$bin" --root "$root" >/dev/null
grep -q closed "$root/etc/parley/parley.toml" || fail "install.sh overwrote an existing config"
echo "an existing config is kept"
packaging/install.sh --binary "$tmp/missing" --root "$root" >/dev/null 2>&1 &&
  fail "install.sh accepted a missing binary"

# --- 4. systemd-analyze verify -------------------------------------------------------------
say "systemd-analyze verify"
verify_units() { # verify_units DIR FROM_PATH: copy DIR's units, point FROM_PATH at $bin, verify
  local copy
  copy="$(mktemp -d -p "$tmp")"
  cp "$1"/parley.service "$1"/parley-backup.service "$1"/parley-backup.timer "$copy/"
  sed -i "s|$2|$bin|g" "$copy"/*
  local out rc=0
  out="$(systemd-analyze verify "$copy"/parley.service "$copy"/parley-backup.service \
    "$copy"/parley-backup.timer 2>&1)" || rc=$?
  if [ "$rc" != 0 ] || [ -n "$out" ]; then
    echo "$out" >&2
    fail "systemd-analyze verify $1 (exit $rc)"
  fi
  echo "ok: $1"
}
verify_units packaging/systemd /usr/bin/parley
verify_units "$root/etc/systemd/system" /usr/local/bin/parley

# --- 5. systemd-analyze security -----------------------------------------------------------
say "systemd-analyze security --offline=true"
exposure() { # exposure UNIT_FILE → prints the overall exposure number
  systemd-analyze security --offline=true --no-pager "$1" 2>&1 |
    sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p'
}
for unit in parley.service parley-backup.service; do
  score="$(exposure "packaging/systemd/$unit")"
  [ -n "$score" ] || fail "no exposure level for $unit"
  echo "$unit: exposure $score (limit $max_exposure)"
  awk -v s="$score" -v m="$max_exposure" 'BEGIN { exit !(s <= m) }' ||
    fail "$unit exposure $score is above $max_exposure"
done

# --- container files (static checks only: no container engine here) -----------------------
say "Dockerfile and compose.yaml (static checks)"
for line in 'FROM rust:1-bookworm AS build' 'FROM gcr.io/distroless/cc-debian12:nonroot' \
  'USER 65532:65532' 'VOLUME /data' 'EXPOSE 8080' 'ENV PARLEY_DATA_DIR=/data' \
  'PARLEY_LISTEN=0.0.0.0:8080' 'HEALTHCHECK' '/healthz' 'cargo build --release --locked'; do
  grep -qF "$line" packaging/Dockerfile || fail "packaging/Dockerfile lacks: $line"
done
if python3 -c 'import yaml' 2>/dev/null; then
  python3 -c 'import sys, yaml; c = yaml.safe_load(open(sys.argv[1])); assert c["services"]["parley"]["build"]["dockerfile"] == "packaging/Dockerfile"' \
    packaging/compose.yaml || fail "packaging/compose.yaml does not parse as expected"
  echo "compose.yaml parses"
fi

# --- 7. the Debian package -----------------------------------------------------------------
if [ "${PARLEY_SKIP_DEB:-0}" = 1 ]; then
  say "Debian package: skipped (PARLEY_SKIP_DEB=1)"
else
  if ! cargo deb --version >/dev/null 2>&1; then
    say "installing cargo-deb"
    cargo install --locked cargo-deb
  fi
  say "cargo deb (release build)"
  arch="$(dpkg --print-architecture)"
  rm -f target/debian/parley_*_"$arch".deb
  cargo deb --locked
  debs=(target/debian/parley_*_"$arch".deb)
  if [ "${#debs[@]}" != 1 ] || [ ! -f "${debs[0]}" ]; then fail "expected one .deb in target/debian"; fi
  deb="${debs[0]}"
  size="$(stat -c %s "$deb")"
  echo "built $deb: $size bytes ($(numfmt --to=iec-i --suffix=B --round=nearest "$size"))"

  # What the package holds.
  dpkg-deb -c "$deb" >"$tmp/contents"
  for path in ./usr/bin/parley ./lib/systemd/system/parley.service \
    ./lib/systemd/system/parley-backup.service ./lib/systemd/system/parley-backup.timer \
    ./etc/parley/parley.toml ./usr/share/doc/parley/install.md ./usr/share/doc/parley/operations.md; do
    grep -q " $path\$" "$tmp/contents" || fail "the .deb lacks $path"
  done
  grep -q '^-rwxr-xr-x .* ./usr/bin/parley$' "$tmp/contents" || fail "/usr/bin/parley is not 0755"
  dpkg-deb -I "$deb" conffiles | grep -qx /etc/parley/parley.toml ||
    fail "/etc/parley/parley.toml is not a conffile"
  for script in postinst prerm postrm; do
    dpkg-deb -I "$deb" "$script" >/dev/null 2>&1 || fail "the .deb lacks its $script"
  done
  dpkg-deb -f "$deb" Depends

  if dpkg-query -W -f='${Status}' parley 2>/dev/null | grep -q 'install ok'; then
    echo "parley is already installed on this machine: not touching it (install test skipped)"
  elif [ "$(id -u)" -ne 0 ]; then
    echo "not root: install test skipped"
  else
    say "dpkg -i, check, dpkg --purge"
    state() {
      for d in /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled \
        /var/lib/systemd/deb-systemd-helper-masked /etc/parley /usr/bin/parley \
        /lib/systemd/system/parley.service; do
        if [ -e "$d" ]; then find "$d" -printf '%p %m %l\n'; fi
      done | sort
    }
    state >"$tmp/before"
    deb_installed_by_us=1
    dpkg -i "$deb"
    [ "$(/usr/bin/parley --version)" = "$("$bin" --version)" ] ||
      fail "/usr/bin/parley --version: $(/usr/bin/parley --version)"
    echo "/usr/bin/parley --version: $(/usr/bin/parley --version)"
    [ -f /etc/parley/parley.toml ] || fail "/etc/parley/parley.toml not installed"
    cmp -s /etc/parley/parley.toml packaging/parley.toml || fail "/etc/parley/parley.toml differs"
    [ -f /lib/systemd/system/parley.service ] || fail "parley.service not installed"
    [ -L /etc/systemd/system/multi-user.target.wants/parley.service ] ||
      fail "postinst did not enable parley.service"
    [ -L /etc/systemd/system/timers.target.wants/parley-backup.timer ] ||
      fail "postinst did not enable parley-backup.timer"
    echo "installed: binary, config (conffile), units; parley.service and the timer enabled"
    # The installed units, with the real /usr/bin/parley.
    out="$(systemd-analyze verify /lib/systemd/system/parley.service \
      /lib/systemd/system/parley-backup.service /lib/systemd/system/parley-backup.timer 2>&1)" ||
      fail "systemd-analyze verify of the installed units: $out"
    [ -z "$out" ] || fail "systemd-analyze verify of the installed units: $out"
    # Reinstall (postinst configure with an old version, as on an upgrade): stays enabled.
    dpkg -i "$deb" >/dev/null
    [ -L /etc/systemd/system/multi-user.target.wants/parley.service ] ||
      fail "parley.service no longer enabled after a reinstall"
    # Remove keeps the config (a conffile) and leaves the units masked, purge clears all.
    dpkg --remove parley >/dev/null
    [ ! -e /usr/bin/parley ] || fail "dpkg --remove left /usr/bin/parley"
    [ -f /etc/parley/parley.toml ] || fail "dpkg --remove deleted the config"
    [ "$(readlink /etc/systemd/system/parley.service)" = /dev/null ] ||
      fail "dpkg --remove did not mask parley.service"
    echo "reinstall keeps it enabled; remove keeps the config and masks the units"
    dpkg --purge parley
    deb_installed_by_us=0
    state >"$tmp/after"
    diff -u "$tmp/before" "$tmp/after" || fail "dpkg --purge left changes behind"
    echo "purged: the machine is as it was"
  fi
  echo "deb size: $size bytes ($(numfmt --to=iec-i --suffix=B --round=nearest "$size"))"
fi

say "packaging test passed in $((SECONDS - started)) s"
