#!/usr/bin/env bash
# Coverage-guided fuzzing with libFuzzer (docs/fuzzing.md).
#
#   scripts/fuzz.sh TARGET SECONDS [libFuzzer args...]   build TARGET, fuzz it for SECONDS
#   scripts/fuzz.sh build TARGET                          build only; prints the binary's path
#   scripts/fuzz.sh merge TARGET                          add to Fuzz/corpus/TARGET the few working-
#                                                         corpus inputs that reach new edges
#   scripts/fuzz.sh list                                  the known targets
#
# A target is a folder Fuzz/<TARGET>/ holding one Swift file that defines LLVMFuzzerTestOneInput
# and is listed in the MIDGE_FUZZ block at the end of Package.swift. Its committed seed corpus
# is Fuzz/corpus/<TARGET>/, its dictionary (optional) Fuzz/<TARGET>.dict.
#
# Everything is built and kept in .build-fuzz/ (never the default .build):
#   .build-fuzz/corpus/<TARGET>/   working corpus (seeded from the committed one; grows over runs;
#                                  FUZZ_FRESH=1 starts it over)
#   .build-fuzz/crashes/<TARGET>/  crash-*, timeout-*, oom-*, leak-* inputs libFuzzer writes
#   .build-fuzz/logs/<TARGET>-<time>.log
# Environment: FUZZ_CONFIG=release (default; -O with -g) or debug; FUZZ_SANITIZE=fuzzer (no
# AddressSanitizer: faster, built into .build-fuzz-fuzzer/).
# Exit code: non-zero when libFuzzer found a crash (or the build failed). The last line is a
# one-line summary: executions, exec/s, cov, ft, new corpus units, crashes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
# FUZZ_SANITIZE=fuzzer drops AddressSanitizer (faster: for long
# runs of the memory-safe Swift engine); its build goes to a folder of its own.
SANITIZE=${FUZZ_SANITIZE:-fuzzer,address}
SCRATCH=.build-fuzz
[ "$SANITIZE" = fuzzer,address ] || SCRATCH=.build-fuzz-${SANITIZE//,/-}
CONFIG=${FUZZ_CONFIG:-release}

targets() {
    local dir
    for dir in Fuzz/*/; do
        dir=${dir%/}
        [ "$dir" = Fuzz/corpus ] && continue
        compgen -G "$dir/*.swift" >/dev/null && basename "$dir"
    done
}

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2; echo "targets: $(targets | tr '\n' ' ')" >&2; exit 2; }

check_target() {
    targets | grep -qx "$1" || { echo "error: unknown fuzz target '$1' (known: $(targets | tr '\n' ' '))" >&2; exit 2; }
}

build_flags() {
    local flags=(--scratch-path "$SCRATCH" -c "$CONFIG" --product "$1"
                 -Xswiftc -sanitize="$SANITIZE" -Xswiftc -parse-as-library
                 # keep `assert` (the engine's loop-confinement checks) in the optimised build
                 -Xswiftc -assert-config -Xswiftc Debug)
    [ "$CONFIG" = release ] && flags+=(-Xswiftc -g)
    printf '%s\n' "${flags[@]}"
}

build() {
    local flags
    mapfile -t flags < <(build_flags "$1")
    echo "==> MIDGE_FUZZ=1 swift build ${flags[*]}" >&2
    MIDGE_FUZZ=1 swift build "${flags[@]}" >&2
    echo "$(MIDGE_FUZZ=1 swift build "${flags[@]}" --show-bin-path)/$1"
}

# The Swift runtime's own backtracer would make each crash slow and its report libFuzzer's noise.
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1}

case "${1:-}" in
    ""|-h|--help) usage ;;
    list) targets; exit 0 ;;
    build) [ $# -eq 2 ] || usage; check_target "$2"; build "$2"; exit 0 ;;
    merge)
        [ $# -eq 2 ] || usage; check_target "$2"
        target=$2
        binary=$(build "$target")
        seeds=Fuzz/corpus/$target
        merged=$SCRATCH/merged/$target
        rm -rf "$merged"; mkdir -p "$merged" "$SCRATCH/corpus/$target"
        # Every committed seed stays; from the working corpus, a small set (set cover) of inputs
        # that reach edges the seeds do not (edges only, -use_counters=0: hit counts would bring
        # in hundreds of near-duplicates).
        cp "$seeds"/* "$merged"/
        "$binary" -set_cover_merge=1 -use_counters=0 "$merged" "$SCRATCH/corpus/$target" 2>&1 \
            | grep -E "MERGE-OUTER: [0-9]+ new files" || true
        for file in "$merged"/*; do [ -e "$seeds/${file##*/}" ] || cp "$file" "$seeds"/; done
        echo "$seeds: $(ls "$seeds" | wc -l) files, $(cat "$seeds"/* | wc -c) bytes"
        exit 0 ;;
esac

[ $# -ge 2 ] || usage
target=$1 seconds=$2
shift 2
check_target "$target"
[[ $seconds =~ ^[0-9]+$ ]] || { echo "error: SECONDS must be a whole number" >&2; exit 2; }

binary=$(build "$target")
corpus=$SCRATCH/corpus/$target
crashes=$SCRATCH/crashes/$target
logs=$SCRATCH/logs
[ "${FUZZ_FRESH:-0}" = 1 ] && rm -rf "$corpus"
mkdir -p "$corpus" "$crashes" "$logs"
for file in Fuzz/corpus/"$target"/*; do [ -e "$corpus/${file##*/}" ] || cp "$file" "$corpus"/; done
log=$logs/$target-$(date +%Y%m%d-%H%M%S).log
args=("$corpus" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$ROOT/$crashes/")
[ -f "Fuzz/$target.dict" ] && args+=(-dict="Fuzz/$target.dict")
before=$(ls "$crashes" | wc -l)

echo "==> $binary ${args[*]} $*   (log: $log)"
set +e
"$binary" "${args[@]}" "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

after=$(ls "$crashes" | wc -l)
stat() { grep -E "^stat::$1:" "$log" | tail -1 | awk '{print $2}'; }
last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1)
cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"$last")
ft=$(sed -nE 's/.*ft: ([0-9]+).*/\1/p' <<<"$last")
new_crashes=$((after - before))
echo "==> $target: ${seconds}s, executions $(stat number_of_executed_units), exec/s $(stat average_exec_per_sec), cov ${cov:-?}, ft ${ft:-?}, new units $(stat new_units_added), corpus $(ls "$corpus" | wc -l) files, crashes $new_crashes (in $crashes), exit $status"
if [ "$status" -ne 0 ] || [ "$new_crashes" -gt 0 ]; then
    exit 1
fi
