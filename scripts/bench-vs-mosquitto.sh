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
# shellcheck source=scripts/bench-lib.sh
. "$ROOT/scripts/bench-lib.sh"

while [ $# -gt 0 ]; do
    if common_option "$@"; then shift "$SHIFT"; continue; fi
    case "$1" in
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
prepare midge-vs-mosquitto

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

start_broker() { # kind port log
    local conf="$OUT/$1.conf"
    write_config "$conf" "$2"
    launch_broker "$1" "$conf" "$3"
    wait_for_port "$1" "$2" "$3"
}
trap stop_broker EXIT

run_one() { # kind name args
    local port log
    port="$(free_port)"
    log="$OUT/$2.$1.log"
    : > "$log"
    start_broker "$1" "$port" "$log"
    run_bench "$1" "$2" "$3" "$port" "$log"
    stop_broker
}

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
