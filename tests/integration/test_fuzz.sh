# Runs each libFuzzer target (tests/fuzz) for FUZZ_SECONDS (default 6) with
# seeds from tests/golden and the targets' own: ok when nothing is found,
# not ok with the crash file otherwise, ok # SKIP when clang has no
# libFuzzer. Inputs a target once failed on (tests/fuzz/regress/TARGET/)
# run first, each once. `make fuzz` runs this with FUZZ_SECONDS=1800. No
# KVM needed.
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
SECS=${FUZZ_SECONDS:-6}
FUZZ=$BUILD/fuzz
GOLDEN=tests/golden

TARGETS="fuzz_stream fuzz_devstate fuzz_control fuzz_api fuzz_replbitmap"
missing=0
for t in $TARGETS; do [ -x "$FUZZ/$t" ] || missing=1; done
if [ $missing = 1 ]; then
    if ! printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return d && n; }\n' |
         ${FUZZ_CC:-clang} -fsanitize=fuzzer -x c - -o /dev/null 2>/dev/null; then
        echo "ok - fuzzers # SKIP clang with libFuzzer not available (libclang-rt-14-dev)"
        exit 0
    fi
    if ! make --no-print-directory BUILD="$BUILD" fuzz-bins >"$BUILD/fuzz-build.log" 2>&1; then
        echo "not ok - fuzzers do not build: $(grep -m1 error "$BUILD/fuzz-build.log")"
        exit 0
    fi
fi

work=$(mktemp -d /tmp/tern-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
for t in $TARGETS; do mkdir -p "$FUZZ/corpus/$t"; done
mkdir -p "$FUZZ/crashes"
for g in "$GOLDEN"/v1-*.stream "$GOLDEN"/v1-*.stream.gz; do
    [ -e "$g" ] || continue
    n=$(basename "${g%.gz}")
    if [ "${g%.gz}" != "$g" ]; then gzip -dc "$g" >"$FUZZ/corpus/fuzz_stream/$n"
    else cp "$g" "$FUZZ/corpus/fuzz_stream/$n"; fi
done
# small seeds too: the same streams without their RAM batches (whole
# streams are MBs of page data, slow to run and to mutate)
for f in "$FUZZ/corpus/fuzz_stream"/v1-*.stream; do
    [ -e "$f" ] && [ -x "$BUILD/tests/streamedit" ] || continue
    "$BUILD/tests/streamedit" list "$f" | while read -r i off type len rest; do
        [ "$type" = RAM ] || dd if="$f" bs=1 skip="$off" count=$((16 + len)) status=none
    done >"$FUZZ/corpus/fuzz_stream/$(basename "$f" .stream)-noram.stream"
done
for t in fuzz_devstate fuzz_control fuzz_api fuzz_replbitmap; do
    FUZZ_SEED_DIR=$FUZZ/corpus/$t "$FUZZ/$t" >/dev/null 2>&1
done

export ASAN_OPTIONS=detect_leaks=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
for t in $TARGETS; do
    rm -f "$FUZZ/crashes/$t-"*
    regress=(tests/fuzz/regress/$t/*)
    if [ -e "${regress[0]}" ]; then
        # with leak checks: a leak on a refused input was one of them
        if ASAN_OPTIONS=detect_leaks=1 "$FUZZ/$t" "${regress[@]}" >"$work/$t-regress.log" 2>&1; then
            echo "ok - $t: the ${#regress[@]} input(s) in tests/fuzz/regress/$t pass"
        else
            echo "not ok - $t: an input of tests/fuzz/regress/$t crashes it again: $(grep -m1 -E 'ERROR|runtime error' "$work/$t-regress.log")"
        fi
    fi
    start=$SECONDS
    # -max_len: whole streams are cut to their first 64 KiB (HELLO, RAM
    # head); control lines go past the 64 KiB a line may have
    maxlen=$((64 << 10))
    [ $t = fuzz_control ] && maxlen=$((70 << 10))
    [ $t = fuzz_api ] && maxlen=4096
    "$FUZZ/$t" -max_total_time="$SECS" -max_len=$maxlen -timeout=20 -rss_limit_mb=4096 \
        -artifact_prefix="$FUZZ/crashes/$t-" -print_final_stats=1 \
        "$FUZZ/corpus/$t" >"$work/$t.log" 2>&1
    rc=$?
    runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$work/$t.log" | grep -Eo '[0-9]+$')
    crash=$(ls "$FUZZ/crashes/$t-"* 2>/dev/null | head -1)
    if [ $rc -eq 0 ] && [ -z "$crash" ]; then
        echo "ok - $t: ${runs:-?} runs in $((SECONDS - start)) s, nothing found"
    else
        cp "$work/$t.log" "$FUZZ/crashes/$t.log"
        echo "not ok - $t: rc=$rc ${crash:-no artifact} (log $FUZZ/crashes/$t.log): $(grep -m1 -E 'ERROR|runtime error|SUMMARY' "$work/$t.log")"
    fi
done
