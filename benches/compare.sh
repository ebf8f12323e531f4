#!/usr/bin/env bash
# Runs parley's load scenarios (benches/load.rs) against parley and against the Node.js
# socket.io peer (benches/peers/socketio-node), one after the other on this machine, N runs
# each, and prints the median of every figure with the ratio parley / peer.
#
#   benches/compare.sh [--quick | --full] [--runs N] [--only CASE[,CASE…]] [--out FILE]
#                      [--skip-build] [--list]
#   benches/compare.sh --table FILE.jsonl
#
#   --quick        small scale, a few minutes (the default)
#   --full         the scale of issue 5 (1k/10k/50k fanout, 10k rooms, 10k/50k/100k idle,
#                  1M-message history…); run it on an otherwise idle machine
#   --runs N       runs per case and server (default 3); the table shows medians
#   --only LIST    only these cases (names as printed by --list)
#   --out FILE     raw JSON lines (one per run) go here; the table goes to FILE.txt
#                  [default: $CARGO_TARGET_DIR/load/compare-<mode>-<time>.jsonl]
#   --skip-build   use the binaries already built
#   --list         print the cases of the chosen mode and exit
#   --table FILE   only print the table of an earlier run's raw JSON lines
#
# parley persists every message durably (fsync'd group commits in redb) before it acks or
# broadcasts it; the peer keeps history in an in-memory array and persists nothing.
#
# Environment: CARGO_TARGET_DIR is honoured (binaries and results live there); LOAD_ARGS adds
# flags to every harness run (e.g. LOAD_ARGS="--source-addrs 32").
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
peer_dir="$repo/benches/peers/socketio-node"

mode=quick
runs=3
only=""
out=""
build=1
list=0
table_only=""

while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) mode=quick ;;
        --full) mode=full ;;
        --runs) runs="$2"; shift ;;
        --runs=*) runs="${1#*=}" ;;
        --only) only="$2"; shift ;;
        --only=*) only="${1#*=}" ;;
        --out) out="$2"; shift ;;
        --out=*) out="${1#*=}" ;;
        --skip-build) build=0 ;;
        --list) list=1 ;;
        --table) table_only="$2"; shift ;;
        --table=*) table_only="${1#*=}" ;;
        -h|--help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "compare.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

# Prints the median table of a results file (one JSON line per run).
table() {
python3 - "$1" <<'PY'
import json
import statistics
import sys

rows = {}
order = []
with open(sys.argv[1]) as f:
    for line in f:
        line = line.strip()
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        case = r.get("label") or r["scenario"]
        if case not in rows:
            rows[case] = {"parley": [], "peer": []}
            order.append(case)
        rows[case][r["target"]].append(r["figures"])


def median(runs, key):
    values = [f[key] for f in runs if isinstance(f.get(key), (int, float)) and not isinstance(f.get(key), bool)]
    return statistics.median(values) if values else None


def fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 100 or float(v).is_integer():
        return f"{v:,.0f}"
    return f"{v:.3g}"


print("parley persists every message durably before acking it; the peer keeps history in memory only.")
print()
header = f"{'case':<14} {'figure':<24} {'parley':>14} {'peer':>14} {'parley/peer':>12}  runs"
print(header)
print("-" * len(header))
for case in order:
    both = rows[case]
    keys = []
    for runs in (both["parley"], both["peer"]):
        for figures in runs:
            for k, v in figures.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in keys:
                    keys.append(k)
    for k in keys:
        a = median(both["parley"], k)
        b = median(both["peer"], k)
        ratio = f"{a / b:.2f}" if a is not None and b not in (None, 0) else "-"
        print(f"{case:<14} {k:<24} {fmt(a):>14} {fmt(b):>14} {ratio:>12}  {len(both['parley'])}/{len(both['peer'])}")
    print()
PY
}

if [[ -n "$table_only" ]]; then
    table "$table_only"
    exit 0
fi

if ! [[ "$runs" =~ ^[1-9][0-9]*$ ]]; then
    echo "compare.sh: --runs needs a positive number" >&2
    exit 2
fi

history_dir="$target_dir/load/history-$mode"

# Cases: "name|harness arguments". The history case keeps its seeded parley database in
# $history_dir, so only the first run of a machine seeds it.
declare -a cases
if [[ "$mode" == quick ]]; then
    cases=(
        "fanout-200|fanout --clients 200 --rate 20 --duration 5"
        "rooms-200|rooms --clients 200 --room-size 10 --rate 2 --duration 5"
        "idle-1k|idle --clients 1000 --window 30"
        "ingest-1|ingest --senders 1 --sockets 40 --duration 4"
        "ingest-10|ingest --senders 10 --sockets 200 --duration 4"
        "ingest-100|ingest --senders 100 --sockets 400 --duration 4"
        "history-20k|history --messages 20000 --duration 5 --data-dir $history_dir"
        "polling-100|polling --clients 100 --rate 10 --duration 5"
    )
else
    # The largest cases need more open files than some machines allow (each side holds one
    # descriptor per connection and a hard limit can only be raised with CAP_SYS_RESOURCE):
    # they are scaled down to fit, and named by the count actually used.
    hard="$(ulimit -Hn)"
    if [[ "$hard" == unlimited ]]; then
        hard=1048576
    fi
    fit() {
        local want="$1" cap=$((hard - 1000))
        if ((want > cap)); then
            echo "compare.sh: $want connections do not fit the open-files limit $hard; using $cap" >&2
            echo "$cap"
        else
            echo "$want"
        fi
    }
    big="$(fit 50000)"
    huge="$(fit 100000)"
    cases=(
        "fanout-1k|fanout --clients 1000 --rate 40 --duration 20"
        "fanout-2k|fanout --clients 2000 --rate 40 --duration 20"
        "fanout-10k|fanout --clients 10000 --rate 8 --duration 20"
        "fanout-$big|fanout --clients $big --rate 2 --duration 20 --users 500"
        "rooms-10k|rooms --clients 10000 --room-size 10 --rate 1 --duration 20"
        "idle-10k|idle --clients 10000 --window 30"
        "idle-$big|idle --clients $big --window 30 --users 500"
        "ingest-1|ingest --senders 1 --duration 10"
        "ingest-10|ingest --senders 10 --duration 10"
        "ingest-100|ingest --senders 100 --duration 10"
        "history-1m|history --messages 1000000 --duration 10 --data-dir $history_dir"
        "polling-1k|polling --clients 1000 --rate 10 --duration 20"
    )
    if ((huge > big)); then
        cases+=("idle-$huge|idle --clients $huge --window 30 --users 1000")
    fi
fi

if [[ -n "$only" ]]; then
    declare -a chosen=()
    IFS=',' read -r -a wanted <<< "$only"
    for case_line in "${cases[@]}"; do
        for name in "${wanted[@]}"; do
            if [[ "${case_line%%|*}" == "$name" ]]; then
                chosen+=("$case_line")
            fi
        done
    done
    if [[ ${#chosen[@]} -eq 0 ]]; then
        echo "compare.sh: no case matches --only $only (see --list)" >&2
        exit 2
    fi
    cases=("${chosen[@]}")
fi

if [[ "$list" -eq 1 ]]; then
    for case_line in "${cases[@]}"; do
        printf '%-14s %s\n' "${case_line%%|*}" "${case_line#*|}"
    done
    exit 0
fi

if [[ -z "$out" ]]; then
    out="$target_dir/load/compare-$mode-$(date +%Y%m%d-%H%M%S).jsonl"
fi
mkdir -p "$(dirname "$out")"
: > "$out"

if [[ "$build" -eq 1 ]]; then
    echo "== building release parley and the load harness" >&2
    cargo build --release --bin parley >&2
    cargo bench --bench load --no-run >&2
fi
if [[ ! -d "$peer_dir/node_modules/socket.io" ]]; then
    echo "== installing the peer's npm dependencies" >&2
    (cd "$peer_dir" && npm ci --no-audit --no-fund) >&2
fi

echo "== machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "== mode $mode, $runs run(s) per case and server; raw results in $out" >&2

declare -a extra=()
if [[ -n "${LOAD_ARGS:-}" ]]; then
    read -r -a extra <<< "$LOAD_ARGS"
fi

failures=0
for case_line in "${cases[@]}"; do
    name="${case_line%%|*}"
    read -r -a case_args <<< "${case_line#*|}"
    for ((run = 1; run <= runs; run++)); do
        for server in parley peer; do
            echo "== $name run $run/$runs: $server" >&2
            if line="$(cargo bench -q --bench load -- "${case_args[@]}" "${extra[@]}" \
                --target "$server" --label "$name" \
                --parley-bin "$target_dir/release/parley")"; then
                printf '%s\n' "$line" | tail -n 1 >> "$out"
            else
                echo "compare.sh: $name ($server, run $run) failed" >&2
                failures=$((failures + 1))
            fi
        done
    done
done

table "$out" > "$out.txt"
cat "$out.txt"
echo "== table in $out.txt, raw JSON lines in $out" >&2
if [[ "$failures" -gt 0 ]]; then
    echo "compare.sh: $failures run(s) failed" >&2
    exit 1
fi
