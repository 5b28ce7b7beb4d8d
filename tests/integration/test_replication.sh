# Incremental replication between a real tern-vmm and a real tern-replica
# over NBD (docs/replication.md): tern-guest writes and verifies its disk
# (`tern.disk`) all along; the first sync is full (the allocated blocks), the
# next copies only the delta; the replica boots a fresh VM to `DISK verify
# ok`; tern-vmm killed -9 in the middle of a sync leaves the previous replica
# as it was, and its unclean stop makes the next sync full; a clean stop
# keeps the bitmap; a stopped VM syncs through `tern-vmm --paused`; a
# migration to a copy of the replica mirrors only the delta; a corrupt
# bitmap file means a full sync; tern-replica killed mid-sync; two disks
# at one point in time; bad requests get one line.
source "$(dirname "$0")/lib.sh"
REPLICA=$BUILD/tern-replica
MIB=$((1 << 20))
CMD="tern.hb=50 tern.disk=4 tern.ws=16 tern.rate=20 tern.verify=1"
IMG=$TMP/src.img
BM=$IMG.repl-n2
REP=$TMP/replica.img

# a 256 MiB image with 32 MiB of data at 128 MiB (beyond the guest's 4 MiB)
truncate -s 256M "$IMG"
dd if=/dev/urandom of="$IMG" bs=1M count=32 seek=128 conv=notrunc 2>/dev/null
region() { dd if="$1" bs=1M skip=128 count=32 2>/dev/null | md5sum | cut -d' ' -f1; }
SUM=$(region "$IMG")

boot() {   # NAME: the source VM on IMG with its bitmap; syncs hold 1.5 s after a pass
    TERN_TEST_HOLD=disk-pass TERN_TEST_HOLD_MS=1500 \
        start_vm "$1" --memory 128M --kernel "$GUEST" --disk "path=$IMG,repl=$BM" --cmdline "$CMD"
    wait_for "$TMP/$1.console" '^DISK ok' 20
}
# receive [--fresh]: a tern-replica for REP in the background (its output in
# $TMP/rep.out, stderr in $TMP/rep.log, its pid in REP_PID)
receive() {
    rm -f "$TMP/rep.out" # the last one's "ready" must not be read before this one starts
    "$REPLICA" --listen "unix:$TMP/rep.nbd" --export "disk0=$REP,size=256M" --timeout-ms 60000 \
        "$@" >"$TMP/rep.out" 2>"$TMP/rep.log" &
    REP_PID=$!
    wait_for "$TMP/rep.out" '^ready' 30 || note "tern-replica not ready after 30 s: $(cat "$TMP/rep.log")"
}
# sync NAME [full]: a repl_sync to its end; the "repl-sync" event in $TMP/NAME.sync
# (a refused request ends it at once; a failed sync is noted with its error)
sync_vm() {
    local full=${2:-false}
    timeout 60 "$CTL" --wait-match '"event":"repl-sync"|"ok":false' --timeout 55 "$TMP/$1.sock" \
        "{\"cmd\":\"repl_sync\",\"uri\":\"unix:$TMP/rep.nbd\",\"full\":$full}" >"$TMP/$1.out"
    grep '"event":"repl-sync"' "$TMP/$1.out" >"$TMP/$1.sync"
    grep -q '"status":"completed"' "$TMP/$1.sync" ||
        note "$1: sync not completed: $(cat "$TMP/$1.out") $(tail -3 "$TMP/$1.log" | tr '\n' ' ')"
}
sfig() { grep -o "\"$2\":\"*[0-9.a-z]*" "$TMP/$1.sync" | head -1 | cut -d: -f2 | tr -d '"'; }
replica_rc() { wait "$REP_PID"; }
replica_failed() { ! wait "$REP_PID"; }
committed() { wait "$REP_PID" && grep -q '^committed' "$TMP/rep.out"; }
status_of() { ctl "$1" '{"cmd":"repl_status"}'; }

# 1. the first sync must be full; a delta is refused
boot a
check "a: no bitmap yet: the next sync is full" grep -q "no bitmap yet: the next sync is full" "$TMP/a.log"
out=$(ctl a "{\"cmd\":\"repl_sync\",\"uri\":\"unix:$TMP/rep.nbd\"}")
check "a: a delta sync without a valid bitmap is refused" \
    grep -q 'disk0 needs a full sync' <<<"$out"
receive --fresh
sync_vm a true
check "full sync completed ($(sfig a bytes) bytes in $(sfig a ms) ms)" [ "$(sfig a status)" = completed ]
check "full sync copied the 36 MiB allocated, not the 256 MiB disk" \
    bash -c "b=$(sfig a bytes); [ \$b -ge $((32 * MIB)) ] && [ \$b -le $((48 * MIB)) ]"
check "tern-replica committed the side file" committed
check "no side file left" [ ! -e "$REP.sync" ]
check "the replica has the data beyond the guest's blocks" [ "$(region "$REP")" = "$SUM" ]
check "holes stay holes in the replica (< 64 MiB allocated of 256)" \
    [ "$(du -k "$REP" | cut -f1)" -lt 65536 ]
FULL=$(sfig a bytes)

# 2. the delta: only what the guest wrote since (its 4 MiB area at most)
wait_for "$TMP/a.console" '^DISK ok' 5
check "status: no full sync needed, dirty bytes counted" \
    grep -q '"full_needed":false' <<<"$(status_of a)"
receive
sync_vm a
DELTA=$(sfig a bytes)
check "delta sync completed ($DELTA bytes in $(sfig a ms) ms)" [ "$(sfig a status)" = completed ]
# the delta: the blocks marked since the last sync (at most the guest's
# 4 MiB area); the copy also resends what the guest rewrote meanwhile
check "delta sync: $(sfig a total) bytes were marked, at most the guest's 4 MiB" \
    bash -c "t=$(sfig a total); [ \$t -gt 0 ] && [ \$t -le $((4 * MIB)) ]"
check "delta sync copied the delta ($DELTA bytes), not the $FULL of a full one" \
    bash -c "[ $DELTA -gt 0 ] && [ $DELTA -lt $((FULL / 4)) ]"
check "tern-replica committed the delta" replica_rc
check "status: 2 syncs, the last one completed" \
    bash -c "s='$(status_of a)'; grep -q '\"syncs\":2' <<<\"\$s\" && grep -q '\"status\":\"completed\"' <<<\"\$s\""

# 3. the replica is a disk at one point in time: a fresh VM verifies it
cp --sparse=always "$REP" "$TMP/check.img"
start_vm chk --memory 128M --kernel "$GUEST" --disk "path=$TMP/check.img" --cmdline "$CMD"
check "a fresh VM on the replica: DISK verify ok" \
    wait_for "$TMP/chk.console" '^DISK verify ok [1-9]' 20
check "  and no DISK FAIL" bash -c "! grep -q 'DISK FAIL' '$TMP/chk.console'"
ctl chk '{"cmd":"quit"}' >/dev/null; wait_vm chk

# 4. tern-vmm killed -9 in the middle of a sync: the previous replica stays
BEFORE=$(md5sum <"$REP")
receive
holds=$(grep -c "test hold at 'disk-pass'" "$TMP/a.log")
ctl a "{\"cmd\":\"repl_sync\",\"uri\":\"unix:$TMP/rep.nbd\"}" >/dev/null
wait_rc 10 0 bash -c "[ \$(grep -c \"test hold at 'disk-pass'\" '$TMP/a.log') -gt $holds ]"
kill -9 "${VM_PID[a]}"; wait_vm a
check "killed mid-sync: tern-replica does not commit (exit 1)" replica_failed
check "  it says why" grep -q 'sync not committed, the replica stays as it was' "$TMP/rep.log"
check "  the side file is removed" [ ! -e "$REP.sync" ]
check "  the previous replica is intact" [ "$(md5sum <"$REP")" = "$BEFORE" ]

# 5. after the unclean stop the next sync is full
boot b
check "unclean stop: the bitmap is not valid" grep -q "not saved cleanly.*the next sync is full" "$TMP/b.log"
check "  status says full_needed" grep -q '"full_needed":true' <<<"$(status_of b)"
check "  a delta sync is refused" \
    grep -q 'needs a full sync' <<<"$(ctl b "{\"cmd\":\"repl_sync\",\"uri\":\"unix:$TMP/rep.nbd\"}")"
receive --fresh
sync_vm b true
check "  the full sync copies everything again ($(sfig b bytes) bytes)" \
    bash -c "[ '$(sfig b status)' = completed ] && [ $(sfig b bytes) -ge $((32 * MIB)) ]"
check "  and is committed" replica_rc

# 6. a clean stop keeps the bitmap: the next start syncs a delta
ctl b '{"cmd":"quit"}' >/dev/null; wait_vm b
check "clean stop: the bitmap is saved" grep -q 'replication bitmap saved' "$TMP/b.log"
boot c
check "  after a restart no full sync is needed" grep -q '"full_needed":false' <<<"$(status_of c)"
receive
sync_vm c
check "  the delta sync after the restart is small ($(sfig c total) bytes marked, $(sfig c bytes) sent)" \
    bash -c "[ '$(sfig c status)' = completed ] && [ $(sfig c total) -le $((4 * MIB)) ] && [ $(sfig c bytes) -lt $((FULL / 4)) ]"
check "  and is committed" replica_rc
# quit in the middle of a sync: the sync ends without its disconnect, the
# target keeps its replica, the bits stay in the bitmap saved clean
BEFORE=$(md5sum <"$REP")
receive
holds=$(grep -c "test hold at 'disk-pass'" "$TMP/c.log")
ctl c "{\"cmd\":\"repl_sync\",\"uri\":\"unix:$TMP/rep.nbd\"}" >/dev/null
wait_rc 10 0 bash -c "[ \$(grep -c \"test hold at 'disk-pass'\" '$TMP/c.log') -gt $holds ]"
ctl c '{"cmd":"quit"}' >/dev/null; wait_vm c
check "quit mid-sync: the sync fails, tern-replica does not commit" \
    bash -c "grep -q 'replication sync failed' '$TMP/c.log' && ! grep -q 'sync committed' '$TMP/rep.log'"
check "  tern-replica exits 1" replica_failed
check "  the replica is intact" [ "$(md5sum <"$REP")" = "$BEFORE" ]
check "  the bitmap keeps the bits, saved clean" \
    grep -Eq 'replication bitmap saved \([1-9][0-9]* bytes to sync\)' "$TMP/c.log"

# 7. a stopped VM syncs through tern-vmm --paused: its vCPUs never run
start_vm p --paused --memory 128M --kernel "$GUEST" --disk "path=$IMG,repl=$BM" --cmdline "$CMD"
wait_socket p
receive
sync_vm p
check "stopped VM: a delta sync through --paused ($(sfig p total) bytes marked, $(sfig p bytes) sent)" \
    bash -c "[ '$(sfig p status)' = completed ] && [ $(sfig p total) -le $((4 * MIB)) ]"
check "  committed" replica_rc
ctl p '{"cmd":"quit"}' >/dev/null; wait_vm p
check "  the guest never ran" bash -c "! grep -q '^HB' '$TMP/p.console'"
check "  the bitmap is saved clean, with nothing to sync" \
    grep -q 'replication bitmap saved (0 bytes to sync)' "$TMP/p.log"
cp --sparse=always "$REP" "$TMP/check.img"
start_vm chk2 --memory 128M --kernel "$GUEST" --disk "path=$TMP/check.img" --cmdline "$CMD"
check "  the replica verifies: DISK verify ok" wait_for "$TMP/chk2.console" '^DISK verify ok [1-9]' 20
ctl chk2 '{"cmd":"quit"}' >/dev/null; wait_vm chk2

# 8. a migration to a node holding the replica of the last sync mirrors
# only the delta: the destination's volume is a copy of the replica
boot mg
cp --sparse=always "$REP" "$TMP/mg-d.img"
start_dst mg-d "unix:$TMP/mg-d.mig" --disk "path=$TMP/mg-d.img" --nbd-listen "unix:$TMP/mg-d.nbd"
migrate mg "unix:$TMP/mg-d.mig" ",\"nbd\":\"unix:$TMP/mg-d.nbd\",\"nbd_delta\":true"
mfig() { grep -o '"disks":\[[^]]*\]' "$TMP/mg.migration" | grep -o "\"$1\":[0-9]*" | cut -d: -f2; }
check "delta migration completed (total $(fig mg total_ms) ms, downtime $(fig mg downtime_ms) ms)" \
    [ "$MIG" = completed ]
check "  it mirrored the delta: $(mfig total) bytes marked, $(mfig copied) copied (a full one: $FULL)" \
    bash -c "[ $(mfig total) -le $((4 * MIB)) ] && [ $(mfig copied) -lt $((FULL / 4)) ]"
check "  DISK ok continues on the destination" wait_for "$TMP/mg-d.console" '^DISK ok' 20
check "  no DISK FAIL on either side" bash -c "! grep -q 'DISK FAIL' '$TMP/mg.console' '$TMP/mg-d.console'"
check "  the data beyond the guest's blocks is there" [ "$(region "$TMP/mg-d.img")" = "$SUM" ]
wait_vm mg
check "  the source's bitmap is left not clean (the disk lives on elsewhere)" \
    bash -c "! grep -q 'replication bitmap saved' '$TMP/mg.log'"
ctl mg-d '{"cmd":"quit"}' >/dev/null; wait_vm mg-d

# 9. a corrupt bitmap file: one line naming it, the next sync is full
printf '\x01' | dd of="$BM" bs=1 seek=70 conv=notrunc 2>/dev/null
boot d
check "corrupt bitmap: one line naming the file" \
    grep -q "replication bitmap '$BM': bitmap checksum mismatch: the next sync is full" "$TMP/d.log"
check "  the VM runs on" grep -q '"state":"running"' <<<"$(ctl d '{"cmd":"status"}')"
truncate -s 256M "$TMP/dd.img"
start_dst dd "unix:$TMP/dd.mig" --disk "path=$TMP/dd.img" --nbd-listen "unix:$TMP/dd.nbd"
migrate d "unix:$TMP/dd.mig" ",\"nbd\":\"unix:$TMP/dd.nbd\",\"nbd_delta\":true"
check "  a delta migration without a valid bitmap fails" \
    bash -c "[ '$MIG' = failed ] && grep -q 'no valid replication bitmap' '$TMP/d.migration'"
check "  and the VM runs on" grep -q '"state":"running"' <<<"$(ctl d '{"cmd":"status"}')"
wait_vm dd

# 10. bad input: one line each, nothing changes
check "repl_sync with an unknown parameter is refused" \
    grep -q "unknown parameter 'frob'" <<<"$(ctl d '{"cmd":"repl_sync","uri":"unix:/x","frob":1}')"
check "repl_sync to a target that is not there fails, the VM runs on" \
    bash -c "timeout 20 '$CTL' --wait-event repl-sync --timeout 15 '$TMP/d.sock' \
        '{\"cmd\":\"repl_sync\",\"uri\":\"unix:$TMP/nobody.nbd\",\"full\":true}' | grep -q '\"status\":\"failed\"'"
check "  and the bits stay for the next sync" grep -q '"full_needed":true' <<<"$(status_of d)"
ctl d '{"cmd":"quit"}' >/dev/null; wait_vm d
"$VMM" --kernel "$GUEST" --disk "path=$IMG,repl=relative" 2>"$TMP/bad.log"
check "a relative bitmap path is refused" grep -q "bad key or value 'repl'" "$TMP/bad.log"
IMGSUM=$(md5sum <"$IMG")
ln -s "$IMG" "$TMP/alias.img"
"$VMM" --kernel "$GUEST" --disk "path=$IMG,repl=$TMP/alias.img" 2>"$TMP/bad.log"
check "a bitmap file that is the disk's image is refused, the image untouched" \
    bash -c "grep -q \"replication bitmap '$TMP/alias.img' is the image of disk0\" '$TMP/bad.log' &&
             [ '$(md5sum <"$IMG")' = '$IMGSUM' ]"
truncate -s 16M "$TMP/two.img"
"$VMM" --kernel "$GUEST" --disk "path=$IMG,repl=$TMP/same.bm" --disk "path=$TMP/two.img,repl=$TMP/same.bm" \
    2>"$TMP/bad.log"
check "one bitmap file for two disks is refused" grep -q "disk0: replication bitmap '$TMP/same.bm' is disk1's too" "$TMP/bad.log"
"$REPLICA" --listen "unix:$TMP/x.nbd" --export "disk0=$TMP/none.img" 2>"$TMP/bad.log"
check "tern-replica without a replica or its size: one line" \
    grep -q "no replica yet: its size is needed" "$TMP/bad.log"

# 11. tern-replica killed -9 in the middle of a sync: the VM runs on, its
# bits stay (no full sync needed), the replica is intact, and the next sync
# replaces the stale side file
boot k
receive --fresh
sync_vm k true
replica_rc
BEFORE=$(md5sum <"$REP")
receive
holds=$(grep -c "test hold at 'disk-pass'" "$TMP/k.log")
ctl k "{\"cmd\":\"repl_sync\",\"uri\":\"unix:$TMP/rep.nbd\"}" >/dev/null
wait_rc 10 0 bash -c "[ \$(grep -c \"test hold at 'disk-pass'\" '$TMP/k.log') -gt $holds ]"
kill -9 "$REP_PID"; wait "$REP_PID" 2>/dev/null
wait_rc 20 0 bash -c "grep -q 'replication sync failed' '$TMP/k.log'"
check "tern-replica killed mid-sync: the sync fails, the VM runs on" \
    bash -c "[ $RC = 0 ] && grep -q '\"state\":\"running\"' <<<'$(ctl k '{"cmd":"status"}')'"
check "  the bits stay: no full sync needed" grep -q '"full_needed":false' <<<"$(status_of k)"
check "  the replica is intact (a stale side file beside it)" \
    bash -c "[ '$(md5sum <"$REP")' = '$BEFORE' ] && [ -e '$REP.sync' ]"
receive
sync_vm k
check "  the next delta sync replaces the stale side file and commits" \
    bash -c "[ '$(sfig k status)' = completed ] && [ $(sfig k total) -le $((4 * MIB)) ]"
check "  committed" committed
ctl k '{"cmd":"quit"}' >/dev/null; wait_vm k

# 12. two disks: one point in time for both, one tern-replica with two exports
truncate -s 64M "$TMP/m0.img" "$TMP/m1.img"
dd if=/dev/urandom of="$TMP/m1.img" bs=1M count=8 seek=16 conv=notrunc 2>/dev/null
start_vm m2 --memory 128M --kernel "$GUEST" --disk "path=$TMP/m0.img,repl=$TMP/m0.bm" \
    --disk "path=$TMP/m1.img,repl=$TMP/m1.bm" --cmdline "$CMD"
wait_for "$TMP/m2.console" '^DISK ok' 20
rm -f "$TMP/rep.out"
"$REPLICA" --listen "unix:$TMP/m2.nbd" --export "disk0=$TMP/m0.rep,size=64M" \
    --export "disk1=$TMP/m1.rep,size=64M" --fresh >"$TMP/rep.out" 2>"$TMP/rep.log" &
REP_PID=$!
wait_for "$TMP/rep.out" '^ready' 30
timeout 60 "$CTL" --wait-match '"event":"repl-sync"|"ok":false' --timeout 55 "$TMP/m2.sock" \
    "{\"cmd\":\"repl_sync\",\"uri\":\"unix:$TMP/m2.nbd\",\"full\":true}" >"$TMP/m2.sync"
check "two disks: the sync covers both" \
    bash -c "grep -q '\"status\":\"completed\"' '$TMP/m2.sync' && grep -q '\"disk\":\"disk1\"' '$TMP/m2.sync'"
check "  both replicas committed together" committed
check "  disk1's data is in its replica" \
    [ "$(dd if="$TMP/m1.img" bs=1M skip=16 count=8 2>/dev/null | md5sum)" = \
      "$(dd if="$TMP/m1.rep" bs=1M skip=16 count=8 2>/dev/null | md5sum)" ]
ctl m2 '{"cmd":"quit"}' >/dev/null; wait_vm m2

# 13. a running VM's disk becomes replicated (repl_attach: its first sync is
# full) and stops being so (repl_detach: the bitmap file goes)
start_vm at --memory 128M --kernel "$GUEST" --disk "path=$TMP/m0.img" --cmdline "$CMD"
wait_for "$TMP/at.console" '^DISK ok' 20
check "repl_attach of a disk the VM lacks is refused" \
    grep -q 'repl_attach: the vm has no disk5' <<<"$(ctl at '{"cmd":"repl_attach","disk":5,"bitmap":"/x"}')"
check "repl_attach with a relative path is refused" \
    grep -q "repl_attach: 'bitmap' must be an absolute path" \
    <<<"$(ctl at '{"cmd":"repl_attach","disk":0,"bitmap":"x.bm"}')"
check "repl_attach of a running VM's disk: its first sync is full (its file said clean)" \
    bash -c "grep -q '\"ok\":true' <<<'$(ctl at "{\"cmd\":\"repl_attach\",\"disk\":0,\"bitmap\":\"$TMP/m0.bm\"}")' &&
             grep -q '\"full_needed\":true' <<<'$(status_of at)'"
check "  a second repl_attach is refused" \
    grep -q 'disk0 is replicated already' \
    <<<"$(ctl at "{\"cmd\":\"repl_attach\",\"disk\":0,\"bitmap\":\"$TMP/m0.bm\"}")"
rm -f "$TMP/rep.out"
"$REPLICA" --listen "unix:$TMP/at.nbd" --export "disk0=$TMP/m0.rep,size=64M" --fresh \
    >"$TMP/rep.out" 2>"$TMP/rep.log" &
REP_PID=$!
wait_for "$TMP/rep.out" '^ready' 30
timeout 60 "$CTL" --wait-match '"event":"repl-sync"|"ok":false' --timeout 55 "$TMP/at.sock" \
    "{\"cmd\":\"repl_sync\",\"uri\":\"unix:$TMP/at.nbd\",\"full\":true}" >"$TMP/at.sync"
at_synced() { grep -q '"status":"completed"' "$TMP/at.sync" && committed; }
check "  the full sync completes and is committed" at_synced
check "repl_detach: the bitmap file goes, nothing is replicated" \
    bash -c "grep -q '\"ok\":true' <<<'$(ctl at '{"cmd":"repl_detach","disk":0}')' && [ ! -e '$TMP/m0.bm' ] &&
             grep -q 'no disk of this vm is replicated' <<<'$(ctl at '{"cmd":"repl_sync","uri":"unix:/x"}')'"
ctl at '{"cmd":"quit"}' >/dev/null; wait_vm at
check "  a clean stop after it writes no bitmap" [ ! -e "$TMP/m0.bm" ]
