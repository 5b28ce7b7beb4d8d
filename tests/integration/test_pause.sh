# Pause stops the guest, resume continues it with the next heartbeat.
source "$(dirname "$0")/lib.sh"

start_vm p --kernel "$GUEST" --cmdline "tern.hb=50"
wait_for "$TMP/p.console" '^HB 5 ' 5
wait_socket p
events=$(timeout 10 "$CTL" --wait-event paused "$TMP/p.sock" '{"cmd":"pause"}')
check "pause: paused event" grep -q '"event":"paused"' <<<"$events"
check "pause: status says paused" grep -q '"state":"paused"' <<<"$(ctl p '{"cmd":"status"}')"
before=$(last_hb p)
sleep 0.6
after=$(last_hb p)
check "pause: no heartbeat while paused ($before -> $after)" [ "$before" = "$after" ]
check "pause again is harmless" grep -q '"ok":true' <<<"$(ctl p '{"cmd":"pause"}')"
events=$(timeout 10 "$CTL" --wait-event resumed "$TMP/p.sock" '{"cmd":"resume"}')
check "resume: resumed event" grep -q '"event":"resumed"' <<<"$events"
check "resume: heartbeat continues" wait_for "$TMP/p.console" "^HB $((after + 3)) " 5
check "resume: next seq follows, none lost or repeated" hb_consecutive p
ctl p '{"cmd":"quit"}' >/dev/null
check "exit status 0" eval "wait_vm p; [ \$RC = 0 ]"

start_vm sp --kernel "$GUEST" --cmdline "tern.hb=50" --paused
wait_socket sp
sleep 0.3
check "--paused: nothing runs before resume" [ ! -s "$TMP/sp.console" ]
ctl sp '{"cmd":"resume"}' >/dev/null
check "--paused: runs after resume" wait_for "$TMP/sp.console" '^HB 2 ' 5
ctl sp '{"cmd":"quit"}' >/dev/null
wait_vm sp
