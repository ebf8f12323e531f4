#!/usr/bin/env bash
# Installs a parley binary as a systemd service, in one command:
#
#   sudo ./install.sh [--binary PATH] [--root DIR]
#
#   --binary PATH  the parley executable to install (default: ./parley)
#   --root DIR     install under DIR instead of / (for tests and image builds): no user is
#                  created and systemctl is not called; what would be done is printed instead
#
# What it installs (paths under DIR when --root is given):
#   /usr/local/bin/parley                         the binary
#   /etc/systemd/system/parley.service            the hardened unit (ExecStart → /usr/local/bin)
#   /etc/systemd/system/parley-backup.{service,timer}   daily `parley backup`
#   /etc/parley/parley.toml                       the example config, only if none exists
#   system user and group `parley`                only if missing
# and then enables (does not start) parley.service and parley-backup.timer. Running it again
# changes nothing; running it with a new binary upgrades and restarts a running server.
# The Debian package (cargo deb) is the alternative to this script; use one or the other.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
binary=./parley
root=/

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
die() {
  echo "install.sh: $*" >&2
  exit 1
}

while [ $# -gt 0 ]; do
  case "$1" in
    --binary) [ $# -ge 2 ] || die "--binary needs a path"; binary="$2"; shift 2 ;;
    --binary=*) binary="${1#*=}"; shift ;;
    --root) [ $# -ge 2 ] || die "--root needs a directory"; root="$2"; shift 2 ;;
    --root=*) root="${1#*=}"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

# "/" → "" so that "$dest/etc/…" is "/etc/…"; any other root is made absolute.
if [ "$root" = / ]; then
  dest=""
  real=1
else
  mkdir -p "$root"
  dest="$(cd "$root" && pwd)"
  real=0
fi

if [ "$real" = 1 ] && [ "$(id -u)" -ne 0 ]; then
  die "run as root (or pass --root DIR to install into a directory)"
fi
[ -f "$binary" ] || die "no binary at $binary (download parley first, or pass --binary PATH)"
[ -x "$binary" ] || die "$binary is not executable (chmod +x it)"
# Running it proves the architecture and the C library fit this machine.
version="$("$binary" --version 2>&1)" || die "$binary does not run here: $version (check: ldd $binary)"
for f in systemd/parley.service systemd/parley-backup.service systemd/parley-backup.timer parley.toml; do
  [ -f "$here/$f" ] || die "missing $here/$f (run install.sh from the parley packaging/ directory)"
done

bin_path=/usr/local/bin/parley
unit_dir=/etc/systemd/system
changed=0
changed_units=0
changed_binary=0
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# put SOURCE TARGET MODE: install SOURCE as $dest/TARGET unless it is already there with the
# same content and mode (so a second run touches nothing, not even mtimes).
put() {
  local source="$1" target="$dest$2" mode="$3"
  if [ -f "$target" ] && cmp -s "$source" "$target" &&
    [ "$(stat -c %a "$target")" = "${mode#0}" ]; then
    echo "unchanged  $2"
    return 1
  fi
  mkdir -p "$(dirname "$target")"
  # Copy beside the target, then rename: a running binary is replaced, never overwritten.
  install -m "$mode" "$source" "$target.parley-new"
  mv -f "$target.parley-new" "$target"
  echo "installed  $2"
  changed=$((changed + 1))
  return 0
}

run() {
  if [ "$real" = 1 ]; then
    "$@"
  else
    echo "would run: $(printf '%q ' "$@")"
  fi
}

echo "parley: installing $version into ${dest:-/}"

# The binary.
if put "$binary" "$bin_path" 0755; then changed_binary=1; fi

# The units, pointed at /usr/local/bin.
for unit in parley.service parley-backup.service parley-backup.timer; do
  sed "s|/usr/bin/parley|$bin_path|g" "$here/systemd/$unit" >"$work/$unit"
  if put "$work/$unit" "$unit_dir/$unit" 0644; then changed_units=1; fi
done

# The config: never overwrite one that exists (it is the admin's).
if [ -e "$dest/etc/parley/parley.toml" ]; then
  echo "kept       /etc/parley/parley.toml (exists)"
else
  put "$here/parley.toml" /etc/parley/parley.toml 0644 || true
fi

# The system user. parley.service says DynamicUser=yes and User=parley: when a static user of
# that name exists, systemd uses it (stable ownership, and a group to give TLS keys to).
if [ "$real" = 1 ] && getent passwd parley >/dev/null; then
  echo "unchanged  user parley (exists)"
else
  run useradd --system --user-group --no-create-home --home-dir /var/lib/parley \
    --shell /usr/sbin/nologin --comment "parley chat server" parley
  if [ "$real" = 1 ]; then changed=$((changed + 1)); fi
fi

# systemd: reload only if a unit changed, enable only if not enabled, never start.
if [ "$real" = 1 ] && [ ! -d /run/systemd/system ]; then
  echo "systemd is not running here: enable later with" \
    "systemctl enable parley.service parley-backup.timer"
else
  if [ "$changed_units" = 1 ] || [ "$real" = 0 ]; then
    run systemctl daemon-reload
  fi
  for unit in parley.service parley-backup.timer; do
    if [ "$real" = 1 ] && systemctl --quiet is-enabled "$unit" 2>/dev/null; then
      echo "unchanged  $unit enabled"
    else
      run systemctl enable "$unit"
    fi
  done
  # An upgrade: move a running server onto the new binary (no-op when it is stopped).
  if [ "$changed_binary" = 1 ] || [ "$changed_units" = 1 ]; then
    run systemctl try-restart parley.service
  fi
fi

if [ "$changed" = 0 ]; then
  echo "parley: already installed, nothing changed"
else
  echo "parley: done ($changed change(s)). Edit /etc/parley/parley.toml, then:" \
    "systemctl start parley && journalctl -u parley -f"
fi
