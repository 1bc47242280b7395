#!/usr/bin/env bash
# Runs the Eclipse Paho MQTT interoperability suite (paho.mqtt.testing,
# interoperability/client_test.py for MQTT 3.1.1 and client_test5.py for MQTT 5)
# against a broker and prints each test's result.
#
# The suite is not part of this repository: point PAHO_TESTING_DIR at a checkout
# (default /work/paho-testing; its interoperability/ folder, or that folder itself).
#
# Usage:
#   scripts/paho-interop.sh [options] [PORT]
#     PORT                  broker port (default 1883; with --start-broker: a free port)
#     --host HOST           broker host (default 127.0.0.1)
#     --start-broker BIN    start BIN -p PORT [--broker-arg ...] first, stop it at the end
#     --broker-arg ARG      extra argument for the started broker (repeatable), e.g.
#                           --broker-arg -c --broker-arg /path/to.conf
#     --suite 311|5|all     which file(s) to run (default all)
#     --test NAME           run only this test (repeatable), e.g. --test test_basic
#     --timeout SECONDS     per-test timeout (default 120); a hung test is reported TIMEOUT
#     --log-dir DIR         keep each test's full output there (default: a temp dir)
#     --tls-cafile FILE     connect over TLS, trusting the CA certificates in FILE (the
#                           broker's certificate must be valid for HOST); the suite's clients
#                           use plain sockets, so the runner wraps each one in TLS
#
# Each test runs in its own python3 process (the suite's setUpClass cleans up client
# state and retained messages before it), so one hanging test cannot stop the others.
# Output: one line per test "PASS|FAIL|ERROR|SKIP|TIMEOUT  <suite>  <test>  (<secs>s)",
# then a summary "N passed, N failed". Exit code 0 only when every test passed.
# Environment: PAHO_TESTING_DIR, PYTHON (default python3; the suite needs Python 3
# and nothing outside the standard library).
set -euo pipefail

HOST=127.0.0.1
PORT=""
BROKER_BIN=""
BROKER_ARGS=()
SUITE=all
TESTS=()
TIMEOUT=120
LOG_DIR=""
PYTHON=${PYTHON:-python3}

TLS_CAFILE=""

usage() { sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --host) HOST=$2; shift 2 ;;
        --host=*) HOST=${1#*=}; shift ;;
        --port) PORT=$2; shift 2 ;;
        --port=*) PORT=${1#*=}; shift ;;
        --start-broker) BROKER_BIN=$2; shift 2 ;;
        --start-broker=*) BROKER_BIN=${1#*=}; shift ;;
        --broker-arg) BROKER_ARGS+=("$2"); shift 2 ;;
        --broker-arg=*) BROKER_ARGS+=("${1#*=}"); shift ;;
        --suite) SUITE=$2; shift 2 ;;
        --suite=*) SUITE=${1#*=}; shift ;;
        --test) TESTS+=("$2"); shift 2 ;;
        --test=*) TESTS+=("${1#*=}"); shift ;;
        --timeout) TIMEOUT=$2; shift 2 ;;
        --timeout=*) TIMEOUT=${1#*=}; shift ;;
        --log-dir) LOG_DIR=$2; shift 2 ;;
        --log-dir=*) LOG_DIR=${1#*=}; shift ;;
        --tls-cafile) TLS_CAFILE=$2; shift 2 ;;
        --tls-cafile=*) TLS_CAFILE=${1#*=}; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
        *) PORT=$1; shift ;;
    esac
done

PAHO_TESTING_DIR=${PAHO_TESTING_DIR:-/work/paho-testing}
if [ -f "$PAHO_TESTING_DIR/interoperability/client_test.py" ]; then
    SUITE_DIR=$PAHO_TESTING_DIR/interoperability
elif [ -f "$PAHO_TESTING_DIR/client_test.py" ]; then
    SUITE_DIR=$PAHO_TESTING_DIR
else
    echo "error: Paho interoperability suite not found in PAHO_TESTING_DIR=$PAHO_TESTING_DIR" >&2
    echo "       (expected interoperability/client_test.py and client_test5.py)" >&2
    exit 2
fi
SUITE_DIR=$(cd "$SUITE_DIR" && pwd)

case "$SUITE" in
    311) FILES=(client_test.py) ;;
    5) FILES=(client_test5.py) ;;
    all) FILES=(client_test.py client_test5.py) ;;
    *) echo "error: --suite must be 311, 5 or all" >&2; exit 2 ;;
esac

command -v "$PYTHON" >/dev/null 2>&1 || { echo "error: $PYTHON not found" >&2; exit 2; }
command -v timeout >/dev/null 2>&1 || { echo "error: timeout (coreutils) not found" >&2; exit 2; }

if [ -z "$LOG_DIR" ]; then
    LOG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/paho-interop.XXXXXX")
fi
mkdir -p "$LOG_DIR"

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

port_open() {
    "$PYTHON" -c 'import socket, sys
s = socket.socket(); s.settimeout(1)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
except OSError:
    sys.exit(1)
finally:
    s.close()' "$1" "$2" 2>/dev/null
}

BROKER_PID=""
stop_broker() {
    if [ -n "$BROKER_PID" ] && kill -0 "$BROKER_PID" 2>/dev/null; then
        kill -TERM "$BROKER_PID" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$BROKER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
    fi
    BROKER_PID=""
}
trap stop_broker EXIT
trap 'exit 130' INT TERM

if [ -n "$BROKER_BIN" ]; then
    if ! command -v "$BROKER_BIN" >/dev/null 2>&1; then
        echo "error: broker binary $BROKER_BIN not found" >&2
        exit 2
    fi
    [ -n "$PORT" ] || PORT=$(free_port)
    echo "==> starting broker: $BROKER_BIN -p $PORT ${BROKER_ARGS[*]:-} (log: $LOG_DIR/broker.log)"
    "$BROKER_BIN" -p "$PORT" ${BROKER_ARGS[@]+"${BROKER_ARGS[@]}"} >"$LOG_DIR/broker.log" 2>&1 </dev/null &
    BROKER_PID=$!
    for _ in $(seq 100); do
        if ! kill -0 "$BROKER_PID" 2>/dev/null; then
            echo "error: broker exited during startup:" >&2
            cat "$LOG_DIR/broker.log" >&2
            exit 2
        fi
        port_open "$HOST" "$PORT" && break
        sleep 0.1
    done
    port_open "$HOST" "$PORT" || { echo "error: broker not listening on $HOST:$PORT after 10 s" >&2; exit 2; }
else
    [ -n "$PORT" ] || PORT=1883
    port_open "$HOST" "$PORT" || { echo "error: nothing is listening on $HOST:$PORT" >&2; exit 2; }
fi

# Runs one test of one suite file. The suite's own __main__ block parses
# --hostname/--port with getopt but then hands sys.argv to unittest.main(), which
# rejects those options; so unittest.main is wrapped to get only the test name.
# os._exit: the suite's clients leave non-daemon threads behind.
# With PAHO_TLS_CAFILE set, socket.socket is replaced (before the suite imports its
# clients) by a factory whose sockets are one end of a socket pair: connect() opens the
# TLS connection to the broker and a thread carries the bytes both ways. (The suite reads
# and writes each socket from two threads at once, which one SSL object does not allow.)
RUNNER=$(cat <<'PY'
import os, runpy, sys, unittest
path, host, port, test = sys.argv[1:5]
if os.environ.get("PAHO_TLS_CAFILE"):
    import select, socket, ssl, threading
    _context = ssl.create_default_context(cafile=os.environ["PAHO_TLS_CAFILE"])
    _plain_socket = socket.socket

    def _pump(local, tls):
        # Like the broker's half-close: when the broker's side ends, the suite's end stops
        # receiving but may still send (that is dropped), so it reads the DISCONNECT first.
        tls.setblocking(False)
        broker_open = True
        def broker_closed():
            try:
                local.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            return False
        try:
            while True:
                watched = [local, tls] if broker_open else [local]
                readable = select.select(watched, [], [], 0 if broker_open and tls.pending() else None)[0]
                if broker_open and (tls in readable or tls.pending()):
                    try:
                        data = tls.recv(65536)
                        if data:
                            local.sendall(data)
                        else:
                            broker_open = broker_closed()
                    except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                        pass
                    except OSError:
                        broker_open = broker_closed()
                if local in readable:
                    data = local.recv(65536)
                    if not data:
                        break
                    view = memoryview(data)
                    while broker_open and view:
                        try:
                            view = view[tls.send(view):]
                        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                            select.select([tls], [tls], [], 1)
                        except OSError:
                            broker_open = broker_closed()
        except OSError:
            pass
        finally:
            for end in (local, tls):
                try:
                    end.close()
                except OSError:
                    pass

    class _TLSBridgedSocket(_plain_socket):
        def connect(self, address):
            tls = _context.wrap_socket(_plain_socket(socket.AF_INET, socket.SOCK_STREAM), server_hostname=host)
            tls.settimeout(10)
            tls.connect(address)
            threading.Thread(target=_pump, args=(self._peer, tls), daemon=True).start()

    def _tls_socket(family=-1, type=-1, proto=-1, fileno=None):
        if fileno is not None:
            return _plain_socket(family, type, proto, fileno)
        mine, peer = socket.socketpair()
        bridged = _TLSBridgedSocket(mine.family, mine.type, mine.proto, mine.detach())
        bridged._peer = peer
        return bridged
    socket.socket = _tls_socket
suite_dir = os.path.dirname(os.path.abspath(path))
sys.path.insert(0, suite_dir)
os.chdir(suite_dir)
_main = unittest.main
def main(*args, **kwargs):
    kwargs["argv"] = [path, "Test." + test]
    kwargs["exit"] = False
    kwargs["verbosity"] = 2
    result = _main(*args, **kwargs).result
    if result.testsRun != 1:
        status = "ERROR"
    elif result.skipped:
        status = "SKIP"
    elif result.errors or result.unexpectedSuccesses:
        status = "ERROR"
    elif result.failures:
        status = "FAIL"
    else:
        status = "PASS"
    sys.stdout.flush()
    sys.stderr.flush()
    print("PAHO-INTEROP-RESULT %s %s" % (test, status), flush=True)
    os._exit(0 if status == "PASS" else 1)
unittest.main = main
sys.argv = [path, "--hostname", host, "--port", port]
runpy.run_path(path, run_name="__main__")
print("PAHO-INTEROP-RESULT %s ERROR (suite did not run the test)" % test, flush=True)
os._exit(1)
PY
)

list_tests() {
    # test methods of class Test, in file order
    grep -E '^    def test[A-Za-z0-9_]*\(self' "$1" | sed -E 's/^    def (test[A-Za-z0-9_]*)\(.*/\1/'
}

passed=0
failed=0
echo "==> Paho interoperability suite: $SUITE_DIR"
echo "==> broker: $HOST:$PORT${TLS_CAFILE:+ (TLS, CA $TLS_CAFILE)}   per-test timeout: ${TIMEOUT}s   logs: $LOG_DIR"
for file in "${FILES[@]}"; do
    case "$file" in client_test.py) label=mqtt311 ;; *) label=mqtt5 ;; esac
    mapfile -t all_tests < <(list_tests "$SUITE_DIR/$file")
    for test in "${all_tests[@]}"; do
        if [ "${#TESTS[@]}" -gt 0 ]; then
            wanted=false
            for t in "${TESTS[@]}"; do [ "$t" = "$test" ] && wanted=true; done
            [ "$wanted" = true ] || continue
        fi
        log="$LOG_DIR/$label.$test.log"
        start=$(date +%s.%N)
        rc=0
        PAHO_TLS_CAFILE=$TLS_CAFILE timeout --kill-after=5 "$TIMEOUT" "$PYTHON" -u -c "$RUNNER" "$SUITE_DIR/$file" "$HOST" "$PORT" "$test" \
            >"$log" 2>&1 </dev/null || rc=$?
        secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
        status=$(sed -n "s/^PAHO-INTEROP-RESULT $test \([A-Z]*\).*/\1/p" "$log" | tail -n 1)
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            status=TIMEOUT
        elif [ -z "$status" ]; then
            status=ERROR
        fi
        if [ "$status" = PASS ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
        line=$(printf '%-7s %-7s %-32s (%ss)' "$status" "$label" "$test" "$secs")
        echo "$line"
        if [ -n "$BROKER_PID" ] && ! kill -0 "$BROKER_PID" 2>/dev/null; then
            echo "error: the broker died during $label $test; log: $LOG_DIR/broker.log" >&2
            tail -n 20 "$LOG_DIR/broker.log" >&2 || true
            exit 1
        fi
    done
done

echo "==> full output of each test: $LOG_DIR/<suite>.<test>.log"
echo "paho-interop: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
