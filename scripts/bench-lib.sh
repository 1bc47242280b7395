# Shared by scripts/bench-vs-mosquitto.sh, bench-persistence.sh and bench-restart.sh: sourced,
# not run. A broker is started by the caller (in the background, its pid in BROKER_PID).

CLK_TCK="$(getconf CLK_TCK)"
BROKER_PID=""

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_for_port() { # name port log [tries of 0.1 s, default 100]: 0 once the port accepts connections
    local i
    for i in $(seq 1 "${4:-100}"); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
        kill -0 "$BROKER_PID" 2>/dev/null || { echo "$1 exited at start; see $3" >&2; return 1; }
        sleep 0.1
    done
    echo "$1 did not open port $2" >&2
    return 1
}

stop_broker() { # SIGTERM, then SIGKILL after [seconds, default 5]
    [ -n "$BROKER_PID" ] || return 0
    kill -TERM "$BROKER_PID" 2>/dev/null || true
    local i
    for i in $(seq 1 $((${1:-5} * 10))); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
    BROKER_PID=""
}

broker_usage() { # pid -> "cpu_seconds vmhwm_kib vmrss_kib"
    local stat cpu hwm rss
    stat="$(cat "/proc/$1/stat")"
    stat="${stat##*) }"   # fields after the command name; utime and stime are fields 14 and 15 overall
    cpu="$(echo "$stat" | awk -v tck="$CLK_TCK" '{ printf "%.2f", ($12 + $13) / tck }')"
    hwm="$(awk '/^VmHWM/ { print $2 }' "/proc/$1/status")"
    rss="$(awk '/^VmRSS/ { print $2 }' "/proc/$1/status")"
    echo "$cpu $hwm $rss"
}

# The options every bench script takes; defaults before the caller's own.
ROOT="${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
SCRATCH="$ROOT/.build-release"
MIDGE=""
BUILD=1
OUT=""
MOSQUITTO="${MOSQUITTO:-/usr/sbin/mosquitto}"
DURATION=5
ONLY=""
THREADS="${BENCH_THREADS:-$(nproc)}"

common_option() { # "$@" of the caller: 0 and SHIFT set when $1 is --no-build, --midge,
                  # --scratch-path, --out, --duration or --only
    case "$1" in
        --no-build) BUILD=0; SHIFT=1 ;;
        --midge) MIDGE="$2"; BUILD=0; SHIFT=2 ;;
        --scratch-path) SCRATCH="$2"; SHIFT=2 ;;
        --out) OUT="$2"; SHIFT=2 ;;
        --duration) DURATION="$2"; SHIFT=2 ;;
        --only) ONLY="$2"; SHIFT=2 ;;
        *) return 1 ;;
    esac
}

prepare() { # out_dir_prefix: builds Midge in release unless --no-build/--midge, checks both brokers, makes OUT
    if [ "$BUILD" = 1 ]; then
        (cd "$ROOT" && swift build -c release --scratch-path "$SCRATCH" --product midge)
    fi
    MIDGE="${MIDGE:-$SCRATCH/release/midge}"
    [ -x "$MIDGE" ] || { echo "no midge binary at $MIDGE" >&2; exit 1; }
    [ -x "$MOSQUITTO" ] || { echo "no mosquitto at $MOSQUITTO" >&2; exit 1; }
    OUT="${OUT:-$(mktemp -d "/tmp/$1.XXXXXX")}"
    mkdir -p "$OUT"
    chmod 755 "$OUT"   # Mosquitto started as root reads its config as user mosquitto
    echo "midge:     $MIDGE"
    echo "mosquitto: $MOSQUITTO ($("$MOSQUITTO" -h 2>/dev/null | head -1))"
    echo "results:   $OUT"
}

run_bench() { # kind name args port log: one `midge bench` run (-d DURATION, THREADS) against the
              # running broker; its JSON in OUT/NAME.KIND.json, the broker's CPU and RSS before
              # and after in OUT/NAME.KIND.usage.json
    local before after
    before="$(broker_usage "$BROKER_PID")"
    # shellcheck disable=SC2086
    if ! timeout 180 "$MIDGE" bench $3 -d "$DURATION" --inflight 1000 --threads "$THREADS" -p "$4" --json \
            >"$OUT/$2.$1.json" 2>>"$5"; then
        echo "  ($1: bench exited non-zero; see $5)" >&2
    fi
    after="$(broker_usage "$BROKER_PID")"
    echo "{\"kind\":\"$1\",\"name\":\"$2\",\"args\":\"$3 -d $DURATION --inflight 1000 --threads $THREADS\",\"before\":\"$before\",\"after\":\"$after\"}" >"$OUT/$2.$1.usage.json"
    kill -0 "$BROKER_PID" 2>/dev/null || echo "  ($1 DIED during $2; see $5)" >&2
}

launch_broker() { # kind conf log: Mosquitto when kind is mosquitto, else Midge (with MIDGE_ARGS); sets BROKER_PID
    if [ "$1" = mosquitto ]; then
        "$MOSQUITTO" -c "$2" >>"$3" 2>&1 &
    else
        # shellcheck disable=SC2086
        "$MIDGE" -c "$2" ${MIDGE_ARGS:-} >>"$3" 2>&1 &
    fi
    BROKER_PID=$!
}
