#!/usr/bin/env bash
# ThreadSanitizer run of the engine and server tests: builds the tests with
# `--sanitize=thread` into .build-tsan (a build folder of its own, so the normal debug build
# stays warm) and runs them; any data race reported fails the run.
#
#   scripts/tsan.sh                 # the full set (engine, reactor, server, connection,
#                                   # messaging and conformance tests: every test that runs the
#                                   # broker in this process)
#   scripts/tsan.sh --ci            # the short set CI runs (engine, reactor, server tests)
#   scripts/tsan.sh --filter REGEX  # any other selection (swift test --filter)
#
# Ends with `tsan: N tests, N failures, N races` and exits non-zero on a failure or a race.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

full='MidgeEngineTests|MidgeReactorTests|MidgeServerTests|MidgeConnectionTests|MidgeMessagingTests|MidgeConformanceTests|MidgeClientTests'
short='MidgeEngineTests|MidgeReactorTests|MidgeServerTests'
filter=$full
case "${1:-}" in
    --ci) filter=$short ;;
    --filter) filter=${2:?--filter needs a regex} ;;
    "") ;;
    *) echo "usage: scripts/tsan.sh [--ci | --filter REGEX]" >&2; exit 2 ;;
esac

scratch=.build-tsan
echo "==> swift build --build-tests --sanitize=thread (into $scratch)"
swift build --build-tests --sanitize=thread --scratch-path "$scratch"

log=$(mktemp)
echo "==> swift test --sanitize=thread --filter '$filter'"
set +e
# halt_on_error=0: report every race of the run, not only the first; the exit code still says
# whether there was one.
TSAN_OPTIONS="halt_on_error=0 second_deadlock_stack=1 ${TSAN_OPTIONS:-}" \
    swift test --skip-build --sanitize=thread --scratch-path "$scratch" --filter "$filter" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
races=$(grep -c 'WARNING: ThreadSanitizer' "$log" || true)
tests=$(grep -Eo 'Executed [0-9]+ tests?' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
failures=$(grep -Eo 'with [0-9]+ failures?' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
if [ "$races" -gt 0 ]; then
    echo "==> data races reported:"
    grep -A12 'WARNING: ThreadSanitizer' "$log" | head -120
fi
rm -f "$log"
echo "tsan: $tests tests, $failures failures, $races races"
if [ "$rc" -ne 0 ] || [ "$races" -gt 0 ]; then exit 1; fi
