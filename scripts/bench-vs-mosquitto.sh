#!/usr/bin/env bash
# Runs the same `midge bench` scenarios against Debian's Mosquitto and against Midge (release),
# alternating, on loopback, and prints each figure side by side with the ratio Midge/Mosquitto,
# plus each broker's CPU seconds and peak RSS for the scenario (every scenario gets fresh
# broker processes, so /proc/PID/status VmHWM is that scenario's peak).
#
# usage: scripts/bench-vs-mosquitto.sh [--no-build] [--midge PATH] [--scratch-path DIR]
#                                      [--duration SECONDS] [--out DIR] [--only NAME[,NAME...]]
#   --no-build        use the existing release binary (SCRATCH/release/midge)
#   --midge PATH      the midge binary to test (broker and load generator); implies --no-build
#   --scratch-path    SwiftPM scratch path for the release build (default .build-release, so it
#                     doesn't collide with the debug .build others use)
#   --duration        seconds of publishing per scenario (default 5)
#   --out             where the per-run JSON, configs and logs go (default a new /tmp dir)
#   --only            run only these scenario names (see SCENARIOS below)
# Environment: MOSQUITTO (default /usr/sbin/mosquitto), BENCH_THREADS (default: cores),
#              MIDGE_ARGS (extra broker arguments for Midge, e.g. "--threads 1").
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCRATCH="$ROOT/.build-release"
MIDGE=""
BUILD=1
DURATION=5
OUT=""
ONLY=""
MOSQUITTO="${MOSQUITTO:-/usr/sbin/mosquitto}"
THREADS="${BENCH_THREADS:-$(nproc)}"

while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) BUILD=0 ;;
        --midge) MIDGE="$2"; BUILD=0; shift ;;
        --scratch-path) SCRATCH="$2"; shift ;;
        --duration) DURATION="$2"; shift ;;
        --out) OUT="$2"; shift ;;
        --only) ONLY="$2"; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

if [ "$BUILD" = 1 ]; then
    (cd "$ROOT" && swift build -c release --scratch-path "$SCRATCH" --product midge)
fi
MIDGE="${MIDGE:-$SCRATCH/release/midge}"
[ -x "$MIDGE" ] || { echo "no midge binary at $MIDGE" >&2; exit 1; }
[ -x "$MOSQUITTO" ] || { echo "no mosquitto at $MOSQUITTO" >&2; exit 1; }

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
OUT="${OUT:-$(mktemp -d /tmp/midge-vs-mosquitto.XXXXXX)}"
mkdir -p "$OUT"
chmod 755 "$OUT"   # Mosquitto started as root reads its config as user mosquitto
CLK_TCK="$(getconf CLK_TCK)"

# name | bench arguments (scenario first). Keep each short: the whole script stays under ~10 min.
# QoS 0 runs at a fixed rate: unthrottled QoS 0 only fills socket buffers and broker queues, so
# "lost" would mostly count messages still queued when the drain timeout ends the run.
# QoS 1/2 unthrottled runs are clocked by the acknowledgements (window --inflight 1000).
SCENARIOS=(
    "fanout-q0-200k|fanout -P 1 -S 100 -q 0 -s 16 -r 2000"
    "fanout-q1|fanout -P 1 -S 100 -q 1 -s 16"
    "fanout-q1-100k|fanout -P 1 -S 100 -q 1 -s 16 -r 1000"
    "p2p-q0-100k|p2p -P 100 -q 0 -s 16 -r 1000"
    "p2p-q1|p2p -P 100 -q 1 -s 16"
    "p2p-q1-10k|p2p -P 100 -q 1 -s 16 -r 100"
    "p2p-q1-30k|p2p -P 100 -q 1 -s 16 -r 300"
    "fanin-share-q1|fanin -P 100 -S 5 -q 1 -s 16"
    "p2p-q2|p2p -P 10 -q 2 -s 16"
    "fanout-q0-1KiB-100k|fanout -P 1 -S 100 -q 0 -s 1024 -r 1000"
    "conn-10k|conn -C 10000"
)

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

write_config() { # file port
    cat > "$1" <<CONF
listener $2 127.0.0.1
allow_anonymous true
max_inflight_messages 1000
max_queued_messages 100000
max_connections -1
set_tcp_nodelay true
log_dest stderr
log_type error
log_type warning
CONF
    chmod 644 "$1"
}

BROKER_PID=""
start_broker() { # kind port log
    local conf="$OUT/$1.conf"
    write_config "$conf" "$2"
    if [ "$1" = mosquitto ]; then
        "$MOSQUITTO" -c "$conf" >>"$3" 2>&1 &
    else
        # shellcheck disable=SC2086
        "$MIDGE" -c "$conf" ${MIDGE_ARGS:-} >>"$3" 2>&1 &
    fi
    BROKER_PID=$!
    local i
    for i in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
        kill -0 "$BROKER_PID" 2>/dev/null || { echo "$1 exited at start; see $3" >&2; return 1; }
        sleep 0.1
    done
    echo "$1 did not open port $2" >&2
    return 1
}

stop_broker() {
    [ -n "$BROKER_PID" ] || return 0
    kill -TERM "$BROKER_PID" 2>/dev/null || true
    local i
    for i in $(seq 1 50); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
    BROKER_PID=""
}
trap stop_broker EXIT

broker_usage() { # pid -> "cpu_seconds vmhwm_kib vmrss_kib"
    local stat cpu hwm rss
    stat="$(cat "/proc/$1/stat")"
    stat="${stat##*) }"   # fields after the command name; utime and stime are fields 14 and 15 overall
    cpu="$(echo "$stat" | awk -v tck="$CLK_TCK" '{ printf "%.2f", ($12 + $13) / tck }')"
    hwm="$(awk '/^VmHWM/ { print $2 }' "/proc/$1/status")"
    rss="$(awk '/^VmRSS/ { print $2 }' "/proc/$1/status")"
    echo "$cpu $hwm $rss"
}

run_one() { # kind name args
    local kind="$1" name="$2" args="$3" port log result
    port="$(free_port)"
    log="$OUT/$name.$kind.log"
    : > "$log"
    start_broker "$kind" "$port" "$log"
    local before
    before="$(broker_usage "$BROKER_PID")"
    result="$OUT/$name.$kind.json"
    local -a extra=(-d "$DURATION")
    # shellcheck disable=SC2086
    if ! timeout 180 "$MIDGE" bench $args "${extra[@]}" --inflight 1000 --threads "$THREADS" -p "$port" --json >"$result" 2>>"$log"; then
        echo "  ($kind: bench exited non-zero; see $log)" >&2
    fi
    local after
    after="$(broker_usage "$BROKER_PID")"
    echo "{\"kind\":\"$kind\",\"name\":\"$name\",\"args\":\"$args -d $DURATION --inflight 1000 --threads $THREADS\",\"before\":\"$before\",\"after\":\"$after\"}" >"$OUT/$name.$kind.usage.json"
    kill -0 "$BROKER_PID" 2>/dev/null || echo "  ($kind DIED during $name; see $log)" >&2
    stop_broker
}

echo "midge:     $MIDGE"
echo "mosquitto: $MOSQUITTO ($("$MOSQUITTO" -h 2>/dev/null | head -1))"
echo "results:   $OUT"
index=0
for entry in "${SCENARIOS[@]}"; do
    name="${entry%%|*}"
    args="${entry#*|}"
    if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$name,"* ]]; then continue; fi
    echo "== $name: midge bench $args -d $DURATION" >&2
    # Alternate which broker goes first so neither always gets the warmer machine.
    if [ $((index % 2)) = 0 ]; then order="mosquitto midge"; else order="midge mosquitto"; fi
    for kind in $order; do run_one "$kind" "$name" "$args"; done
    index=$((index + 1))
done

python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
names = []
for f in sorted(os.listdir(out), key=lambda f: os.path.getmtime(os.path.join(out, f))):
    if f.endswith(".usage.json"):
        n = f.split(".")[0]
        if n not in names: names.append(n)

def load(name, kind):
    try:
        with open(os.path.join(out, f"{name}.{kind}.json")) as fh: r = json.load(fh)
    except Exception: r = None
    with open(os.path.join(out, f"{name}.{kind}.usage.json")) as fh: u = json.load(fh)
    return r, u

def fmt(v):
    if v is None: return "-"
    if isinstance(v, float):
        if v >= 1000: return f"{v:,.0f}"
        if v >= 10: return f"{v:.1f}"
        return f"{v:.3f}"
    return f"{v:,}"

rows = []
for name in names:
    (mr, mu), (gr, gu) = load(name, "mosquitto"), load(name, "midge")
    rows.append((f"## {name}", mu["args"], "", ""))
    def usage(u):
        b, a = u["before"].split(), u["after"].split()
        return float(a[0]) - float(b[0]), int(a[1]) / 1024, int(b[2]) / 1024
    mcpu, mhwm, mbase = usage(mu); gcpu, ghwm, gbase = usage(gu)
    figs = []
    if mr is None or gr is None:
        figs.append(("result", "ok" if mr else "FAILED", "ok" if gr else "FAILED"))
    if mr and gr:
        if mr["scenario"] == "conn":
            figs += [("connected", mr["connected"], gr["connected"]),
                     ("connect failures", mr["connectFailures"], gr["connectFailures"]),
                     ("connect rate /s", mr["connectRate"], gr["connectRate"]),
                     ("connect p50 ms", mr["connectLatency"]["p50"], gr["connectLatency"]["p50"]),
                     ("connect p99 ms", mr["connectLatency"]["p99"], gr["connectLatency"]["p99"]),
                     ("closed by broker", mr["unexpectedCloses"], gr["unexpectedCloses"])]
            n_m, n_g = max(1, mr["connected"]), max(1, gr["connected"])
            figs.append(("KiB per connection", (mhwm - mbase) * 1024 / n_m, (ghwm - gbase) * 1024 / n_g))
        else:
            figs += [("msgs in /s", mr["throughputIn"], gr["throughputIn"]),
                     ("msgs out /s", mr["throughputOut"], gr["throughputOut"]),
                     ("sent", mr["sent"], gr["sent"]),
                     ("received", mr["received"], gr["received"]),
                     ("lost", mr["lost"], gr["lost"]),
                     ("duplicates", mr["duplicates"], gr["duplicates"]),
                     ("latency p50 ms", mr["latency"]["p50"], gr["latency"]["p50"]),
                     ("latency p90 ms", mr["latency"]["p90"], gr["latency"]["p90"]),
                     ("latency p99 ms", mr["latency"]["p99"], gr["latency"]["p99"]),
                     ("latency p99.9 ms", mr["latency"]["p999"], gr["latency"]["p999"]),
                     ("latency max ms", mr["latency"]["max"], gr["latency"]["max"])]
            if mr["stalled"] or gr["stalled"]:
                figs.append(("STALLED", str(mr["stalled"]), str(gr["stalled"])))
            if mr["unexpectedCloses"] or gr["unexpectedCloses"]:
                figs.append(("closed by broker", mr["unexpectedCloses"], gr["unexpectedCloses"]))
    figs += [("broker CPU s", mcpu, gcpu), ("broker peak RSS MiB", mhwm, ghwm)]
    for label, m, g in figs:
        ratio = ""
        if isinstance(m, (int, float)) and isinstance(g, (int, float)) and m:
            ratio = f"{g / m:.2f}"
        rows.append((label, fmt(m), fmt(g), ratio))

w = max(len(r[0]) for r in rows if not r[0].startswith("## "))
print()
print(f"| {'figure':<{w}} | {'mosquitto':>12} | {'midge':>12} | {'midge/mosq':>10} |")
print(f"|{'-'*(w+2)}|{'-'*14}|{'-'*14}|{'-'*12}|")
for label, m, g, ratio in rows:
    if label.startswith("## "):
        print(f"| **{label[3:]}** `{m}` | | | |")
    else:
        print(f"| {label:<{w}} | {m:>12} | {g:>12} | {ratio:>10} |")
PY
