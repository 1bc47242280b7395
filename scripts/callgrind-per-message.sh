#!/usr/bin/env bash
# Instructions per delivered message of a midge broker binary, counted by callgrind (repeatable
# on a shared machine, unlike wall-clock figures): the broker runs under callgrind with the load
#   midge bench p2p -P 10 -q 1 -s 16 -r 5 --inflight 1000 --threads 2
# for SHORT and for LONG seconds; instructions per message = difference of the two totals /
# difference of the messages, which cancels start-up, connects and shutdown.
#   scripts/callgrind-per-message.sh BROKER_BINARY [BENCH_BINARY] [SHORT LONG]
# (defaults: the broker binary is also the load generator; 3 and 15 s). Prints one line.
set -euo pipefail
BROKER=$1 BENCH=${2:-$1} SHORT=${3:-3} LONG=${4:-15}
command -v valgrind >/dev/null || { echo "error: valgrind not installed (apt-get install valgrind)" >&2; exit 1; }
DIR=$(mktemp -d); trap 'rm -rf "$DIR"' EXIT
# Started as root, midge becomes user `mosquitto` (mosquitto.conf's `user`) once it listens, and
# callgrind could no longer write its profile: as root, the broker runs as `nobody` from the start.
chmod 1777 "$DIR"
AS=()
if [ "$(id -u)" -eq 0 ] && id -u nobody >/dev/null 2>&1; then AS=(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups); fi  # execs: kill -INT reaches the broker
# valgrind 3.19 cannot read the DWARF 5 of a Swift binary: profile a copy without debug info.
strip --strip-debug -o "$DIR/broker" "$BROKER"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
run() {
    local seconds=$1 port
    port=$(free_port)
    printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_inflight_messages 1000\n' "$port" > "$DIR/broker.conf"
    chmod 644 "$DIR/broker.conf"
    "${AS[@]}" valgrind --tool=callgrind --callgrind-out-file="$DIR/cg-$seconds.out" "$DIR/broker" -c "$DIR/broker.conf" > "$DIR/broker-$seconds.log" 2>&1 &
    local pid=$!
    for _ in $(seq 100); do python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && break; sleep 0.2; done
    "$BENCH" bench p2p -P 10 -q 1 -s 16 -r 5 --inflight 1000 --threads 2 -d "$seconds" -p "$port" --json > "$DIR/bench-$seconds.json"
    kill -INT "$pid"; wait "$pid" 2>/dev/null || true
}
run "$SHORT"; run "$LONG"
python3 - "$DIR" "$SHORT" "$LONG" <<'PY'
import json, re, sys
d, short, long_ = sys.argv[1], sys.argv[2], sys.argv[3]
def total(s): return int(re.search(r"^summary: (\d+)", open(f"{d}/cg-{s}.out").read(), re.M).group(1))
def received(s): return json.load(open(f"{d}/bench-{s}.json"))["received"]
di, dm = total(long_) - total(short), received(long_) - received(short)
print(f"instructions per message: {di / dm:,.0f} ({di:,} instructions / {dm} messages, {short} s vs {long_} s)")
PY
