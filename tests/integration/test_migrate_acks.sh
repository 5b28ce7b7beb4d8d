# Acknowledgements (feature ACKS): with a real destination the source learns
# how much was applied (acked, catch_up_ms) and reports why pre-copy stopped;
# a fake destination that lies in its ACKs, sends malformed ones, floods or
# never sends any cannot crash or confuse the source (invariant 3): the
# migration fails naming the problem (or goes on without ACKs) and the VM
# keeps running on the source. Sources facing the fake run under ASan+UBSan
# when that build exists.
source "$(dirname "$0")/lib.sh"

FAKE=$BUILD/tests/fake-dest
PLAIN_VMM=$VMM
BAD_VMM=$VMM
if [ -x "$BUILD/asan/tern-vmm" ] && [ -z "${NO_ASAN:-}" ]; then
    BAD_VMM=$BUILD/asan/tern-vmm
fi
export ASAN_OPTIONS=detect_leaks=0:exitcode=86:abort_on_error=0
export UBSAN_OPTIONS=halt_on_error=1:exitcode=87:print_stacktrace=1

# ---- a real destination ----
start_dst d1 "unix:$TMP/m1.sock"
start_vm s1 --memory 256M --kernel "$GUEST" \
    --cmdline "tern.hb=20 tern.ws=64 tern.rate=20 tern.verify=1"
wait_for "$TMP/s1.console" '^VERIFY ok' 20
migrate s1 "unix:$TMP/m1.sock"
check "real destination: migration completes ($MIG)" [ "$MIG" = completed ]
acked=$(fig s1 acked)
check "real destination: the source reports the bytes applied (${acked:-none})" \
    [ "${acked:-0}" -gt 0 ]
check "real destination: why pre-copy stopped and the predicted downtime are reported" \
    grep -Eq '"stop_reason":"(small|plateau)".*"predicted_downtime_ms"' "$TMP/s1.migration"
announce=$(fig s1 announce_ms)
check "real destination: PAUSING acknowledged before the pause (${announce:-none} ms)" \
    [ -n "$announce" ]
check "real destination: its guest verifies ok" verify_ok_after d1 10
ctl d1 '{"cmd":"quit"}' >/dev/null
wait_vm d1
wait_vm s1

# ---- anonymous guest RAM (TERN_RAM_BACKING=anon): pass 1 skips never
# written pages through /proc/self/pagemap, and every page still arrives ----
export TERN_RAM_BACKING=anon
start_dst d2 "unix:$TMP/m2.sock"
start_vm s2 --memory 256M --kernel "$GUEST" \
    --cmdline "tern.hb=20 tern.ws=64 tern.rate=20 tern.verify=1"
wait_for "$TMP/s2.console" '^VERIFY ok' 20
migrate s2 "unix:$TMP/m2.sock"
unset TERN_RAM_BACKING
check "anonymous RAM: migration completes ($MIG)" [ "$MIG" = completed ]
skipped=$(fig s2 skipped_pages)
check "anonymous RAM: never-written pages skipped (${skipped:-none} of 65536)" \
    [ "${skipped:-0}" -gt 30000 ]
check "anonymous RAM: the destination's guest verifies ok" verify_ok_after d2 10
ctl d2 '{"cmd":"quit"}' >/dev/null
wait_vm d2
wait_vm s2

# ---- a fake destination: MODE, then what the source must say ----
expect_fail() {
    local mode=$1 want=$2 name=v-$1
    "$FAKE" "$mode" "$TMP/f-$mode.sock" >"$TMP/f-$mode.out" 2>&1 &
    local fake=$!
    VMM=$BAD_VMM start_vm "$name" --memory 64M --kernel "$GUEST" \
        --cmdline "tern.hb=20 tern.ws=8 tern.rate=5"
    VMM=$PLAIN_VMM
    wait_for "$TMP/$name.console" '^HB 3 ' 10
    for i in $(seq 100); do [ -S "$TMP/f-$mode.sock" ] && break; sleep 0.02; done
    migrate "$name" "unix:$TMP/f-$mode.sock"
    check "$mode: the migration fails ($MIG)" [ "$MIG" = failed ]
    check "$mode: the error says '$want'" grep -q -- "$want" "$TMP/$name.migration"
    local n
    n=$(last_hb "$name")
    check "$mode: the guest keeps running on the source" \
        wait_for "$TMP/$name.console" "^HB $(( n + 3 )) " 5
    ctl "$name" '{"cmd":"quit"}' >/dev/null
    wait_vm "$name"
    check "$mode: the source exits cleanly (status $RC)" [ "$RC" -eq 0 ]
    kill "$fake" 2>/dev/null
    wait "$fake" 2>/dev/null || true
}

expect_fail ahead "only [0-9]* were sent"
expect_fail back "acknowledgement went back"
expect_fail short "ACK message of 4 bytes, not 8"
expect_fail huge "ACK message of 1048576 bytes exceeds the limit of 8"
expect_fail unasked "got ACK"
expect_fail flood "fake destination"
check "flood: the source stopped waiting for ACKs that did not come" \
    grep -q "did not acknowledge within" "$TMP/v-flood.log"
expect_fail silent "fake destination"
check "silent: the source stopped waiting for ACKs that did not come" \
    grep -q "did not acknowledge within" "$TMP/v-silent.log"
