#!/usr/bin/env bash
# Crash test of a broker's persistence (docs/persistence.md, "Crash test"): every message whose
# PUBACK (QoS 1) or PUBREC (QoS 2) a publisher received must survive kill -9 of the broker.
#
# Usage:
#   scripts/crash-test.sh ROUNDS [BROKER_BINARY] [crash_test.py options...]
#     ROUNDS          number of load-and-kill rounds (then a final restart and drain)
#     BROKER_BINARY   any broker started as BROKER -c FILE with a Mosquitto configuration;
#                     default: $CRASH_BROKER, else .build/release/midge if present, else
#                     .build/debug/midge
#     options         passed to scripts/crash_test.py, e.g. --graceful (SIGTERM instead of
#                     kill -9), --seed N, --rate N, --keep, --out DIR; see crash_test.py --help
#
# Prints a line per round and a closing one-line summary "crash-test: PASS|FAIL ...", which names
# the folder where the logs of failing rounds are kept. Exit status: 0 no violation, 1 violations,
# 2 the broker could not be started (log tail printed) or died, 3 the run went over its time limit.
# Needs python3 with paho-mqtt 2.x (installed with pip when missing).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
PYTHON=${PYTHON:-python3}

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }

if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then usage; exit 2; fi
ROUNDS=$1; shift
case "$ROUNDS" in ''|*[!0-9]*) echo "crash-test: ROUNDS must be a number, not '$ROUNDS'" >&2; exit 2 ;; esac

BROKER=""
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then BROKER=$1; shift; fi
if [ -z "$BROKER" ]; then BROKER=${CRASH_BROKER:-}; fi
if [ -z "$BROKER" ]; then
    if [ -x "$root/.build/release/midge" ]; then BROKER=$root/.build/release/midge
    else BROKER=$root/.build/debug/midge; fi
fi
if [ ! -x "$BROKER" ] && ! command -v "$BROKER" >/dev/null 2>&1; then
    echo "crash-test: ERROR broker binary '$BROKER' not found (build Midge, or pass a binary / set CRASH_BROKER)"
    exit 2
fi

if ! "$PYTHON" -c 'import paho.mqtt, sys; sys.exit(0 if int(paho.mqtt.__version__.split(".")[0]) >= 2 else 1)' 2>/dev/null; then
    echo "crash-test: installing paho-mqtt 2.x" >&2
    "$PYTHON" -m pip install --quiet 'paho-mqtt>=2,<3' >&2
fi

exec "$PYTHON" "$here/crash_test.py" --broker "$BROKER" --rounds "$ROUNDS" "$@"
