#!/usr/bin/env bash
# Restart time on a large database: Debian's Mosquitto starting on a mosquitto.db, Midge's first
# start on the same file (it imports it into its own store, mosquitto.db.midge), and Midge's second start
# (it loads mosquitto.db.midge). Each time is from exec until the broker's port accepts a connection; the
# broker's CPU seconds and peak RSS at that moment, and the time SIGTERM → exit, are shown too.
# After each start one session (client id bench-N, clean session 0) must come back with session
# present and its QUEUED messages, and one retained message must be there.
#
# usage: scripts/bench-restart.sh [--no-build] [--midge PATH] [--scratch-path DIR] [--db DIR]
#                                 [-r RETAINED] [-s SESSIONS] [-q QUEUED] [--rounds N] [--out DIR]
#   --db DIR          folder with the mosquitto.db to start on (default /tmp/midge-restart-db);
#                     made with scripts/make-mosquitto-db.sh -r -s -q when it has none
#   -r, -s, -q        its size (default 1000000 retained, 100000 sessions, 10 queued each)
#   --rounds N        repeat the three starts N times (default 3), each on fresh copies
#   --no-build, --midge, --scratch-path, --out: as bench-vs-mosquitto.sh
# Environment: MOSQUITTO (default /usr/sbin/mosquitto).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/bench-lib.sh
. "$ROOT/scripts/bench-lib.sh"
DB=/tmp/midge-restart-db
RETAINED=1000000 SESSIONS=100000 QUEUED=10
ROUNDS=3

while [ $# -gt 0 ]; do
    if common_option "$@"; then shift "$SHIFT"; continue; fi
    case "$1" in
        --db) DB="$2"; shift ;;
        -r) RETAINED="$2"; shift ;;
        -s) SESSIONS="$2"; shift ;;
        -q) QUEUED="$2"; shift ;;
        --rounds) ROUNDS="$2"; shift ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

prepare midge-bench-restart
if [ ! -s "$DB/mosquitto.db" ]; then
    echo "== making $DB/mosquitto.db: $RETAINED retained, $SESSIONS sessions x $QUEUED queued" >&2
    "$ROOT/scripts/make-mosquitto-db.sh" "$DB" -r "$RETAINED" -s "$SESSIONS" -q "$QUEUED"
fi
RESULTS="$OUT/results.txt"
: >"$RESULTS"
trap stop_broker EXIT

# Polls the port every ~5 ms (no Python here: its start-up alone can take a second on a busy
# machine); sets OPENED to $EPOCHREALTIME when it accepts a connection, fails if the broker exits.
OPENED=""
wait_open() { # port
    local _pid _name state
    while :; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then OPENED="$EPOCHREALTIME"; return 0; fi
        read -r _pid _name state _ 2>/dev/null <"/proc/$BROKER_PID/stat" || return 1
        [ "$state" != Z ] || return 1
        sleep 0.005
    done
}

# One session must come back with session present and its queued messages, and one retained
# message must be there (raw MQTT 3.1.1).
check() { # port client_index
    python3 - "$1" "$2" "$QUEUED" "$RETAINED" <<'PY'
import socket, struct, sys
port, index, queued, retained = (int(a) for a in sys.argv[1:])
def s(x): b = x.encode(); return struct.pack("!H", len(b)) + b
def packet(first, body):
    n, rl = len(body), bytearray()
    while True:
        d, n = n % 128, n // 128
        rl.append(d | (0x80 if n else 0))
        if not n: break
    return bytes([first]) + bytes(rl) + body
def read_packet(c):
    def exactly(n):
        d = b""
        while len(d) < n:
            chunk = c.recv(n - len(d))
            if not chunk: raise SystemExit("connection closed")
            d += chunk
        return d
    first = exactly(1)[0]; n, m = 0, 1
    while True:
        b = exactly(1)[0]; n += (b & 0x7F) * m; m *= 128
        if not b & 0x80: break
    return first, exactly(n)
c = socket.create_connection(("127.0.0.1", port), timeout=10)
c.sendall(packet(0x10, s("MQTT") + bytes([4, 0]) + struct.pack("!H", 60) + s(f"bench-{index}")))
first, body = read_packet(c)
present = body[0] & 1
got = 0
try:
    while got < queued:
        first, body = read_packet(c)
        if first >> 4 == 3:
            got += 1
            if (first >> 1) & 3:
                t = struct.unpack("!H", body[:2])[0]
                c.sendall(bytes([0x40, 2]) + body[2 + t:4 + t])
except socket.timeout:
    pass
c.sendall(b"\xe0\x00"); c.close()
r = 0
if retained:
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    c.sendall(packet(0x10, s("MQTT") + bytes([4, 2]) + struct.pack("!H", 60) + s("restart-check")))
    read_packet(c)
    c.sendall(packet(0x82, struct.pack("!H", 1) + s(f"bench/retained/{retained - 1}") + bytes([0])))
    try:
        while True:
            first, body = read_packet(c)
            if first >> 4 == 3 and first & 1: r += 1; break
    except socket.timeout:
        pass
    c.sendall(b"\xe0\x00"); c.close()
ok = present == 1 and got == queued and r == (1 if retained else 0)
print(f"session present {present}, {got} of {queued} queued, {r} retained: {'ok' if ok else 'WRONG'}")
PY
}

CHECKED=0
measure() { # label kind data_dir round
    local label="$1" kind="$2" data="$3" round="$4" port conf log t0 t1 usage checked s0 s1 files
    port="$(free_port)"
    conf="$OUT/$label.r$round.conf"
    log="$OUT/$label.r$round.log"
    cat >"$conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence true
persistence_location $data/
autosave_interval 0
max_queued_messages 0
max_connections -1
log_dest stderr
log_type error
log_type warning
log_type notice
CONF
    chmod 644 "$conf"
    : >"$log"
    t0="$EPOCHREALTIME"
    launch_broker "$kind" "$conf" "$log"
    wait_open "$port" || { echo "$label did not start; see $log" >&2; tail -5 "$log" >&2; exit 1; }
    t1="$OPENED"
    usage="$(broker_usage "$BROKER_PID")"
    # Each check takes another session's queue (the import's check changes mosquitto.db.midge).
    CHECKED=$((CHECKED + 1))
    checked="$(check "$port" "$((CHECKED % SESSIONS))")"
    s0="$EPOCHREALTIME"
    stop_broker 600
    s1="$EPOCHREALTIME"
    # The broker's own file(s) after the stop: mosquitto.db as Mosquitto rewrote it, mosquitto.db.midge (+ -wal).
    if [ "$kind" = mosquitto ]; then files=("$data/mosquitto.db"); else files=("$data"/mosquitto.db.midge*); fi
    echo "$label $round $t0 $t1 $usage $s0 $s1 $(du -ck "${files[@]}" | tail -1 | cut -f1) $checked" | tee -a "$RESULTS" >&2
}

echo "database:  $DB/mosquitto.db ($(du -h "$DB/mosquitto.db" | cut -f1))"
for round in $(seq 1 "$ROUNDS"); do
    for kind in mosquitto midge; do
        data="$OUT/data.$kind"
        rm -rf "$data"
        mkdir -p "$data"
        cp "$DB/mosquitto.db" "$data/"
        chmod 0777 "$data"; chmod 0666 "$data/mosquitto.db"   # Mosquitto runs as user mosquitto
        if [ "$kind" = mosquitto ]; then
            measure mosquitto mosquitto "$data" "$round"
        else
            measure midge-import midge "$data" "$round"
            measure midge-load midge "$data" "$round"
        fi
    done
done

python3 - "$RESULTS" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    label, t0, t1, cpu, hwm, s0, s1, disk = f[0], float(f[2]), float(f[3]), float(f[4]), int(f[5]), float(f[7]), float(f[8]), int(f[9])
    check = " ".join(f[10:])
    rows.setdefault(label, []).append((t1 - t0, cpu, hwm / 1024, s1 - s0, disk / 1024, check))
names = {"mosquitto": "Mosquitto start", "midge-import": "Midge first start (import)", "midge-load": "Midge second start (own store)"}
print()
print("| start | to port open, s (each round) | median s | CPU s | peak RSS MiB | SIGTERM → exit s | its file MiB after | check |")
print("|---|---|---|---|---|---|---|---|")
for label in ("mosquitto", "midge-import", "midge-load"):
    r = rows.get(label)
    if not r: continue
    med = lambda i: statistics.median(x[i] for x in r)
    print(f"| {names[label]} | {', '.join(f'{x[0]:.2f}' for x in r)} | {med(0):.2f} | {med(1):.1f} | {med(2):.0f} | {med(3):.2f} | {med(4):.1f} | {r[-1][5]} |")
PY
