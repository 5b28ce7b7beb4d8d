# Live migration between two real tern-vmm processes, tern-guest verifying
# every page: idle, dirtying, auto-converge, 2 vCPUs, shared disk, paused.
source "$(dirname "$0")/lib.sh"

# migrate_case NAME SRC-OPTIONS CMDLINE [extra json]: boots, waits, migrates
# over a unix socket, checks the destination goes on where the source stopped.
migrate_case() {
    local name=$1 opts=$2 cmdline=$3 extra=${4:-}
    start_vm "$name-src" $opts --kernel "$GUEST" --cmdline "$cmdline"
    wait_for "$TMP/$name-src.console" '^HB 20 ' 10
    start_dst "$name-dst" "unix:$TMP/$name.mig" ${DST_OPTS:-}
    migrate "$name-src" "unix:$TMP/$name.mig" "$extra"
    check "$name: completed (total $(fig $name-src total_ms) ms, downtime $(fig $name-src downtime_ms) ms, $(fig $name-src pass) passes)" \
        [ "$MIG" = completed ]
    wait_vm "$name-src"
    check "$name: source exits 0 after the handover" [ "$RC" = 0 ]
    check "$name: destination runs" grep -q '"state":"running"' <<<"$(ctl $name-dst '{"cmd":"status"}')"
    check "$name: heartbeat continues with the next seq" \
        wait_for "$TMP/$name-dst.console" '^HB [0-9]+ ' 5
    sleep 0.3
    check "$name: no heartbeat lost or repeated across hosts" hb_consecutive_across "$name-src" "$name-dst"
}

migrate_case idle "--memory 1G" "tern.hb=50"
check "idle: under 5 s total" awk "BEGIN { exit !($(fig idle-src total_ms) < 5000) }"
ctl idle-dst '{"cmd":"quit"}' >/dev/null; wait_vm idle-dst

migrate_case ws256 "--memory 1G" "tern.hb=50 tern.ws=256 tern.rate=50 tern.verify=1"
check "ws256: VERIFY ok on the destination" verify_ok_after ws256-dst
ctl ws256-dst '{"cmd":"quit"}' >/dev/null; wait_vm ws256-dst

migrate_case ws512 "--memory 1G" "tern.hb=50 tern.ws=512 tern.rate=400 tern.verify=1" \
    ',"auto_converge":true,"downtime_limit_ms":50'
note "ws512: throttle $(fig ws512-src throttle_pct)%, passes $(fig ws512-src pass)"
check "ws512: VERIFY ok on the destination" verify_ok_after ws512-dst 15
ctl ws512-dst '{"cmd":"quit"}' >/dev/null; wait_vm ws512-dst

migrate_case smp "--memory 1G --cpus 2" "tern.hb=50 tern.ws=128 tern.rate=100 tern.verify=1 tern.smp=1"
check "smp: cpu 0 VERIFY ok on the destination" wait_for "$TMP/smp-dst.console" '^VERIFY ok .*cpu=0' 10
check "smp: cpu 1 VERIFY ok on the destination" wait_for "$TMP/smp-dst.console" '^VERIFY ok .*cpu=1' 10
check "smp: no VERIFY FAIL" bash -c "! grep -q 'VERIFY FAIL' '$TMP/smp-dst.console'"
ctl smp-dst '{"cmd":"quit"}' >/dev/null; wait_vm smp-dst

# shared disk: both sides open the same image; the lock moves at the commit
img=$TMP/shared.img
truncate -s 64M "$img"
DST_OPTS="--disk path=$img,shared=on" migrate_case disk "--memory 512M --disk path=$img,shared=on" \
    "tern.hb=50 tern.disk=8 tern.ws=32 tern.rate=20 tern.verify=1"
check "disk: DISK ok on the destination" wait_for "$TMP/disk-dst.console" '^DISK ok' 20
check "disk: no DISK FAIL on either side" bash -c "! grep -q 'DISK FAIL' '$TMP/disk-src.console' '$TMP/disk-dst.console'"
check "disk: VERIFY ok on the destination" verify_ok_after disk-dst
start_vm third --kernel "$GUEST" --disk "path=$img"
wait_vm third
check "disk: the destination holds the image lock (third writer refused)" \
    grep -q "in use by another process (locked)" "$TMP/third.log"
ctl disk-dst '{"cmd":"quit"}' >/dev/null; wait_vm disk-dst

# a local (unshared) disk cannot move yet: refused before anything runs
truncate -s 16M "$TMP/local.img"; truncate -s 16M "$TMP/local2.img"
start_vm loc-src --kernel "$GUEST" --disk "path=$TMP/local.img" --cmdline "tern.hb=50"
wait_for "$TMP/loc-src.console" '^HB 5 ' 5
start_dst loc-dst "unix:$TMP/loc.mig" --disk "path=$TMP/local2.img"
migrate loc-src "unix:$TMP/loc.mig"
check "local disk: migration refused" [ "$MIG" = failed ]
check "local disk: reason names it" grep -q "local to the source" "$TMP/loc-src.migration"
wait_vm loc-dst
check "local disk: destination exits 1" [ "$RC" = 1 ]
check "local disk: source keeps running" grep -q '"state":"running"' <<<"$(ctl loc-src '{"cmd":"status"}')"
ctl loc-src '{"cmd":"quit"}' >/dev/null; wait_vm loc-src

# a paused VM migrates and stays paused on the destination
start_vm p-src --kernel "$GUEST" --memory 512M --cmdline "tern.hb=50 tern.ws=32 tern.rate=20 tern.verify=1"
wait_for "$TMP/p-src.console" '^HB 10 ' 5
ctl p-src '{"cmd":"pause"}' >/dev/null
start_dst p-dst "unix:$TMP/p.mig"
migrate p-src "unix:$TMP/p.mig"
check "paused: completed" [ "$MIG" = completed ]
check "paused: destination stays paused" grep -q '"state":"paused"' <<<"$(ctl p-dst '{"cmd":"status"}')"
sleep 0.3
check "paused: no heartbeat on the destination while paused" [ ! -s "$TMP/p-dst.console" ]
ctl p-dst '{"cmd":"resume"}' >/dev/null
check "paused: resume continues the heartbeat" wait_for "$TMP/p-dst.console" '^HB' 5
sleep 0.2
check "paused: heartbeat seq continues" hb_consecutive_across p-src p-dst
check "paused: VERIFY ok after resume" verify_ok_after p-dst
ctl p-dst '{"cmd":"quit"}' >/dev/null; wait_vm p-dst; wait_vm p-src

# a guest that dirties faster than the link: auto-converge takes CPU time
# away until the rest fits the downtime limit, and says so
start_vm ac-src --kernel "$GUEST" --memory 512M --cmdline "tern.hb=50 tern.ws=64 tern.rate=40 tern.verify=1"
wait_for "$TMP/ac-src.console" '^VERIFY ok' 10
start_dst ac-dst "unix:$TMP/ac.mig"
migrate ac-src "unix:$TMP/ac.mig" ',"max_bandwidth":15000000,"auto_converge":true,"max_time_s":60'
check "auto-converge: completed after $(fig ac-src pass) passes with the vcpus throttled to $(fig ac-src throttle_pct)%" \
    eval '[ "$MIG" = completed ] && [ "$(fig ac-src throttle_pct)" -gt 0 ]'
check "auto-converge: logged" grep -q "auto-converge: vcpus throttled" "$TMP/ac-src.log"
check "auto-converge: VERIFY ok on the destination" verify_ok_after ac-dst
# a failed migration leaves the source running: end it rather than wait forever
[ "$MIG" = completed ] || kill -9 "${VM_PID[ac-src]}" 2>/dev/null
wait_vm ac-src

# without it the same guest never converges: give up after max_time_s and
# stay on the source
start_dst nc-dst "unix:$TMP/nc.mig"
migrate ac-dst "unix:$TMP/nc.mig" ',"max_bandwidth":15000000,"auto_converge":false,"max_time_s":3'
check "no auto-converge: gives up after max_time_s ($(grep -o '"error":"[^"]*"' "$TMP/ac-dst.migration"))" \
    eval '[ "$MIG" = failed ] && grep -q "did not converge within 3 s" "$TMP/ac-dst.migration"'
check "no auto-converge: the vm keeps running where it was" verify_ok_after ac-dst
# a destination whose source never came (the case above failed) waits forever
for _ in $(seq 50); do kill -0 "${VM_PID[nc-dst]}" 2>/dev/null || break; sleep 0.2; done
kill -9 "${VM_PID[nc-dst]}" 2>/dev/null
wait_vm nc-dst
ctl ac-dst '{"cmd":"quit"}' >/dev/null; wait_vm ac-dst

# a destination still waiting for its source answers on its control socket
start_dst w-dst "unix:$TMP/w.mig"
check "waiting destination: status says incoming" \
    grep -q '"state":"incoming"' <<<"$(ctl w-dst '{"cmd":"status"}')"
ctl w-dst '{"cmd":"quit"}' >/dev/null
wait_vm w-dst
# ternd hands out the migration address once the control socket answers:
# by then the destination must listen (5 fresh starts, no grace period)
listening_when_answering() {
    local i
    for i in 1 2 3 4 5; do
        "$VMM" --incoming "unix:$TMP/l$i.mig" --control "$TMP/l$i.sock" 2>/dev/null &
        local pid=$! n=0
        until "$CTL" "$TMP/l$i.sock" '{"cmd":"status"}' >/dev/null 2>&1; do
            [ $((n++)) -lt 500 ] || return 1
            sleep 0.01
        done
        [ -S "$TMP/l$i.mig" ] || { kill $pid; return 1; }
        "$CTL" "$TMP/l$i.sock" '{"cmd":"quit"}' >/dev/null
        wait $pid
    done
}
check "waiting destination: it listens before its control socket answers" \
    listening_when_answering
check "waiting destination: quit ends it with status 0" [ "$RC" = 0 ]
check "waiting destination: its sockets are gone" \
    eval '[ ! -e "$TMP/w.mig" ] && [ ! -e "$TMP/w-dst.sock" ]'
