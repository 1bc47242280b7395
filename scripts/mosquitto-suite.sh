#!/usr/bin/env bash
# Runs Eclipse Mosquitto v2.0.11's own broker test suite (test/broker/*.py) against
# a broker: Midge by default, or Debian's Mosquitto 2.0.11 as the reference.
#
# Usage:
#   scripts/mosquitto-suite.sh [options] [TEST.py ...]
#     SUITE_CHECKOUT      a Mosquitto source tree (a directory with test/broker and include/,
#                         e.g. a git checkout of v2.0.11): run its suite instead of v2.0.11
#                         from the git mirror (same as --checkout DIR)
#     TEST.py             run only these tests (e.g. 11-pub-props.py, 11-pub-props, or
#                         a shell pattern such as '11-*'); default: every test script of
#                         test/broker (193: the 190 upstream's test.py lists and has, and
#                         01-connect-uname-password-success-no-tls, 03-publish-qos1-
#                         queued-bytes, 09-extended-auth-single2, which it does not list)
#     --checkout DIR      the suite of that Mosquitto source tree (its test/ and include/ are
#                         copied into the cache afresh on every run)
#     --expected-failures FILE
#                         tests that may fail (one "TEST.py  reason" per line, # comments):
#                         their failure is reported as XFAIL and does not fail the run; one
#                         of them passing is reported as XPASS (take it off the list). The
#                         exit code is then 1 only for an unexpected failure. The list in the
#                         repository: scripts/mosquitto-suite-expected-failures.txt
#     --retry-failed      run each unexpected failure once more at the end; one that passes
#                         then counts as passed and is reported FLAKY (races that show
#                         under load, e.g. a PUBLISH read after another loop's SUBSCRIBE)
#     --listed            only the 190 tests upstream's test.py lists (it also lists
#                         07-will-delay-invalid-573191.py, which v2.0.11 does not have)
#     --broker BINARY     the broker under test (default .build/debug/midge)
#     --mosquitto         run against Debian's /usr/sbin/mosquitto instead (the reference)
#     --timeout SECONDS   per-test timeout (default 300; 06-bridge-clean-session
#                         alone takes over 130s against Mosquitto); a test over it is a FAIL
#     --port-base PORT    first port handed to the tests (default 1888, as upstream)
#     --user NAME         unprivileged user the tests run as when started as root
#                         (default midgetest; created with useradd if missing)
#     --keep-passing-logs keep the output of passing tests too
#     --client-tls13      let the tests' Python TLS clients use TLS 1.3. By default they are
#                         held to TLS 1.2 (OPENSSL_CONF for the test process only; the
#                         wrapper drops it before starting the broker): the 08-ssl tests
#                         were written for TLS 1.2, where a refused client certificate fails
#                         the handshake with an alert (errno 1, "certificate revoked"); with
#                         TLS 1.3 and OpenSSL 3 the client sees only an EOF later, and
#                         08-ssl-connect-cert-auth-revoked and -without fail against
#                         Mosquitto itself
#     --lenient-order     DIAGNOSTIC, not a conformance result: a received packet that
#                         differs from the expected one only in the order of its bytes (same
#                         first byte, length and bytes, e.g. v5 properties in another order)
#                         counts as a match and is noted as "LENIENT-ORDER" in the test's
#                         log, so that a run shows what fails beyond the first such difference
#     -h, --help
#
# What it does (everything lives in .build-mosquitto-suite/ at the repository root, or
# $MOSQUITTO_SUITE_CACHE):
#   1. extracts test/ and include/ of Mosquitto v2.0.11 from the git mirror
#      ($MOSQUITTO_GIT_DIR, default /work/.mirror/eclipse+mosquitto/repo) or, failing
#      that, from GitHub's release tarball (curl), into mosquitto-2.0.11/;
#   2. regenerates test/ssl's certificates with upstream's own gen.sh (the shipped ones
#      expired in 2025) and again whenever server.crt is within a day of expiry;
#   3. builds the C helpers of test/broker/c (plugins and the two TLS-PSK clients) with
#      gcc, linking the clients against the system's libmosquitto.so.1 (Debian package
#      libmosquitto1, installed with apt-get if missing) through lib/libmosquitto.so.1;
#      plugins/dynamic-security/mosquitto_dynamic_security.so points at Debian's
#      (package mosquitto) for the 14-dynsec tests;
#   4. copies that tree to run-LABEL/ (fresh each run, so no .db/.conf is left over
#      from another run), copies BINARY to run-LABEL/bin/ (a rebuild during the run
#      changes nothing) and writes run-LABEL/src/mosquitto, a wrapper that execs that
#      copy: the tests start "../../src/mosquitto -v -c TEST.conf" (or
#      "-p PORT") from test/broker, as upstream's Makefile does;
#   5. runs the tests one at a time, as the unprivileged user, from test/broker, as
#      upstream's ptest runner does ("./TEST.py PORT [PORT...]", ports from
#      --port-base, counts from test.py), with MOSQ_USE_VALGRIND unset, under
#      "timeout"; leftover processes of a test (its process group) are killed after it.
#
# Output: one line per test "PASS|FAIL|SKIP  <seconds>s  TEST.py", a line with the total
# time and the log folder, then "mosquitto-suite: N passed, N failed, N skipped of N". Each
# failed test's output (its prints, the broker's stderr when the test shows it) is
# kept in logs/LABEL-DATE/TEST.log. Exit code 1 if any test failed, 2 on a usage or
# set-up error, 3 when Mosquitto's sources cannot be had (no mirror, no network). A test is SKIPped only when a helper it needs could not be built.
# Environment: MOSQUITTO_SUITE_CACHE, MOSQUITTO_GIT_DIR, PYTHON (an interpreter the
# test user can run; default: python3 on PATH if it can, else /usr/bin/python3).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${MOSQUITTO_SUITE_CACHE:-$ROOT/.build-mosquitto-suite}
GIT_DIR_MOSQ=${MOSQUITTO_GIT_DIR:-/work/.mirror/eclipse+mosquitto/repo}
TAG=v2.0.11
TARBALL_URL=https://github.com/eclipse/mosquitto/archive/refs/tags/$TAG.tar.gz
BROKER=$ROOT/.build/debug/midge
LABEL=""
TIMEOUT=300
PORT_BASE=1888
TEST_USER=midgetest
LISTED_ONLY=0
KEEP_PASSING=0
CLIENT_TLS12=1
LENIENT_ORDER=0
SELECT=()
CHECKOUT=""
EXPECTED_FILE=""
RETRY_FAILED=0

usage() { sed -n '2,/^[^#]/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "mosquitto-suite: error: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --broker) BROKER=$2; shift 2 ;;
        --broker=*) BROKER=${1#*=}; shift ;;
        --mosquitto) BROKER=/usr/sbin/mosquitto; LABEL=${LABEL:-mosquitto}; shift ;;
        --checkout) CHECKOUT=$2; shift 2 ;;
        --checkout=*) CHECKOUT=${1#*=}; shift ;;
        --expected-failures) EXPECTED_FILE=$2; shift 2 ;;
        --expected-failures=*) EXPECTED_FILE=${1#*=}; shift ;;
        --retry-failed) RETRY_FAILED=1; shift ;;
        --listed) LISTED_ONLY=1; shift ;;
        --timeout) TIMEOUT=$2; shift 2 ;;
        --timeout=*) TIMEOUT=${1#*=}; shift ;;
        --port-base) PORT_BASE=$2; shift 2 ;;
        --port-base=*) PORT_BASE=${1#*=}; shift ;;
        --user) TEST_USER=$2; shift 2 ;;
        --user=*) TEST_USER=${1#*=}; shift ;;
        --keep-passing-logs) KEEP_PASSING=1; shift ;;
        --client-tls13) CLIENT_TLS12=0; shift ;;
        --lenient-order) LENIENT_ORDER=1; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
        *) if [ -d "$1/test/broker" ]; then CHECKOUT=$1; else SELECT+=("$1"); fi; shift ;;
    esac
done

[ -x "$BROKER" ] || die "broker binary not found or not executable: $BROKER"
BROKER=$(readlink -f "$BROKER")
if [ -z "$LABEL" ]; then
    LABEL=$(basename "$BROKER")
fi

declare -A EXPECTED=()
if [ -n "$EXPECTED_FILE" ]; then
    [ -f "$EXPECTED_FILE" ] || die "no such file: $EXPECTED_FILE"
    while read -r name reason; do
        case "$name" in ''|'#'*) continue ;; esac
        EXPECTED[$name]=${reason:-listed}
    done < "$EXPECTED_FILE"
fi
SRC=$CACHE/mosquitto-${TAG#v}
if [ -n "$CHECKOUT" ]; then
    [ -d "$CHECKOUT/test/broker" ] && [ -d "$CHECKOUT/include" ] \
        || die "$CHECKOUT is not a Mosquitto source tree (no test/broker or include/)"
    CHECKOUT=$(readlink -f "$CHECKOUT")
    SRC=$CACHE/checkout-$(printf '%s' "$CHECKOUT" | md5sum | cut -c1-12)
fi
mkdir -p "$CACHE" || die "cannot create $CACHE"
SETUP_LOG=$CACHE/setup.log
: > "$SETUP_LOG"

# --- privileges: run the tests as an unprivileged user --------------------------------
AS_USER=()
RUN_AS=$(id -un)
if [ "$(id -u)" -eq 0 ]; then
    RUN_AS=$TEST_USER
    if ! id -u "$TEST_USER" >/dev/null 2>&1; then
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$TEST_USER" >>"$SETUP_LOG" 2>&1 \
            || die "useradd $TEST_USER failed (see $SETUP_LOG)"
    fi
    AS_USER=(runuser -u "$TEST_USER" --)
    # every directory above the cache must be searchable by the test user
    d=$CACHE
    while [ "$d" != / ]; do
        if ! "${AS_USER[@]}" test -x "$d" 2>/dev/null; then
            die "$TEST_USER cannot enter $d (set MOSQUITTO_SUITE_CACHE elsewhere)"
        fi
        d=$(dirname "$d")
    done
    "${AS_USER[@]}" test -x "$BROKER" || die "$TEST_USER cannot execute $BROKER"
fi

# --- 1. the suite's sources ----------------------------------------------------------
if [ -n "$CHECKOUT" ]; then
    # a source tree given by the user: copied afresh each run (it may have changed)
    rm -rf "$SRC"
    mkdir -p "$SRC"
    cp -a "$CHECKOUT/test" "$CHECKOUT/include" "$SRC/" || die "cannot copy $CHECKOUT"
    touch "$SRC/.extracted"
elif [ ! -f "$SRC/.extracted" ]; then
    rm -rf "$SRC"
    mkdir -p "$SRC"
    if git --git-dir="$GIT_DIR_MOSQ" rev-parse -q --verify "$TAG^{commit}" >/dev/null 2>&1; then
        git --git-dir="$GIT_DIR_MOSQ" archive "$TAG" test include | tar -x -C "$SRC" \
            || die "git archive $TAG from $GIT_DIR_MOSQ failed"
    else
        echo "mosquitto-suite: $GIT_DIR_MOSQ has no $TAG; downloading $TARBALL_URL" >&2
        if ! curl -fsSL "$TARBALL_URL" | tar -xz -C "$SRC" --strip-components=1 \
            "mosquitto-${TAG#v}/test" "mosquitto-${TAG#v}/include"; then
            rm -rf "$SRC"
            echo "mosquitto-suite: error: no $TAG sources: no git mirror at $GIT_DIR_MOSQ and $TARBALL_URL could not be downloaded" >&2
            exit 3
        fi
    fi
    touch "$SRC/.extracted"
    rm -f "$SRC/.helpers-built"
fi

# --- 2. certificates -----------------------------------------------------------------
if [ ! -f "$SRC/test/ssl/.regenerated" ] || \
   ! openssl x509 -checkend 86400 -noout -in "$SRC/test/ssl/server.crt" >/dev/null 2>&1; then
    command -v openssl >/dev/null || die "openssl is needed to regenerate test/ssl"
    (cd "$SRC/test/ssl" && sh ./gen.sh) >>"$SETUP_LOG" 2>&1 \
        || die "test/ssl/gen.sh failed (see $SETUP_LOG)"
    touch "$SRC/test/ssl/.regenerated"
fi

# --- 3. C helpers, libmosquitto, the dynamic-security plugin --------------------------
find_lib() { # the first existing path among a library's usual places
    local f
    for f in "/usr/lib/$(gcc -print-multiarch 2>/dev/null)/$1" /usr/lib/x86_64-linux-gnu/"$1" \
             /usr/lib/aarch64-linux-gnu/"$1" /usr/lib/"$1" /usr/local/lib/"$1"; do
        [ -e "$f" ] && { echo "$f"; return 0; }
    done
    return 1
}
apt_install() { # install Debian packages without letting them start services
    command -v apt-get >/dev/null && [ "$(id -u)" -eq 0 ] || return 1
    local policy=/usr/sbin/policy-rc.d created=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && created=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" \
        >>"$SETUP_LOG" 2>&1
    local rc=$?
    [ $created -eq 1 ] && rm -f "$policy"
    return $rc
}
if [ ! -f "$SRC/.helpers-built" ]; then
    libmosq=$(find_lib libmosquitto.so.1) || { apt_install libmosquitto1 && libmosq=$(find_lib libmosquitto.so.1); }
    mkdir -p "$SRC/lib" "$SRC/plugins/dynamic-security"
    if [ -n "${libmosq:-}" ]; then
        ln -sfn "$libmosq" "$SRC/lib/libmosquitto.so.1"
    else
        echo "mosquitto-suite: libmosquitto.so.1 not found; the 08-tls-psk tests will be skipped" >&2
    fi
    if dynsec=$(find_lib mosquitto_dynamic_security.so); then
        ln -sfn "$dynsec" "$SRC/plugins/dynamic-security/mosquitto_dynamic_security.so"
    else
        echo "mosquitto-suite: mosquitto_dynamic_security.so not found (package mosquitto); the 14-dynsec tests will be skipped" >&2
    fi
    if command -v gcc >/dev/null && command -v make >/dev/null; then
        # plugins always; the two clients only with libmosquitto
        if [ -n "${libmosq:-}" ]; then
            make -C "$SRC/test/broker/c" CC=gcc >>"$SETUP_LOG" 2>&1
        else
            make -C "$SRC/test/broker/c" CC=gcc $(cd "$SRC/test/broker/c" && ls *.c | grep -v '^08-' | sed 's/\.c$/.so/') >>"$SETUP_LOG" 2>&1
        fi || echo "mosquitto-suite: some C helpers failed to build (see $SETUP_LOG)" >&2
    else
        echo "mosquitto-suite: gcc/make missing; tests needing test/broker/c helpers will be skipped" >&2
    fi
    touch "$SRC/.helpers-built"
fi

# --- python for the test user --------------------------------------------------------
pick_python() {
    local cands=() c
    [ -n "${PYTHON:-}" ] && cands+=("$PYTHON")
    c=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null) && cands+=("$c")
    cands+=(/usr/bin/python3)
    for c in "${cands[@]}"; do
        if "${AS_USER[@]}" "$c" -c 'import ssl, json, sys; assert sys.version_info >= (3, 6)' >/dev/null 2>&1; then
            echo "$c"; return 0
        fi
    done
    return 1
}
PY=$(pick_python) || die "no python3 the test user can run (set PYTHON)"

# --- 4. the run tree ---------------------------------------------------------------
RUN=$CACHE/run-$LABEL
rm -rf "$RUN"
mkdir -p "$RUN/src" "$RUN/bin"
cp -a "$SRC/test" "$SRC/include" "$SRC/lib" "$SRC/plugins" "$RUN/"
# a copy of the broker: a rebuild of BINARY during the run neither mixes two versions nor makes
# exec fail with "Text file busy"
cp "$BROKER" "$RUN/bin/broker-under-test" || die "cannot copy $BROKER"
BROKER_SUM=$(sha256sum "$RUN/bin/broker-under-test" | cut -c1-12)
printf '#!/bin/sh\n# the broker under test (a copy of %s), started by the suite as ../../src/mosquitto\nunset OPENSSL_CONF\nexec %q "$@"\n' \
    "$BROKER" "$RUN/bin/broker-under-test" > "$RUN/src/mosquitto"
chmod 755 "$RUN/src/mosquitto"
ln -s "$PY" "$RUN/bin/python3"    # for the scripts' "#!/usr/bin/env python3"
if [ $LENIENT_ORDER -eq 1 ]; then
    "$PY" - "$RUN/test/mosq_test.py" <<'PATCH' || die "could not patch mosq_test.py for --lenient-order"
import sys
path = sys.argv[1]
text = open(path).read()
old = "def packet_matches(name, recvd, expected):\n"
new = old + ("    if recvd != expected and len(recvd) == len(expected) and len(recvd) > 0 \\\n"
             "            and recvd[0] == expected[0] and sorted(recvd) == sorted(expected):\n"
             "        print('LENIENT-ORDER: ' + name + ': received ' + repr(recvd) + ', expected ' + repr(expected))\n"
             "        return True\n")
assert text.count(old) == 1
open(path, 'w').write(text.replace(old, new))
PATCH
fi
CLIENT_ENV=()
if [ $CLIENT_TLS12 -eq 1 ]; then
    printf '%s\n' 'openssl_conf = default_conf' '[default_conf]' 'ssl_conf = ssl_sect' \
        '[ssl_sect]' 'system_default = system_default_sect' '[system_default_sect]' \
        'MaxProtocol = TLSv1.2' > "$RUN/openssl-client-tls12.cnf"
    CLIENT_ENV=(OPENSSL_CONF="$RUN/openssl-client-tls12.cnf")
fi
STAMP=$(date +%Y%m%d-%H%M%S)
LOGS=$CACHE/logs/$LABEL-$STAMP
mkdir -p "$LOGS"
if [ ${#AS_USER[@]} -gt 0 ]; then
    chown -R "$TEST_USER:" "$RUN" || die "chown $RUN failed"
fi

# --- the test list -----------------------------------------------------------------
BROKER_DIR=$RUN/test/broker
declare -A NPORTS=()
LISTED=()
while read -r n name; do
    NPORTS[$name]=$n
    LISTED+=("$name")
done < <(sed -n "s/^[[:space:]]*(\([0-9]\+\), *'\.\/\([^']*\.py\)'),.*/\1 \2/p" "$BROKER_DIR/test.py")
[ ${#LISTED[@]} -gt 0 ] || die "could not read the test list from $BROKER_DIR/test.py"

is_helper() { case "$1" in test.py|mosq_test_helper.py|*helper.py) return 0 ;; esac; return 1; }
ports_needed() { # from test.py, else the largest get_port(N) in the script
    if [ -n "${NPORTS[$1]:-}" ]; then echo "${NPORTS[$1]}"; return; fi
    local n
    n=$(grep -o 'get_port([0-9]*)' "$BROKER_DIR/$1" | grep -o '[0-9]\+' | sort -n | tail -1)
    echo "${n:-1}"
}

TESTS=()
if [ ${#SELECT[@]} -gt 0 ]; then
    for s in "${SELECT[@]}"; do
        s=${s#./}; s=${s##*/}
        case "$s" in *.py) ;; *) s=$s.py ;; esac
        found=0
        for f in $(cd "$BROKER_DIR" && ls $s 2>/dev/null); do
            is_helper "$f" && continue
            TESTS+=("$f"); found=1
        done
        [ $found -eq 1 ] || die "no such test: $s"
    done
else
    for f in $(cd "$BROKER_DIR" && ls [0-9][0-9]-*.py); do
        is_helper "$f" && continue
        [ $LISTED_ONLY -eq 1 ] && [ -z "${NPORTS[$f]:-}" ] && continue
        TESTS+=("$f")
    done
fi

# helpers a test needs, to SKIP it (not FAIL it) when they could not be built
missing_helper() {
    local f
    for f in $(grep -o "c/[A-Za-z0-9_.-]*\.\(so\|test\)" "$BROKER_DIR/$1" | sort -u); do
        [ -e "$BROKER_DIR/$f" ] || { echo "$f"; return 0; }
    done
    if grep -q 'mosquitto_dynamic_security.so' "$BROKER_DIR/$1" && \
       [ ! -e "$RUN/plugins/dynamic-security/mosquitto_dynamic_security.so" ]; then
        echo mosquitto_dynamic_security.so; return 0
    fi
    if grep -q 'c/08-tls-psk' "$BROKER_DIR/$1" && [ ! -e "$RUN/lib/libmosquitto.so.1" ]; then
        echo libmosquitto.so.1; return 0
    fi
    return 1
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# runs one test as the test user in its own process group; its exit code
run_test() {
    local t=$1 log=$2 pid rc
    shift 2
    (
        cd "$BROKER_DIR" || exit 2
        exec setsid timeout -k 5 "$TIMEOUT" "${AS_USER[@]}" env -i \
            PATH="$RUN/bin:/usr/local/bin:/usr/bin:/bin" HOME="$BROKER_DIR" LANG=C.UTF-8 \
            PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 "${CLIENT_ENV[@]}" \
            "$PY" "./$t" "$@"
    ) >>"$log" 2>&1 </dev/null &
    pid=$!
    wait $pid
    rc=$?
    # whatever the test left running (its broker, a helper) is in its process group
    kill -KILL -- -"$pid" 2>/dev/null
    return $rc
}

# --- 5. run ---------------------------------------------------------------------------
[ $LENIENT_ORDER -eq 1 ] && echo "mosquitto-suite: --lenient-order: DIAGNOSTIC run, packets equal but for their byte order count as matches"
echo "mosquitto-suite: Mosquitto $TAG's test/broker, ${#TESTS[@]} tests, broker $BROKER" \
     "($(date -r "$BROKER" '+%F %T'), sha256 $BROKER_SUM...)" \
     "(run as $RUN_AS with $PY, timeout ${TIMEOUT}s)"
passed=0; failed=0; skipped=0; xfailed=0; xpassed=0
FAILED=()
suite_start=$(date +%s%N)
elapsed() { # seconds since a "date +%s%N", with two decimals
    local ms=$(( ($(date +%s%N) - $1) / 10000000 ))
    printf '%d.%02d' $((ms / 100)) $((ms % 100))
}
for t in "${TESTS[@]}"; do
    log=$LOGS/${t%.py}.log
    if why=$(missing_helper "$t"); then
        printf 'SKIP  %7.2fs  %s  (%s not built)\n' 0 "$t" "$why"
        skipped=$((skipped + 1))
        continue
    fi
    n=$(ports_needed "$t")
    ports=()
    for ((i = 0; i < n; i++)); do ports+=($((PORT_BASE + i))); done
    # wait a little for a previous test's broker to let go of the ports
    for ((w = 0; w < 50; w++)); do
        busy=0
        for p in "${ports[@]}"; do port_busy "$p" && busy=1; done
        [ $busy -eq 0 ] && break
        sleep 0.2
    done
    [ $busy -eq 1 ] && echo "note: a port of ${ports[*]} is still in use before $t" >>"$log"
    start=$(date +%s%N)
    run_test "$t" "$log" "${ports[@]}"
    rc=$?
    secs=$(elapsed "$start")
    if [ $rc -eq 0 ]; then
        if [ -n "${EXPECTED[$t]:-}" ]; then
            printf 'XPASS %7.2fs  %s  (listed as expected to fail: take it off the list)\n' "$secs" "$t"
            xpassed=$((xpassed + 1))
        else
            printf 'PASS  %7.2fs  %s\n' "$secs" "$t"
        fi
        passed=$((passed + 1))
        [ $KEEP_PASSING -eq 1 ] || rm -f "$log"
    else
        case $rc in
            124|137) note="timed out after ${TIMEOUT}s" ;;
            *) note="exit code $rc" ;;
        esac
        echo "mosquitto-suite: $t: $note" >>"$log"
        if [ -n "${EXPECTED[$t]:-}" ]; then
            printf 'XFAIL %7.2fs  %s  (%s; expected: %s)\n' "$secs" "$t" "$note" "${EXPECTED[$t]}"
            xfailed=$((xfailed + 1))
        else
            printf 'FAIL  %7.2fs  %s  (%s)\n' "$secs" "$t" "$note"
            FAILED+=("$t")
        fi
        failed=$((failed + 1))
    fi
done
# --retry-failed: an unexpected failure runs once more, alone; passing then, it counts as a
# pass marked FLAKY (the log of its first run is kept)
FLAKY=()
if [ $RETRY_FAILED -eq 1 ] && [ ${#FAILED[@]} -gt 0 ]; then
    STILL=()
    for t in "${FAILED[@]}"; do
        n=$(ports_needed "$t")
        ports=()
        for ((i = 0; i < n; i++)); do ports+=($((PORT_BASE + i))); done
        sleep 1
        start=$(date +%s%N)
        echo "--- retry ---" >>"$LOGS/${t%.py}.log"
        if run_test "$t" "$LOGS/${t%.py}.log" "${ports[@]}"; then
            printf 'FLAKY %7.2fs  %s  (failed, then passed on its retry: see its log)\n' "$(elapsed "$start")" "$t"
            FLAKY+=("$t"); passed=$((passed + 1)); failed=$((failed - 1))
        else
            printf 'FAIL  %7.2fs  %s  (failed again on its retry)\n' "$(elapsed "$start")" "$t"
            STILL+=("$t")
        fi
    done
    FAILED=("${STILL[@]}")
fi
total=$((passed + failed + skipped))
echo "mosquitto-suite: $LABEL, $(elapsed "$suite_start")s in all; output of the failed tests in $LOGS"
echo "mosquitto-suite: $passed passed, $failed failed, $skipped skipped of $total${FLAKY:+ (passed on a retry: ${FLAKY[*]})}"
if [ -n "$EXPECTED_FILE" ]; then
    echo "mosquitto-suite: $xfailed of the failures expected ($EXPECTED_FILE), ${#FAILED[@]} unexpected${FAILED:+: ${FAILED[*]}}; $xpassed listed tests passed"
fi
[ ${#FAILED[@]} -eq 0 ]
