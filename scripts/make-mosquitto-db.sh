#!/usr/bin/env bash
# Makes a sample Mosquitto database (mosquitto.db, format 6) with Debian's Mosquitto 2.0, for
# manual checks of Midge's importer (MosquittoDatabase) and for the restart-time benchmark.
#
#   scripts/make-mosquitto-db.sh OUT_DIR [-r RETAINED] [-s SESSIONS] [-q QUEUED] [-p PAYLOAD_BYTES]
#
# OUT_DIR/mosquitto.db then holds RETAINED retained messages (bench/retained/N) and SESSIONS
# persistent MQTT 3.1.1 sessions (clean session 0, client ids bench-N, each subscribed to
# bench/s/N at QoS 1) holding QUEUED queued QoS 1 messages each. Defaults: 1000, 100, 10, 32.
# The benchmark's database: -r 1000000 -s 100000 -q 10.
#
# The clients are raw MQTT over sockets in Python 3 (no package needed): retained messages are
# QoS 0 PUBLISHes pipelined over one connection; each session is one connection that sends
# CONNECT, SUBSCRIBE and DISCONNECT in one write (64 connections at a time); the queued
# messages are QoS 1 PUBLISHes pipelined over one connection with a window of PUBACKs.
# Mosquitto writes the database when it gets SIGTERM at the end.
set -euo pipefail

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
[ $# -ge 1 ] || usage 2
case "$1" in -h|--help) usage 0 ;; esac
OUT_DIR=$1; shift
RETAINED=1000 SESSIONS=100 QUEUED=10 PAYLOAD=32
while getopts "r:s:q:p:h" opt; do
    case $opt in
        r) RETAINED=$OPTARG ;; s) SESSIONS=$OPTARG ;; q) QUEUED=$OPTARG ;; p) PAYLOAD=$OPTARG ;;
        h) usage 0 ;; *) usage 2 ;;
    esac
done

MOSQUITTO=$(command -v mosquitto || true)
[ -n "$MOSQUITTO" ] || for c in /usr/sbin/mosquitto /usr/local/sbin/mosquitto; do [ -x "$c" ] && MOSQUITTO=$c && break; done
if [ -z "$MOSQUITTO" ]; then
    echo "mosquitto not found: DEBIAN_FRONTEND=noninteractive apt-get install -y mosquitto" >&2
    exit 1
fi
command -v python3 >/dev/null || { echo "python3 not found" >&2; exit 1; }

mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
rm -f "$OUT_DIR/mosquitto.db" "$OUT_DIR/mosquitto.db.new"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
CONF=$(mktemp /tmp/make-mosquitto-db.XXXXXX.conf)
LOG="$OUT_DIR/mosquitto.log"
# `user root`: started as root, Mosquitto keeps root (instead of user `mosquitto`, who may not
# write OUT_DIR); ignored otherwise. No autosave: the database is written once, at exit.
cat > "$CONF" <<EOF
listener $PORT 127.0.0.1
allow_anonymous true
persistence true
persistence_location $OUT_DIR/
autosave_interval 0
max_queued_messages 0
user root
log_dest stderr
log_type error
log_type warning
EOF
chmod 644 "$CONF"

"$MOSQUITTO" -c "$CONF" 2> "$LOG" &
BROKER=$!
cleanup() { kill "$BROKER" 2>/dev/null || true; rm -f "$CONF"; }
trap cleanup EXIT

START=$(date +%s.%N)
python3 - "$PORT" "$RETAINED" "$SESSIONS" "$QUEUED" "$PAYLOAD" <<'PYTHON'
import selectors, socket, struct, sys, time

port, retained, sessions, queued, payload_size = (int(a) for a in sys.argv[1:])
payload = (b"x" * payload_size)

def remaining_length(n):
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)

def packet(first, body):
    return bytes([first]) + remaining_length(len(body)) + body

def string(s):
    b = s.encode()
    return struct.pack("!H", len(b)) + b

def connect(client_id, clean):
    flags = 0x02 if clean else 0x00
    return packet(0x10, string("MQTT") + bytes([4, flags]) + struct.pack("!H", 60) + string(client_id))

def publish(topic, qos, retain, packet_id=0):
    first = 0x30 | (qos << 1) | (1 if retain else 0)
    body = string(topic) + (struct.pack("!H", packet_id) if qos else b"") + payload
    return packet(first, body)

def open_connection(client_id, clean=True):
    for attempt in range(50):
        try:
            s = socket.create_connection(("127.0.0.1", port))
            break
        except OSError:
            time.sleep(0.1)
    else:
        sys.exit("cannot connect to mosquitto on port %d" % port)
    s.sendall(connect(client_id, clean))
    read_exactly(s, 4)  # CONNACK
    return s

def read_exactly(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            sys.exit("mosquitto closed the connection")
        data += chunk
    return data

def ping(s):
    s.sendall(b"\xc0\x00")
    # Everything before the PINGREQ has been handled when the PINGRESP comes.
    buf = b""
    while not buf.endswith(b"\xd0\x00"):
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("mosquitto closed the connection")
        buf = (buf + chunk)[-2:]

t0 = time.time()
# Retained messages: QoS 0 over one connection, in batches.
if retained:
    s = open_connection("make-db-retained")
    batch = []
    for i in range(retained):
        batch.append(publish("bench/retained/%d" % i, 0, True))
        if len(batch) == 2000:
            s.sendall(b"".join(batch)); batch = []
    s.sendall(b"".join(batch))
    ping(s)
    s.sendall(b"\xe0\x00"); s.close()
t1 = time.time()
print("retained: %d in %.1f s" % (retained, t1 - t0), flush=True)

# Sessions: CONNECT (clean session 0) + SUBSCRIBE + DISCONNECT in one write, 64 at a time;
# a session counts as made when Mosquitto closes the connection after the DISCONNECT.
selector = selectors.DefaultSelector()
next_session, open_count, done = 0, 0, 0
def start_session(i):
    s = socket.create_connection(("127.0.0.1", port))
    sub = packet(0x82, struct.pack("!H", 1) + string("bench/s/%d" % i) + bytes([1]))
    s.sendall(connect("bench-%d" % i, False) + sub + b"\xe0\x00")
    selector.register(s, selectors.EVENT_READ)
while done < sessions:
    while next_session < sessions and open_count < 64:
        start_session(next_session); next_session += 1; open_count += 1
    for key, _ in selector.select():
        if not key.fileobj.recv(4096):
            selector.unregister(key.fileobj); key.fileobj.close()
            open_count -= 1; done += 1
t2 = time.time()
print("sessions: %d in %.1f s" % (sessions, t2 - t1), flush=True)

# Queued messages: QoS 1 to bench/s/N, round robin, pipelined with at most 20000 unacknowledged.
if sessions and queued:
    s = open_connection("make-db-publisher")
    total, sent, acked, packet_id = sessions * queued, 0, 0, 0
    pending = b""
    while acked < total:
        batch = []
        while sent < total and sent - acked < 20000 and len(batch) < 2000:
            packet_id = packet_id % 65535 + 1
            batch.append(publish("bench/s/%d" % (sent % sessions), 1, False, packet_id))
            sent += 1
        if batch:
            s.sendall(b"".join(batch))
        data = s.recv(1 << 20)
        if not data:
            sys.exit("mosquitto closed the publisher's connection")
        pending += data
        acked += len(pending) // 4  # PUBACK: 40 02 id id
        pending = pending[len(pending) // 4 * 4:]
    s.sendall(b"\xe0\x00"); s.close()
t3 = time.time()
print("queued: %d x %d in %.1f s" % (sessions, queued, t3 - t2), flush=True)
PYTHON

GENERATED=$(date +%s.%N)
kill -TERM "$BROKER"
wait "$BROKER" || { echo "mosquitto exited with $?; its log: $LOG" >&2; exit 1; }
trap 'rm -f "$CONF"' EXIT
END=$(date +%s.%N)
[ -s "$OUT_DIR/mosquitto.db" ] || { echo "mosquitto wrote no database; its log: $LOG" >&2; exit 1; }
awk -v s="$START" -v g="$GENERATED" -v e="$END" \
    'BEGIN { printf "clients: %.1f s, mosquitto saving and exiting: %.1f s, total %.1f s\n", g - s, e - g, e - s }'
ls -l "$OUT_DIR/mosquitto.db"
