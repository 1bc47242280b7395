#!/usr/bin/env bash
# Persistent-session loads (`midge bench ... --persistent`) against Debian's Mosquitto with
# `persistence true` and against Midge with `persistence true` (durable: every acknowledgement
# waits for the store's group commit), with `persistence_fsync true` as well, and without
# persistence (the baseline); prints the figures side by side with the ratio Midge durable /
# Mosquitto. Each run gets a fresh broker and an empty persistence folder; CPU seconds and peak
# RSS are measured as in scripts/bench-vs-mosquitto.sh.
#
# usage: scripts/bench-persistence.sh [--no-build] [--midge PATH] [--scratch-path DIR]
#                                     [--duration SECONDS] [--out DIR] [--only NAME[,NAME...]]
#                                     [--brokers KIND[,KIND...]]
#   --no-build, --midge, --scratch-path, --duration, --out, --only: as bench-vs-mosquitto.sh
#   --brokers         which of mosquitto, midge-durable, midge-fsync, midge-memory to run
#                     (default all four; e.g. --brokers mosquitto needs only the bench binary)
# Environment: MOSQUITTO (default /usr/sbin/mosquitto), BENCH_THREADS (default: cores),
#              MIDGE_ARGS (extra broker arguments for Midge).
# The restart-time benchmark is scripts/bench-restart.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/bench-lib.sh
. "$ROOT/scripts/bench-lib.sh"
KINDS="mosquitto,midge-durable,midge-fsync,midge-memory"

while [ $# -gt 0 ]; do
    if common_option "$@"; then shift "$SHIFT"; continue; fi
    case "$1" in
        --brokers) KINDS="$2"; shift ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

prepare midge-bench-persistence
IFS=, read -r -a KIND_LIST <<<"$KINDS"

# name | bench arguments. Unthrottled QoS 1/2 is clocked by the acknowledgements (--inflight
# 1000), so it shows what waiting for the store costs; the fixed rate shows the latency at a
# load every broker sustains.
SCENARIOS=(
    "p2p-q1|p2p -P 100 -q 1 -s 16 --persistent"
    "fanin-share-q1|fanin -P 100 -S 5 -q 1 -s 16 --persistent"
    "p2p-q2|p2p -P 10 -q 2 -s 16 --persistent"
    "p2p-q1-10k|p2p -P 100 -q 1 -s 16 -r 100 --persistent"
)

write_config() { # file port kind data_dir
    {
        echo "listener $2 127.0.0.1"
        echo "allow_anonymous true"
        echo "max_inflight_messages 1000"
        echo "max_queued_messages 100000"
        echo "max_connections -1"
        echo "set_tcp_nodelay true"
        if [ "$3" != midge-memory ]; then
            echo "persistence true"
            echo "persistence_location $4/"
        fi
        [ "$3" != midge-fsync ] || echo "persistence_fsync true"
        echo "log_dest stderr"
        echo "log_type error"
        echo "log_type warning"
    } >"$1"
    chmod 644 "$1"
}

start_broker() { # kind port log data_dir
    local conf="$OUT/$1.conf"
    write_config "$conf" "$2" "$1" "$4"
    launch_broker "$1" "$conf" "$3"
    wait_for_port "$1" "$2" "$3"
}
trap stop_broker EXIT

run_one() { # kind name args
    local port log data
    port="$(free_port)"
    log="$OUT/$2.$1.log"
    data="$OUT/data/$2.$1"
    : >"$log"
    rm -rf "$data"
    mkdir -p "$data"
    chmod 0777 "$data"   # Mosquitto started as root writes it as user mosquitto
    start_broker "$1" "$port" "$log" "$data"
    run_bench "$1" "$2" "$3" "$port" "$log"
    stop_broker 30   # Mosquitto writes its database at exit
}

index=0
for entry in "${SCENARIOS[@]}"; do
    name="${entry%%|*}"
    args="${entry#*|}"
    if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$name,"* ]]; then continue; fi
    echo "== $name: midge bench $args -d $DURATION" >&2
    # Rotate which broker goes first so none always gets the warmer (or busier) machine.
    n=${#KIND_LIST[@]}
    for i in $(seq 0 $((n - 1))); do
        run_one "${KIND_LIST[$(((i + index) % n))]}" "$name" "$args"
    done
    index=$((index + 1))
done

python3 - "$OUT" "$KINDS" <<'PY'
import json, os, sys
out, kinds = sys.argv[1], sys.argv[2].split(",")
names = []
for f in sorted(os.listdir(out), key=lambda f: os.path.getmtime(os.path.join(out, f))):
    if f.endswith(".usage.json"):
        n = f.split(".")[0]
        if n not in names: names.append(n)

def load(name, kind):
    try:
        with open(os.path.join(out, f"{name}.{kind}.json")) as fh: r = json.load(fh)
    except Exception: r = None
    try:
        with open(os.path.join(out, f"{name}.{kind}.usage.json")) as fh: u = json.load(fh)
    except Exception: return None, None
    return r, u

def fmt(v):
    if v is None: return "-"
    if isinstance(v, str): return v
    if isinstance(v, float):
        if v >= 1000: return f"{v:,.0f}"
        if v >= 10: return f"{v:.1f}"
        return f"{v:.3f}"
    return f"{v:,}"

def figures(r, u):
    if u is None: return {}
    b, a = u["before"].split(), u["after"].split()
    cpu = float(a[0]) - float(b[0])
    f = {"broker CPU s": cpu, "broker peak RSS MiB": int(a[1]) / 1024}
    if r is None: return dict(f, result="FAILED")
    f.update({"msgs in /s": r["throughputIn"], "msgs out /s": r["throughputOut"],
              "lost": r["lost"], "duplicates": r["duplicates"],
              "latency p50 ms": r["latency"]["p50"], "latency p99 ms": r["latency"]["p99"],
              "broker CPU µs/msg": cpu * 1e6 / r["received"] if r["received"] else None})
    if r["stalled"]: f["STALLED"] = "yes"
    if r["unexpectedCloses"]: f["closed by broker"] = r["unexpectedCloses"]
    if r["publishErrors"]: f["publish errors"] = r["publishErrors"]
    return f

order = ["result", "msgs in /s", "msgs out /s", "lost", "duplicates", "latency p50 ms", "latency p99 ms",
         "broker CPU s", "broker CPU µs/msg", "broker peak RSS MiB", "STALLED", "closed by broker", "publish errors"]
ratio_of = ("midge-durable", "mosquitto") if {"midge-durable", "mosquitto"} <= set(kinds) else None
header = ["figure"] + kinds + (["durable/mosq"] if ratio_of else [])
rows = []
for name in names:
    args = next((u["args"] for k in kinds for _, u in [load(name, k)] if u), "")
    rows.append([f"**{name}** `{args}`"] + [""] * (len(header) - 1))
    figs = {k: figures(*load(name, k)) for k in kinds}
    for label in order:
        if not any(label in figs[k] for k in kinds): continue
        vals = [figs[k].get(label) for k in kinds]
        row = [label] + [fmt(v) for v in vals]
        if ratio_of:
            g, m = figs[ratio_of[0]].get(label), figs[ratio_of[1]].get(label)
            row.append(f"{g / m:.2f}" if isinstance(g, (int, float)) and isinstance(m, (int, float)) and m and label not in ("lost", "duplicates") else "")
        rows.append(row)

w = max(len(r[0]) for r in rows if not r[0].startswith("**"))
widths = [w] + [max(12, len(h)) for h in header[1:]]
print()
print("| " + " | ".join(h.ljust(widths[0]) if i == 0 else h.rjust(widths[i]) for i, h in enumerate(header)) + " |")
print("|" + "|".join("-" * (x + 2) for x in widths) + "|")
for r in rows:
    if r[0].startswith("**"):
        print("| " + r[0] + " |" + " |" * (len(header) - 1))
    else:
        print("| " + " | ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)) + " |")
PY
