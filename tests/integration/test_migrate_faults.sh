# Faults during live migration: the destination killed at random points, the
# connection cut, the source killed, a cancel. The VM is never lost: the
# source keeps running (and verifying) whenever the handover did not happen.
source "$(dirname "$0")/lib.sh"

start_vm src --kernel "$GUEST" --memory 512M --cmdline "tern.hb=50 tern.ws=64 tern.rate=20 tern.verify=1"
wait_for "$TMP/src.console" '^VERIFY ok' 10
# slow enough (~30 MB/s) that a kill lands anywhere in the migration
SLOW=',"max_bandwidth":30000000'

source_alive() {
    grep -q '"state":"running"' <<<"$(ctl src '{"cmd":"status"}')" &&
        wait_for "$TMP/src.console" "^HB $(( $(last_hb src) + 2 )) " 5
}

for i in $(seq 1 10); do
    delay=$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", r % 2600 / 1000 }')
    start_dst kd$i "unix:$TMP/kd$i.mig"
    ( sleep "$delay"; kill -9 "${VM_PID[kd$i]}" 2>/dev/null ) &
    killer=$!
    migrate src "unix:$TMP/kd$i.mig" "$SLOW"
    wait $killer "${VM_PID[kd$i]}" 2>/dev/null
    unset "VM_PID[kd$i]"
    if [ "$MIG" = completed ]; then
        # the kill came after the handover: the VM lives on the destination,
        # which was then killed; nothing here may run it again
        check "kill -9 destination after ${delay}s: completed before the kill, source ended" \
            bash -c "! kill -0 ${VM_PID[src]} 2>/dev/null"
        break
    fi
    check "kill -9 destination after ${delay}s: migration $MIG, source keeps running" source_alive
done
check "source still verifies every page after 10 destination kills" verify_ok_after src 5

# cut the connection: a proxy in between is killed mid-stream
start_dst cut "unix:$TMP/cut.mig"
socat "UNIX-LISTEN:$TMP/proxy.mig" "UNIX-CONNECT:$TMP/cut.mig" &
proxy=$!
sleep 0.2
( sleep 0.7; kill -9 $proxy ) &
killer=$!
migrate src "unix:$TMP/proxy.mig" "$SLOW"
wait $proxy $killer 2>/dev/null
check "connection cut: migration failed ($(grep -o '"error":"[^"]*"' "$TMP/src.migration"))" [ "$MIG" = failed ]
check "connection cut: source keeps running" source_alive
wait_vm cut
check "connection cut: destination exits 1" [ "$RC" = 1 ]
check "connection cut: destination says why" grep -q "incoming migration failed" "$TMP/cut.log"

# cancel mid-migration
start_dst can "unix:$TMP/can.mig"
( sleep 0.6; "$CTL" "$TMP/src.sock" '{"cmd":"migrate_cancel"}' >"$TMP/cancel.reply" ) &
killer=$!
migrate src "unix:$TMP/can.mig" "$SLOW"
wait $killer
check "cancel: acknowledged" grep -q '"ok":true' "$TMP/cancel.reply"
check "cancel: status cancelled" [ "$MIG" = cancelled ]
check "cancel: source keeps running" source_alive
wait_vm can
check "cancel: destination exits 1" [ "$RC" = 1 ]
check "cancel when nothing runs: refused" grep -q "no migration is running" <<<"$(ctl src '{"cmd":"migrate_cancel"}')"
check "source verifies every page after cut and cancel" verify_ok_after src 5

# bad migrate requests leave the VM alone
check "migrate without uri refused" grep -q "'uri'" <<<"$(ctl src '{"cmd":"migrate"}')"
check "migrate with unknown parameter refused" \
    grep -q "unknown parameter 'speed'" <<<"$(ctl src '{"cmd":"migrate","uri":"unix:/x","speed":1}')"
check "migrate with bad type refused" \
    grep -q "'downtime_limit_ms' must be" <<<"$(ctl src '{"cmd":"migrate","uri":"unix:/x","downtime_limit_ms":"fast"}')"
migrate src "unix:$TMP/nobody.mig"
check "migrate to nobody: failed with a reason" grep -q '"error":"connect to unix' "$TMP/src.migration"
migrate src "tcp:127.0.0.1:1"
check "migrate to a closed port: failed" [ "$MIG" = failed ]
check "after bad requests the source runs and verifies" verify_ok_after src 5

# kill the source mid-stream: the destination exits cleanly with an error
start_dst ks "unix:$TMP/ks.mig"
"$CTL" "$TMP/src.sock" "{\"cmd\":\"migrate\",\"uri\":\"unix:$TMP/ks.mig\"$SLOW}" >/dev/null
sleep 0.8
kill -9 "${VM_PID[src]}"
wait_vm src
wait_vm ks
check "source killed: destination exits 1 (got $RC)" [ "$RC" = 1 ]
check "source killed: destination names the cause" \
    grep -Eq "incoming migration failed: .*(closed|reset)" "$TMP/ks.log"
check "source killed: destination never ran the guest" [ ! -s "$TMP/ks.console" ]

# the windows around the commit, held open by the source (TERN_TEST_HOLD)
TERN_TEST_HOLD=loaded TERN_TEST_HOLD_MS=1500 start_vm h1 --kernel "$GUEST" --memory 256M \
    --cmdline "tern.hb=50 tern.ws=16 tern.rate=10 tern.verify=1"
wait_for "$TMP/h1.console" '^VERIFY ok' 10
start_dst h1d "unix:$TMP/h1.mig"
( wait_for "$TMP/h1.log" "test hold at 'loaded'" 20; kill -9 "${VM_PID[h1d]}" ) &
killer=$!
migrate h1 "unix:$TMP/h1.mig"
wait $killer "${VM_PID[h1d]}" 2>/dev/null; unset "VM_PID[h1d]"
check "destination killed after LOADED, before COMMIT: migration failed" [ "$MIG" = failed ]
check "  ... the source resumes and runs" \
    wait_for "$TMP/h1.console" "^HB $(( $(last_hb h1) + 3 )) " 5
check "  ... and verifies every page" verify_ok_after h1 5

start_dst h2d "unix:$TMP/h2.mig"
# h1.log holds the first migration's hold already: wait for the second
( n=0; until [ "$(grep -c "test hold at 'loaded'" "$TMP/h1.log")" -ge 2 ]; do
      [ $((n++)) -lt 1000 ] || break; sleep 0.02; done
  sleep 0.3; kill -9 "${VM_PID[h1]}" ) &
killer=$!
"$CTL" "$TMP/h1.sock" "{\"cmd\":\"migrate\",\"uri\":\"unix:$TMP/h2.mig\"}" >/dev/null
wait $killer; wait_vm h1; wait_vm h2d
check "source killed after LOADED, before COMMIT: destination exits 1" [ "$RC" = 1 ]
check "  ... and says it did not resume" grep -q "no commit from the source" "$TMP/h2d.log"
check "  ... the guest never ran there" [ ! -s "$TMP/h2d.console" ]

start_vm h3 --kernel "$GUEST" --memory 256M --cmdline "tern.hb=50"
wait_for "$TMP/h3.console" '^HB 10 ' 5
TERN_TEST_HOLD=commit-received TERN_TEST_HOLD_MS=1500 start_dst h3d "unix:$TMP/h3.mig"
( wait_for "$TMP/h3d.log" "test hold at 'commit-received'" 20; kill -9 "${VM_PID[h3d]}" ) &
killer=$!
migrate h3 "unix:$TMP/h3.mig"
wait $killer "${VM_PID[h3d]}" 2>/dev/null; unset "VM_PID[h3d]"
check "destination killed after COMMIT: source reports postcommit-failed" [ "$MIG" = postcommit-failed ]
check "  ... the source stays paused" grep -q '"state":"paused"' <<<"$(ctl h3 '{"cmd":"status"}')"
check "  ... and refuses to resume" grep -q '"ok":false' <<<"$(ctl h3 '{"cmd":"resume"}')"
n=$(last_hb h3); sleep 0.5
check "  ... no heartbeat after the commit ($n)" [ "$(last_hb h3)" = "$n" ]
ctl h3 '{"cmd":"quit"}' >/dev/null; wait_vm h3
