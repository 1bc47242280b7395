#!/usr/bin/env bash
# The cost of an ACL on the hot path: the same release midge under the same `midge bench`
# load, without and with an acl_file whose rules are patterns (so every decision goes through
# the rule matcher once, then the per-session cache). Prints throughput, latency and the
# broker's CPU seconds per run (from /proc/PID/stat). Loopback only; bounded runs.
#   scripts/bench-acl-cost.sh [path/to/release/midge] [rounds]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
MIDGE=${1:-.build-release/release/midge}
ROUNDS=${2:-2}
if [ ! -x "$MIDGE" ]; then swift build -c release --scratch-path .build-release --product midge; fi
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cat > "$DIR/acl" <<'ACL'
user nobody
topic read nothing/#
pattern readwrite bench/#
pattern readwrite %c/#
topic deny secret/#
ACL
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
run() { # label acl(yes|no) bench-args...
    local label=$1 acl=$2; shift 2
    local port; port=$(free_port)
    { echo "listener $port 127.0.0.1"; echo "allow_anonymous true"; echo "max_inflight_messages 1000"
      echo "max_queued_messages 100000"; [ "$acl" = yes ] && echo "acl_file $DIR/acl"; } > "$DIR/midge.conf"
    "$MIDGE" -c "$DIR/midge.conf" > /dev/null 2>&1 & local pid=$!
    sleep 0.5
    local before; before=$(cpu_ticks "$pid")
    "$MIDGE" bench "$@" -p "$port" --json > "$DIR/out.json" 2>/dev/null || true
    local after; after=$(cpu_ticks "$pid")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    python3 - "$label" "$acl" $((after - before)) "$DIR/out.json" <<'PY'
import json, sys
label, acl, ticks, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
d = json.load(open(path)); l = d["latency"]
delivered = d["received"]
print("%-16s acl=%-3s out=%8.0f msg/s  p50=%7.2f ms  p99=%7.2f ms  lost=%d dup=%d  broker CPU %.2f s = %.1f µs/delivery"
      % (label, acl, d["throughputOut"], l["p50"], l["p99"], d["lost"], d["duplicates"], ticks / 100,
         ticks / 100 / max(delivered, 1) * 1e6))
PY
}
for _ in $(seq "$ROUNDS"); do
    run p2p-q1 no p2p -P 100 -q 1 -d 8
    run p2p-q1 yes p2p -P 100 -q 1 -d 8
    run fanout-q0-100k no fanout -P 1 -S 100 -q 0 -r 1000 -d 8
    run fanout-q0-100k yes fanout -P 1 -S 100 -q 0 -r 1000 -d 8
done
