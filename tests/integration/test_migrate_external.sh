# The handover decided outside tern-vmm (ternd's etcd compare-and-swap):
# the source waits at "commit-pending" for migrate_commit; a destination
# that lost its source after loading waits at "commit-unknown" for
# incoming_resolve. Whatever the answers, exactly one VM runs.
source "$(dirname "$0")/lib.sh"

start_vm src --kernel "$GUEST" --memory 256M --cmdline "tern.hb=50 tern.ws=16 tern.rate=20 tern.verify=1"
wait_for "$TMP/src.console" '^VERIFY ok' 10

running() { grep -q '"state":"running"' <<<"$(ctl "$1" '{"cmd":"status"}')"; }
hb_moves() { local n; n=$(last_hb "$1"); wait_for "$TMP/$1.console" "^HB $(( n + 2 )) " 5; }

# start_external NAME: a migration to destination NAME with the external
# commit; returns once the source waits for the decision.
start_external() {
    start_dst "$1" "unix:$TMP/$1.mig" --commit external
    timeout 60 "$CTL" --wait-match '"status":"(commit-pending|failed)"' --timeout 50 \
        "$TMP/src.sock" "{\"cmd\":\"migrate\",\"uri\":\"unix:$TMP/$1.mig\",\"commit\":\"external\"}" \
        >"$TMP/$1.events" 2>&1
    grep -q '"commit-pending"' "$TMP/$1.events"
}

# 1. the cluster refuses: the source resumes, the destination quits
check "refused: source reaches commit-pending" start_external d1
check "refused: source is paused while it waits" grep -q '"state":"paused"' <<<"$(ctl src '{"cmd":"status"}')"
check "a resume at the source during the handover is refused, naming the migration" \
    grep -q '"error":"resume: a migration holds the vm"' <<<"$(ctl src '{"cmd":"resume"}')"
check "a resume at the destination before the commit is refused, naming the migration" \
    grep -q '"error":"resume: a migration holds the vm"' <<<"$(ctl d1 '{"cmd":"resume"}')"
check "a migrate out of the destination before the commit is refused" \
    grep -q 'still arriving' <<<"$(ctl d1 '{"cmd":"migrate","uri":"unix:/nowhere"}')"
check "both stay paused" bash -c "grep -q '\"state\":\"paused\"' <<<\"\$($CTL $TMP/src.sock '{\"cmd\":\"status\"}')\" &&
                          ! grep -q '^HB' $TMP/d1.console"
check "refused: migrate_commit false accepted" grep -q '"ok":true' <<<"$(ctl src '{"cmd":"migrate_commit","commit":false}')"
check "refused: source runs again" wait_for "$TMP/src.log" 'refused by the cluster' 5
check "refused: heartbeat goes on at the source" hb_moves src
wait_vm d1
check "refused: destination exits 1 without running the vm" [ "$RC" = 1 ]
check "refused: destination never resumed" bash -c "! grep -q '^HB' '$TMP/d1.console'"
check "a decision nobody waits for is refused" \
    grep -q 'no commit decision is awaited' <<<"$(ctl src '{"cmd":"migrate_commit","commit":true}')"
check "bad decision refused" grep -q "'commit' (true or false)" <<<"$(ctl src '{"cmd":"migrate_commit","commit":"yes"}')"
check "bad commit mode refused" grep -q "'commit' must be" <<<"$(ctl src '{"cmd":"migrate","uri":"unix:/x","commit":"maybe"}')"

# 2. the source is killed while it waits: the destination asks, the cluster
# says "you own it", the destination resumes and the guest verifies
check "source killed: commit-pending" start_external d2
( timeout 30 "$CTL" --wait-match '"commit-unknown"' --timeout 25 "$TMP/d2.sock" '{"cmd":"status"}' \
    >"$TMP/d2.events" 2>&1 ) &
watcher=$!
sleep 0.3
kill -9 "${VM_PID[src]}"
wait_vm src 2>/dev/null
wait $watcher
check "source killed: destination reports commit-unknown" grep -q '"commit-unknown"' "$TMP/d2.events"
check "source killed: destination stays paused while it waits" \
    grep -q '"state":"paused"' <<<"$(ctl d2 '{"cmd":"status"}')"
check "incoming_resolve true accepted" grep -q '"ok":true' <<<"$(ctl d2 '{"cmd":"incoming_resolve","resume":true}')"
check "destination runs the vm" wait_for "$TMP/d2.console" '^HB' 5
check "destination verifies every page" verify_ok_after d2 10

# 3. from d2, an external commit that the cluster confirms: completes
start_dst d3 "unix:$TMP/d3.mig" --commit external
timeout 60 "$CTL" --wait-match '"status":"(commit-pending|failed)"' --timeout 50 "$TMP/d2.sock" \
    "{\"cmd\":\"migrate\",\"uri\":\"unix:$TMP/d3.mig\",\"commit\":\"external\"}" >"$TMP/d3.events" 2>&1
check "confirmed: d2 waits for the decision" grep -q '"commit-pending"' "$TMP/d3.events"
check "confirmed: migrate_commit true" grep -q '"ok":true' <<<"$(ctl d2 '{"cmd":"migrate_commit","commit":true}')"
wait_vm d2
check "confirmed: the source ends (migrated away)" [ "$RC" = 0 ]
check "confirmed: destination runs and verifies" verify_ok_after d3 10

# 4. a destination whose source vanished, and the cluster keeps the VM at
# the source: the destination quits without running it
start_vm s4 --kernel "$GUEST" --memory 128M --cmdline "tern.hb=50"
wait_for "$TMP/s4.console" '^HB' 10
start_dst d4 "unix:$TMP/d4.mig" --commit external
timeout 60 "$CTL" --wait-match '"status":"(commit-pending|failed)"' --timeout 50 "$TMP/s4.sock" \
    "{\"cmd\":\"migrate\",\"uri\":\"unix:$TMP/d4.mig\",\"commit\":\"external\"}" >/dev/null 2>&1
kill -9 "${VM_PID[s4]}"
wait_vm s4 2>/dev/null
check "kept at source: destination asks" wait_for "$TMP/d4.log" 'asking the cluster' 10
check "incoming_resolve false accepted" grep -q '"ok":true' <<<"$(ctl d4 '{"cmd":"incoming_resolve","resume":false}')"
wait_vm d4
check "kept at source: destination exits 1" [ "$RC" = 1 ]
check "kept at source: it never ran the vm" bash -c "! grep -q '^HB' '$TMP/d4.console'"
check "kept at source: the log says why" grep -q 'kept the vm on the source' "$TMP/d4.log"
