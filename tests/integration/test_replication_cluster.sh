# Replication in a three-node cluster (docs/replication.md): a VM on a
# local storage ({node} in its path) running tern-guest's disk checker is
# replicated to n2 with `tern replication create`; `run` is a task that
# ends TASK OK, the first sync full, the next one only the delta; the
# replica on n2 boots a fresh VM to `DISK verify ok`; `delete` leaves no
# replica and no bitmap; bad requests get one line and change nothing.
NET=127.0.0.20   # 127.0.0.201-203
# every sync holds 1 s after each pass of its mirror: room for a fault
export TERN_TEST_HOLD=disk-pass TERN_TEST_HOLD_MS=1000
. tests/integration/cluster_lib.sh
MIB=$((1 << 20))
CMD="tern.hb=50 tern.disk=4 tern.ws=16 tern.rate=20 tern.verify=1"

check "cluster of three" cluster_up repl
check "storage add local --path '$TMP/{node}/images' (not shared)" \
    tern_on n1 storage add local --path "$TMP/{node}/images"
mkdir -p "$TMP/nas"
check "storage add nas --shared" tern_on n1 storage add nas --path "$TMP/nas" --shared
vol() { echo "$TMP/$1/images/vm-100-disk-0.raw"; }
REP=$(vol n2).replica
check_out "vm create 100 on local:128" tern_on n1 vm create 100 --memory 128 --cpus 1 \
    --kernel "$GUEST" --cmdline "$CMD" --disk local:128
check_out "vm create 101 on nas:16 (shared only)" tern_on n1 vm create 101 --memory 128 \
    --cpus 1 --kernel "$GUEST" --disk nas:16
# 48 MiB of data beyond the guest's 4 MiB area: what a full sync copies
dd if=/dev/urandom of="$(vol n1)" bs=1M count=48 seek=64 conv=notrunc 2>/dev/null
check_out "vm start 100" tern_on n1 vm start 100
disk_oks() { grep -c '^DISK ok' "$(console_of n1 100)" 2>/dev/null || echo 0; }
more_disk_ok() {   # N: DISK ok lines past N, and no DISK FAIL
    wait_rc 30 0 bash -c "! grep -q 'DISK FAIL' '$(console_of n1 100)' &&
        [ \$(grep -c '^DISK ok' '$(console_of n1 100)') -gt $1 ]"
}
check "vm 100 writes and verifies its disk on n1" more_disk_ok 0

# bad input: one line each, exit 1 (2 for the CLI's own checks), no job
refused() {   # NAME PATTERN CODE ARGS...: one line naming the culprit
    local name=$1 pat=$2 code=$3 out rc; shift 3
    out=$(tern_on n3 replication create "$@" 2>&1); rc=$?
    check "refused: $name (exit $rc: $out)" \
        bash -c "[ $rc = $code ] && [ \$(wc -l <<<\"\$0\") = 1 ] && grep -qF -- \"\$1\" <<<\"\$0\"" "$out" "$pat"
}
refused "unknown vm" "vm 999 does not exist" 1 999 --target n2
refused "unknown node" "target node 'n9' is not a member" 1 100 --target n9
refused "target is the owner" "vm 100 runs on node 'n1': the target must be another node" 1 100 --target n1
refused "a vm without a local disk" "vm 101 has no disk on a storage that is not shared" 1 101 --target n2
refused "a bad schedule" "--schedule '5x'" 2 100 --target n2 --schedule 5x
check "  and no job was made" [ "$(tern_on n1 replication list --output json | jq '.replications | length')" = 0 ]

check_out "replication create 100 --target n2 (from n3)" \
    tern_on n3 replication create 100 --target n2 --schedule none
refused "a job that exists" "vm 100 is replicated to node 'n2' already" 1 100 --target n3
LIST=$(tern_on n2 replication list --output json)
check "replication list shows it (target n2, owner n1)" \
    jq -e '.replications[0] | .vmid == 100 and .target == "n2" and .owner == "n1"' <<<"$LIST"

# the first sync: full (every allocated block), a task with its log
T0=$(now_ms)
OUT=$(tern_on n3 replication run 100 2>&1); RC=$?
note "first sync: $(( $(now_ms) - T0 )) ms; $(grep -E 'sync of|allocated|MiB sent|committed' <<<"$OUT" | sed 's/^[0-9-]* [0-9:]* //' | tr '\n' '|')"
check "replication run 100: TASK OK" bash -c "[ $RC = 0 ] && [ \"\$(tail -1 <<<\"\$0\")\" = 'TASK OK' ]" "$OUT"
check "  the task log says full, and committed on n2" \
    bash -c "grep -q \"full sync of vm 100 to node 'n2'\" <<<\"\$0\" && grep -q \"committed on node 'n2'\" <<<\"\$0\"" "$OUT"
st() { tern_on n1 replication status 100 --output json | jq -r ".state.$1"; }
FULL=$(st bytes)
check "status: one full sync, $FULL bytes (the 52 MiB allocated, not the 128 MiB disk)" \
    bash -c "[ '$(st syncs)' = 1 ] && [ '$(st full)' = true ] && [ $FULL -ge $((48 * MIB)) ] && [ $FULL -le $((72 * MIB)) ]"
check "  its time, duration, no error" \
    bash -c "[ $(st last_sync_ms) -ge $T0 ] && [ $(st duration_ms) -gt 0 ] && [ -z '$(st error)' ]"
check "the replica is on n2 ($REP)" test -s "$REP"
check "  and the bitmap beside the volume on n1" test -e "$(vol n1).repl-n2"
check "  the data beyond the guest's area is in the replica" \
    bash -c "[ \"\$(dd if='$(vol n1)' bs=1M skip=64 count=48 2>/dev/null | md5sum)\" = \"\$(dd if='$REP' bs=1M skip=64 count=48 2>/dev/null | md5sum)\" ]"

# the guest writes on; the second sync copies only what it wrote
check "the guest writes on" more_disk_ok "$(disk_oks)"
OUT=$(tern_on n1 replication run 100 2>&1); RC=$?
note "second sync: $(grep -E 'sync of|marked|MiB sent|committed' <<<"$OUT" | sed 's/^[0-9-]* [0-9:]* //' | tr '\n' '|')"
check "second run: TASK OK, a delta sync" \
    bash -c "[ $RC = 0 ] && [ \"\$(tail -1 <<<\"\$0\")\" = 'TASK OK' ] && grep -q 'delta sync of vm 100' <<<\"\$0\"" "$OUT"
DELTA=$(st bytes)
check "  the delta ($DELTA bytes) is much smaller than the full sync ($FULL)" \
    bash -c "[ '$(st syncs)' = 2 ] && [ '$(st full)' = false ] && [ $DELTA -gt 0 ] && [ $DELTA -lt $((FULL / 4)) ]"
check "  no side file left on n2" test ! -e "$REP.sync"
check "  no tern-replica left running" bash -c "! pgrep -f -- '[t]ern-replica --listen tcp:$NET' >/dev/null"

# the target's tern-replica killed mid-sync: TASK ERROR, the replica stays
# as it was; tern-vmm gives the bits back, so the next sync is a delta
BEFORE=$(md5sum <"$REP")
VMMLOG=$TMP/n1/data/run/100/vmm.log
HOLDS=$(grep -c "test hold at 'disk-pass'" "$VMMLOG")
TASK=$(tern_on n1 replication run 100 --no-follow 2>&1 | grep -o 'UPID:[^ ]*')
wait_rc 20 0 bash -c "[ \$(grep -c \"test hold at 'disk-pass'\" '$VMMLOG') -gt $HOLDS ]"
pkill -9 -f -- "[t]ern-replica --listen tcp:$(node_ip n2):"
OUT=$(tern_on n1 task log "$TASK" --follow 2>&1)
note "killed: $(grep -E 'sync failed|TASK' <<<"$OUT" | sed 's/^[0-9-]* [0-9:]* //' | tr '\n' '|')"
check "tern-replica killed mid-sync: TASK ERROR" grep -q '^TASK ERROR' <<<"$OUT"
check "  the replica on n2 is as it was (bit for bit)" [ "$(md5sum <"$REP")" = "$BEFORE" ]
check "  the status has the error, the last good sync's figures stay" \
    bash -c "[ -n \"\$0\" ] && [ '$(st syncs)' = 2 ]" "$(st error)"
check "  vm 100 runs on, its disk checker too" more_disk_ok "$(disk_oks)"
# the log's last line comes just before the task is marked ended
task_ended() { tern_on n1 task show "$TASK" --output json | jq -e '.status | startswith("ERROR")' >/dev/null; }
wait_rc 10 0 task_ended
OUT=$(tern_on n1 replication run 100 2>&1); RC=$?
note "after the kill: $(grep -E 'sync of|TASK|tern:' <<<"$OUT" | sed 's/^[0-9-]* [0-9:]* //' | tr '\n' '|')"
check "  the next sync: TASK OK, a delta (the bits were given back; $(st bytes) bytes)" \
    bash -c "[ $RC = 0 ] && grep -q 'delta sync of vm 100' <<<\"\$0\" && [ '$(st syncs)' = 3 ] && [ -z '$(st error)' ]" "$OUT"
check "  the side file the killed one left is gone" test ! -e "$REP.sync"

# the replica is a disk at one point in time: a fresh VM verifies it
cp --sparse=always "$REP" "$TMP/check.img"
start_vm chk --memory 128M --kernel "$GUEST" --disk "path=$TMP/check.img" --cmdline "$CMD"
check "a fresh VM on the replica: DISK verify ok" wait_for "$TMP/chk.console" '^DISK verify ok [1-9]' 30
check "  and no DISK FAIL" bash -c "! grep -q 'DISK FAIL' '$TMP/chk.console'"
ctl chk '{"cmd":"quit"}' >/dev/null; wait_vm chk

# a stopped VM syncs through a tern-vmm built paused: the guest never runs
check_out "vm stop 100" tern_on n1 vm stop 100
check "  the bitmap is saved clean at the stop" \
    wait_for "$TMP/n1/data/run/100/vmm.log" 'replication bitmap saved' 10
OUT=$(tern_on n1 replication run 100 2>&1); RC=$?
note "stopped: $(grep -E 'built paused|sync of|marked|committed|stopped again' <<<"$OUT" | sed 's/^[0-9-]* [0-9:]* //' | tr '\n' '|')"
check "run on the stopped vm: TASK OK, built paused, a delta" \
    bash -c "[ $RC = 0 ] && grep -q 'is stopped: built paused' <<<\"\$0\" && grep -q 'delta sync of vm 100' <<<\"\$0\"" "$OUT"
check "  the guest never ran (no HB on the fresh console)" bash -c "! grep -q '^HB' '$(console_of n1 100)'"
check "  the vm is stopped again" vm_on 100 n1 stopped
check "  4 syncs, no error" bash -c "[ '$(st syncs)' = 4 ] && [ -z '$(st error)' ]"
check "  the replica equals the stopped vm's disk byte for byte" cmp -s "$(vol n1)" "$REP"

# a clean stop saved the bitmap; ternd starts the VM with it (repl=): the
# next sync is a delta again, not full
check_out "vm start 100 again" tern_on n1 vm start 100
check "  tern-vmm got the bitmap (--disk ...,repl=...repl-n2)" \
    grep -q -- "repl=$(vol n1).repl-n2" "/proc/$(cut -d' ' -f1 "$TMP/n1/data/run/100/pid")/cmdline"
check "  the guest writes on (DISK ok, a fresh console)" wait_for "$(console_of n1 100)" '^DISK ok' 60
OUT=$(tern_on n1 replication run 100 2>&1); RC=$?
note "after the restart: $(grep -E 'sync of|marked|committed' <<<"$OUT" | sed 's/^[0-9-]* [0-9:]* //' | tr '\n' '|')"
check "  the sync after the restart is a delta: TASK OK ($(st bytes) bytes)" \
    bash -c "[ $RC = 0 ] && grep -q 'delta sync of vm 100' <<<\"\$0\" && [ '$(st full)' = false ] && [ $(st bytes) -lt $((FULL / 4)) ]" "$OUT"

# a migration to n2, which holds the replica of the last sync: the volume
# there starts as a copy of it and only the blocks written since are mirrored
check "the guest writes on before the migration" more_disk_ok "$(disk_oks)"
OUT=$(tern_on n3 vm migrate 100 n2 --online --with-local-disks --migration-type insecure 2>&1); RC=$?
note "migration: $(grep -E 'holds the replica|disk0: [0-9.]+ MiB copied,|downtime [0-9.]+ ms' <<<"$OUT" | sed 's/^[0-9-]* [0-9:]* //' | tr '\n' '|')"
check "migrate 100 n2 --with-local-disks: TASK OK, starting from the replica" \
    bash -c "[ $RC = 0 ] && [ \"\$(tail -1 <<<\"\$0\")\" = 'TASK OK' ] && grep -q \"node 'n2' holds the replica of the last sync\" <<<\"\$0\"" "$OUT"
COPIED=$(grep -Eo ' disk0: [0-9.]+ MiB copied, synchronous' <<<"$OUT" | grep -Eo '[0-9.]+' | head -1)
check "  it mirrored the delta: ${COPIED:-?} MiB, not the $((FULL >> 20)) MiB of a full copy" \
    bash -c "[ -n '$COPIED' ] && awk -v c='$COPIED' -v f=$((FULL >> 20)) 'BEGIN { exit !(c < f / 4) }'"
check "  vm 100 runs on n2" vm_on 100 n2
check "  its disk checker goes on on n2 (DISK ok, no DISK FAIL)" \
    bash -c "wait_for() { :; }; f='$(console_of n2 100)'; for i in \$(seq 300); do grep -q '^DISK ok' \"\$f\" && break; sleep 0.2; done;
             grep -q '^DISK ok' \"\$f\" && ! grep -q 'DISK FAIL' \"\$f\""
check "  the source volume is gone from n1" wait_rc 10 0 test ! -e "$(vol n1)"
check "  and its bitmap" wait_rc 10 0 test ! -e "$(vol n1).repl-n2"
OUT=$(tern_on n1 replication run 100 2>&1); RC=$?
check "  a sync now is refused: the vm runs on its replication target" \
    bash -c "[ $RC = 1 ] && grep -q \"vm 100 runs on node 'n2', its replication target\" <<<\"\$0\"" "$OUT"

# delete: the replica on n2 and the bitmap on n1 go, and the job
check_out "replication delete 100 (from n1; n2 owns the vm now)" tern_on n1 replication delete 100
check "  no replica on n2, the vm's volume stays" bash -c "[ ! -e '$REP' ] && [ -s '$(vol n2)' ]"
check "  no job" [ "$(tern_on n1 replication list --output json | jq '.replications | length')" = 0 ]
OUT=$(tern_on n1 replication delete 100 2>&1); RC=$?
check "delete again: one line, exit 1" bash -c "[ $RC = 1 ] && grep -q 'vm 100 has no replication' <<<\"\$0\"" "$OUT"
OUT=$(tern_on n1 replication run 100 2>&1); RC=$?
check "run without a job: one line, exit 1" bash -c "[ $RC = 1 ] && grep -q 'vm 100 has no replication' <<<\"\$0\"" "$OUT"

# the schedule: the owner's main loop starts a sync once it is due
check_out "replication create 100 --target n3 --schedule 10s" \
    tern_on n2 replication create 100 --target n3 --schedule 10s
scheduled() { [ "$(tern_on n1 replication status 100 --output json | jq -r '.state.syncs // 0')" -ge 1 ]; }
check "  a sync ran by itself within 40 s" wait_rc 40 0 scheduled
check "  it was a replicate task on n1 that ended OK, its next run 10 s later" \
    bash -c "s=\$('$TERN' --config '$TMP/n1.conf' replication status 100 --output json);
             t=\$(jq -r .state.task <<<\"\$s\"); [ \$(jq '.state.next_run_ms - .state.last_sync_ms' <<<\"\$s\") -le 10000 ] &&
             '$TERN' --config '$TMP/n1.conf' task show \"\$t\" | grep -q 'replicate' &&
             [ -z \"\$(jq -r .state.error <<<\"\$s\")\" ]"
check "  its replica is on n3" test -s "$(vol n3).replica"
# a scheduled sync may be running: a delete waits for it (409 meanwhile)
check "replication delete 100 (n3)" wait_rc 30 0 tern_on n1 replication delete 100
check "  no replica on n3" test ! -e "$(vol n3).replica"
