#!/usr/bin/env bash
# Runs every test of the package: installs what the tests need when it is missing
# (Debian packages mosquitto + mosquitto-clients, tcpdump and openssl, chromium for the
# headless-browser WebSocket test, libargon2-dev (built into midge) and argon2 (the reference
# hasher, a test peer), the pip packages paho-mqtt and argon2-cffi for the `python3` on PATH), then `swift build` (debug: the `midge` binary the interop tests
# start) and `swift test "$@"` (e.g. scripts/test.sh --filter Interop); without arguments it
# also runs scripts/conformance-coverage.py (matrix and test citations must agree), the kill -9
# crash test (MIDGE_CRASH_ROUNDS, default 20, of scripts/crash-test.sh), fuzzes each libFuzzer
# target for 60 s and runs the engine/reactor/server tests under ThreadSanitizer.
# Exit code: swift test's (or the failing setup/build step's), non-zero too when the coverage
# check, a fuzz target or the sanitizer run fails. The last lines repeat XCTest's count.
# Used as is by CI (.ci/run): CI=true, no stdin, root.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '==> %s\n' "$*"; }

# --- privileges --------------------------------------------------------------------
# as_root CMD...: run as root (directly when root, else through sudo when it exists).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "error: need root (or sudo) to run: $*" >&2
        return 1
    fi
}

# --- Debian packages -----------------------------------------------------------------
deb_installed() {
    # true when the Debian package is installed (falls back to "its command exists")
    local pkg=$1 cmd=$2
    if command -v dpkg-query >/dev/null 2>&1; then
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'
    else
        command -v "$cmd" >/dev/null 2>&1
    fi
}

missing=()
deb_installed mosquitto mosquitto || missing+=(mosquitto)
deb_installed mosquitto-clients mosquitto_sub || missing+=(mosquitto-clients)
command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-pip)
command -v stdbuf >/dev/null 2>&1 || missing+=(coreutils)
deb_installed tcpdump tcpdump || missing+=(tcpdump)        # TLS tests: capture on lo
deb_installed chromium chromium || missing+=(chromium)     # WebSocketBrowserTests: headless Chromium
command -v openssl >/dev/null 2>&1 || missing+=(openssl)  # TLS tests: certificates made at test time
deb_installed libsqlite3-dev sqlite3 || missing+=(libsqlite3-dev)  # the persistence store (GRDB links the system SQLite)
deb_installed libargon2-dev argon2 || missing+=(libargon2-dev)     # $argon2id$ password hashes (CArgon2 links libargon2)
deb_installed argon2 argon2 || missing+=(argon2)                   # PasswordFileInteropTests: the reference argon2 command

if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
        echo "error: missing Debian packages (${missing[*]}) and not root, no sudo: install them first" >&2
        exit 1
    fi
    say "installing Debian packages: ${missing[*]}"
    # Mosquitto processes running before the install: only ones started by the
    # install itself (its service) are stopped below.
    before_pids=" $(pgrep -x mosquitto 2>/dev/null | tr '\n' ' ' || true) "
    # Keep the package's init script from starting a broker on port 1883 at all
    # (the standard policy-rc.d mechanism), unless the machine already has a policy.
    policy_created=false
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        if printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null 2>&1 &&
           as_root chmod 755 /usr/sbin/policy-rc.d; then
            policy_created=true
        fi
    fi
    install_rc=0
    (
        export DEBIAN_FRONTEND=noninteractive
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    ) </dev/null || install_rc=$?
    if [ "$policy_created" = true ]; then
        as_root rm -f /usr/sbin/policy-rc.d
    fi
    if [ "$install_rc" -ne 0 ]; then
        echo "error: apt-get install ${missing[*]} failed ($install_rc)" >&2
        exit "$install_rc"
    fi
    # Stop the mosquitto service if the install started one anyway.
    if [[ " ${missing[*]} " == *" mosquitto "* ]]; then
        if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
            as_root systemctl stop mosquitto >/dev/null 2>&1 || true
            as_root systemctl disable mosquitto >/dev/null 2>&1 || true
        elif [ -x /etc/init.d/mosquitto ]; then
            as_root /etc/init.d/mosquitto stop >/dev/null 2>&1 || true
        fi
        for pid in $(pgrep -x mosquitto 2>/dev/null || true); do
            if [[ "$before_pids" != *" $pid "* ]]; then
                say "stopping mosquitto service process $pid started by the install"
                as_root kill "$pid" 2>/dev/null || true
            fi
        done
    fi
else
    say "Debian packages present: mosquitto, mosquitto-clients, tcpdump, openssl, chromium, libsqlite3-dev, libargon2-dev, argon2"
fi

# --- Python peers: paho-mqtt 2.x, argon2-cffi ---------------------------------------------
paho_ok() {
    python3 -c 'import sys, paho.mqtt; sys.exit(0 if int(paho.mqtt.__version__.split(".")[0]) >= 2 else 1)' >/dev/null 2>&1
}
argon2_cffi_ok() {
    python3 -c 'from argon2 import PasswordHasher' >/dev/null 2>&1
}
# pip_install REQUIREMENT CHECK: installs REQUIREMENT for the python3 on PATH unless CHECK passes.
pip_install() {
    local requirement=$1 check=$2
    if "$check"; then
        say "$requirement present for $(command -v python3)"
        return 0
    fi
    say "installing $requirement for $(command -v python3)"
    export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_NO_INPUT=1
    if ! python3 -m pip --version >/dev/null 2>&1; then
        python3 -m ensurepip --upgrade </dev/null || true
    fi
    local pip_log
    pip_log=$(mktemp)
    if ! python3 -m pip install --quiet --upgrade "$requirement" </dev/null >"$pip_log" 2>&1; then
        if grep -q externally-managed "$pip_log"; then
            # Debian's own python3 (PEP 668): install for this interpreter all the same
            python3 -m pip install --quiet --upgrade --break-system-packages "$requirement" </dev/null
        else
            cat "$pip_log" >&2
            rm -f "$pip_log"
            echo "error: pip install $requirement failed" >&2
            exit 1
        fi
    fi
    rm -f "$pip_log"
    if ! "$check"; then
        echo "error: $requirement still not importable by $(command -v python3)" >&2
        exit 1
    fi
}
pip_install 'paho-mqtt>=2' paho_ok
pip_install 'argon2-cffi' argon2_cffi_ok   # PasswordFileInteropTests: verifies midge passwd's $argon2id$ lines

# --- build and test ------------------------------------------------------------------------
say "swift build (debug)"
swift build

say "swift test $*"
test_log=$(mktemp)
set +e
swift test "$@" 2>&1 | tee "$test_log"
rc=${PIPESTATUS[0]}
set -e
say "swift test exited with $rc"
# XCTest's own total, repeated as the run's last line (the fuzzing and sanitizer steps print
# more after it).
summary=$(grep -Eo 'Executed [0-9]+ tests?, with ([0-9]+ tests? skipped and )?[0-9]+ failures?' "$test_log" | tail -n 1 || true)
rm -f "$test_log"

# A full run also checks that docs/conformance.md's matrix and the tests' normative-id
# citations agree, and prints the coverage count; runs Mosquitto's own broker test suite
# (every test but those scripts/mosquitto-suite-expected-failures.txt lists must pass); then fuzzes each libFuzzer target for
# MIDGE_FUZZ_SECONDS (default 60) and runs the engine, reactor and server tests under
# ThreadSanitizer (the long versions: scripts/fuzz.sh TARGET SECONDS, scripts/tsan.sh).
if [ "$#" -eq 0 ]; then
    say "conformance coverage (scripts/conformance-coverage.py)"
    if ! python3 scripts/conformance-coverage.py && [ "$rc" -eq 0 ]; then
        rc=1
    fi
    say "Mosquitto's own test suite, v2.0.11 test/broker (scripts/mosquitto-suite.sh)"
    suite_log=${TMPDIR:-/tmp}/midge-mosquitto-suite.log
    suite_rc=0
    bash scripts/mosquitto-suite.sh --broker .build/debug/midge \
        --expected-failures scripts/mosquitto-suite-expected-failures.txt --retry-failed > "$suite_log" 2>&1 || suite_rc=$?
    case $suite_rc in
        0) ;;
        3) echo "mosquitto-suite: SKIPPED: $(tail -n 1 "$suite_log")" ;;
        *) grep -E '^(FAIL|XPASS) ' "$suite_log" | head -n 60; tail -n 5 "$suite_log"; rc=1 ;;
    esac
    grep -E '^(FLAKY|XPASS) ' "$suite_log" || true
    tail -n 2 "$suite_log"
    say "crash test: ${MIDGE_CRASH_ROUNDS:-20} rounds of kill -9 under load (scripts/crash-test.sh)"
    if ! bash scripts/crash-test.sh "${MIDGE_CRASH_ROUNDS:-20}" .build/debug/midge > "${TMPDIR:-/tmp}/midge-crash.log" 2>&1; then
        tail -n 40 "${TMPDIR:-/tmp}/midge-crash.log"
        rc=1
    fi
    tail -n 1 "${TMPDIR:-/tmp}/midge-crash.log"
    for target in $(bash scripts/fuzz.sh list); do
        say "fuzzing $target for ${MIDGE_FUZZ_SECONDS:-60} s (scripts/fuzz.sh)"
        if ! bash scripts/fuzz.sh "$target" "${MIDGE_FUZZ_SECONDS:-60}" > "${TMPDIR:-/tmp}/midge-fuzz-$target.log" 2>&1; then
            tail -n 60 "${TMPDIR:-/tmp}/midge-fuzz-$target.log"
            rc=1
        fi
        tail -n 1 "${TMPDIR:-/tmp}/midge-fuzz-$target.log"
    done
    say "ThreadSanitizer: engine, reactor and server tests (scripts/tsan.sh --ci)"
    if ! bash scripts/tsan.sh --ci > "${TMPDIR:-/tmp}/midge-tsan.log" 2>&1; then
        grep -E 'error:|WARNING: ThreadSanitizer|failed \(' "${TMPDIR:-/tmp}/midge-tsan.log" | head -n 40
        grep -A14 'WARNING: ThreadSanitizer' "${TMPDIR:-/tmp}/midge-tsan.log" | head -n 80
        rc=1
    fi
    tail -n 1 "${TMPDIR:-/tmp}/midge-tsan.log"
fi
summary_pattern='Executed ([0-9]+) tests?, with (([0-9]+) tests? skipped and )?([0-9]+) failures?'
if [[ $summary =~ $summary_pattern ]]; then
    executed=${BASH_REMATCH[1]} skipped=${BASH_REMATCH[3]:-0} failed=${BASH_REMATCH[4]}
    echo "swift-test: $(( executed - skipped - failed )) passed, $failed failed, $skipped skipped"
fi
say "done: exit $rc"
exit "$rc"
