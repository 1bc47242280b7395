#!/usr/bin/env bash
# A/B two midge broker binaries (e.g. before and after a change) under the same `midge bench`
# loads: p2p 100 QoS 1 unthrottled and fanout 1→100 QoS 0 at 100k deliveries/s, alternating,
# ROUNDS times. Prints throughput, latency, loss and the broker's CPU per delivery.
#   scripts/bench-ab.sh BEFORE_BINARY AFTER_BINARY [ROUNDS]
# Environment: AB_SCENARIOS="scenario args;scenario args" replaces the two default loads (e.g.
# AB_SCENARIOS="p2p -P 100 -q 1 -s 16 -r 100 -d 5 --inflight 1000 --threads 2" for the light-load
# latency case); BEFORE_ARGS / AFTER_ARGS are extra broker arguments (e.g. "--threads 1").
# Loopback only; every run is bounded (8 s).
set -euo pipefail
BEFORE=$1 AFTER=$2 ROUNDS=${3:-2}
BENCH=$AFTER
IFS=';' read -r -a LOADS <<< "${AB_SCENARIOS:-p2p -P 100 -q 1 -d 8;fanout -P 1 -S 100 -q 0 -r 1000 -d 8}"
DIR=$(mktemp -d); trap 'rm -rf "$DIR"' EXIT
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
for _ in $(seq "$ROUNDS"); do
  for label in before after; do
    bin=$BEFORE; extra=${BEFORE_ARGS:-}
    if [ "$label" = after ]; then bin=$AFTER; extra=${AFTER_ARGS:-}; fi
    for scenario in "${LOADS[@]}"; do
      port=$(free_port)
      printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_inflight_messages 1000\nmax_queued_messages 100000\n' "$port" > "$DIR/ab.conf"
      # shellcheck disable=SC2086
      "$bin" -c "$DIR/ab.conf" $extra > /dev/null 2>&1 & pid=$!; sleep 0.5; c0=$(cpu "$pid")
      # shellcheck disable=SC2086
      "$BENCH" bench $scenario -p "$port" --json > "$DIR/ab.json" 2>/dev/null || true
      c1=$(cpu "$pid"); kill "$pid"; wait "$pid" 2>/dev/null || true
      python3 - "$label" "$scenario" $((c1 - c0)) "$DIR/ab.json" <<'PY'
import json, sys
label, scenario, ticks, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
d = json.load(open(path)); l = d["latency"]
print("%-6s %-38s out=%8.0f/s p50=%7.2fms p99=%7.2fms lost=%d dup=%d cpu=%.2fs (%.1f µs/delivery)"
      % (label, scenario, d["throughputOut"], l["p50"], l["p99"], d["lost"], d["duplicates"], ticks / 100,
         ticks / 100 / max(d["received"], 1) * 1e6))
PY
    done
  done
done
