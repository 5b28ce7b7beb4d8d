# Local disks in a three-node cluster: a storage whose path holds {node}
# (each node its own directory), a VM on it running tern-guest's disk and
# page checkers; migrate refused without --with-local-disks (reason and
# hint), the dry run's bytes per disk, then `tern vm migrate 100 n2 --online
# --with-local-disks` with the per-disk task log; the target's or the
# source's tern-vmm killed and a cancel mid-mirror: the VM runs on the
# source with its disk, and no volume is left behind on the target.
NET=127.0.0.19   # 127.0.0.191-193 (test_ha has 127.0.0.7x)
# every source holds 2 s after each pass of its mirror: room for the faults
export TERN_TEST_HOLD=disk-pass TERN_TEST_HOLD_MS=2000
. tests/integration/cluster_lib.sh

check "cluster of three" cluster_up disks
check "storage add local --path '$TMP/{node}/images' (not shared)" \
    tern_on n1 storage add local --path "$TMP/{node}/images"
vol() { echo "$TMP/$1/images/vm-100-disk-0.raw"; }
check_out "vm create 100 on local:64" tern_on n1 vm create 100 --memory 128 --cpus 1 --kernel "$GUEST" \
    --cmdline "tern.hb=50 tern.disk=4 tern.ws=16 tern.rate=20 tern.verify=1" --disk local:64
check "the volume is in n1's own directory ({node} expanded)" test -f "$(vol n1)"
# 16 MiB of data beyond the guest's blocks, for the bulk copy
dd if=/dev/urandom of="$(vol n1)" bs=1M count=16 seek=32 conv=notrunc 2>/dev/null
SUM=$(dd if="$(vol n1)" bs=1M skip=32 count=16 2>/dev/null | md5sum)
check_out "vm start 100" tern_on n1 vm start 100
check "vm 100 runs on n1 and verifies" runs_and_verifies 100 n1
disk_ok_on() {   # NODE: a new DISK ok on the VM's console there, no DISK FAIL
    local f n
    f=$(console_of "$1" 100)
    n=$(grep -c '^DISK ok' "$f" 2>/dev/null)
    wait_rc 30 0 bash -c "! grep -q 'DISK FAIL' '$f' && [ \$(grep -c '^DISK ok' '$f') -gt ${n:-0} ]"
}
check "vm 100 writes and verifies its disk on n1" disk_ok_on n1

OUT=$(tern_on n1 vm migrate 100 n2 --online 2>&1); RC=$?
check "refused without --with-local-disks: one line, exit 1, the reason and the hint" \
    bash -c "[ $RC = 1 ] && [ \$(wc -l <<<\"\$0\") = 1 ] &&
             grep -q \"vm 100: disk0 is on storage 'local', which is not shared: add --with-local-disks to copy it to node 'n2'\" <<<\"\$0\"" "$OUT"
OUT=$(tern_on n1 vm migrate 100 n2 --online --with-local-disks --dry-run 2>&1); RC=$?
note "$(grep -E 'disk0|local disk' <<<"$OUT" | tr '\n' ' ')"
check "dry run: exit 0, the bytes disk0 will copy (allocated only) and the plan" \
    bash -c "[ $RC = 0 ] && grep -Eq \"disk0 on 'local': (1[6-9]|20)\.[0-9] MiB allocated of 64 MiB\" <<<\"\$0\" &&
             grep -q 'local disk(s) mirrored over nbd first' <<<\"\$0\"" "$OUT"
check "dry run: nothing moved, no volume on n2" bash -c "vm_on() { :; }; [ ! -e '$(vol n2)' ]"

# the live migration with its disk, secure (the default): NBD over STARTTLS
OUT=$(tern_on n3 vm migrate 100 n2 --online --with-local-disks 2>&1); RC=$?
echo "$OUT" >"$TMP/migrate-n1-n2.log"
check "migrate 100 n2 --online --with-local-disks: TASK OK" \
    bash -c "[ $RC = 0 ] && [ \"\$(tail -1 <<<\"\$0\")\" = 'TASK OK' ]" "$OUT"
note "$(grep -E 'disk0|disks in the downtime|downtime [0-9.]+ ms' <<<"$OUT" | sed 's/^[0-9-]* [0-9:]* //' | tr '\n' '|')"
check "task log: disk0 progress (MiB of MiB, rate, eta)" \
    grep -Eq ' disk0: [0-9.]+ of [0-9.]+ MiB copied, [0-9.]+ MiB/s, eta [0-9]+ s, pass [0-9]+$' <<<"$OUT"
check "task log: when disk0 became synchronous" grep -q ' disk0: synchronous after ' <<<"$OUT"
check "task log: disk0's summary and the disks' share of the downtime" \
    bash -c "grep -Eq ' disk0: [0-9.]+ MiB copied, synchronous after' <<<\"\$0\" && grep -q ' disks in the downtime: ' <<<\"\$0\"" "$OUT"
check "vm 100 runs on n2 and verifies" runs_and_verifies 100 n2
check "its disk checker goes on on n2 (DISK ok)" disk_ok_on n2
check "the data beyond the guest's blocks is on n2's volume" \
    bash -c "[ \"\$(dd if='$(vol n2)' bs=1M skip=32 count=16 2>/dev/null | md5sum)\" = '$SUM' ]"
check "the source volume on n1 is removed after the commit" wait_rc 5 0 test ! -e "$(vol n1)"
check "one tern-vmm for vm 100" [ "$(vmm_count 100)" = 1 ]
check "secure: n2's nbd server required tls (and the mirror got through)" \
    grep -q 'nbd.*serving 1 export(s) (tls required)' "$TMP/n2/data/run/100/vmm.log"

# faults mid-mirror, from n2 to n3: the VM stays on n2, no volume on n3
mirror_to_n3() {   # $TASK: a migration held after the first pass of its mirror
    TASK=$(tern_on n2 vm migrate 100 n3 --online --with-local-disks --migration-type insecure \
           --no-follow 2>&1 | grep -o 'UPID:[^ ]*')
    wait_for "$TMP/n2/data/run/100/vmm.log" "test hold at 'disk-pass'" 20
    sleep 0.2
    test -e "$(vol n3)" && ok "$1: the target volume exists on n3 during the mirror" ||
        not_ok "$1: the target volume exists on n3 during the mirror"
}
after_fault() {   # NAME
    check "$1: TASK ERROR ($(tail -1 <<<"$OUT"))" grep -q '^TASK ERROR' <<<"$OUT"
    check "$1: vm 100 runs on n2 and verifies" runs_and_verifies 100 n2
    check "$1: its disk checker is fine on n2" disk_ok_on n2
    check "$1: the source volume is untouched (there)" test -s "$(vol n2)"
    check "$1: no orphan volume on n3" wait_rc 15 0 test ! -e "$(vol n3)"
    check "$1: one tern-vmm for vm 100" [ "$(vmm_count 100)" = 1 ]
}
: >"$TMP/n2/data/run/100/vmm.log"
mirror_to_n3 "kill target"
kill -9 "$(cut -d' ' -f1 "$TMP/n3/data/run/100/pid")"
wait_rc 60 1 tern_on n2 task log "$TASK" --follow
after_fault "target tern-vmm killed mid-mirror"

: >"$TMP/n2/data/run/100/vmm.log"
mirror_to_n3 "cancel"
tern_on n1 task cancel "$TASK" >/dev/null
wait_rc 60 1 tern_on n2 task log "$TASK" --follow
check "cancel: the task says cancelled" grep -q 'TASK ERROR: migration cancelled' <<<"$OUT"
after_fault "cancelled mid-mirror"

: >"$TMP/n2/data/run/100/vmm.log"
mirror_to_n3 "kill source"
OLD=$(cut -d' ' -f1 "$TMP/n2/data/run/100/pid")
kill -9 "$OLD"
wait_rc 60 1 tern_on n2 task log "$TASK" --follow
check "source tern-vmm killed mid-mirror: TASK ERROR" grep -q '^TASK ERROR' <<<"$OUT"
check "  vm 100 stays on n2, stopped (no restart while it was migrating)" vm_on 100 n2 stopped
check "  no orphan volume on n3" wait_rc 15 0 test ! -e "$(vol n3)"
check "  its volume is on n2" test -s "$(vol n2)"
check_out "  vm start 100 (on n2)" tern_on n2 vm start 100
check "  the guest finds its blocks of before (DISK verify ok)" \
    wait_for "$(console_of n2 100)" '^DISK verify ok [1-9][0-9]* blocks boot=2' 30
check "  and writes on (DISK ok)" disk_ok_on n2
check "  one tern-vmm for vm 100" [ "$(vmm_count 100)" = 1 ]

# offline: the stopped VM's local disk goes to n3 (built paused, never run)
check_out "vm stop 100" tern_on n1 vm stop 100
OUT=$(tern_on n1 vm migrate 100 n3 --with-local-disks --migration-type insecure --dry-run 2>&1); RC=$?
check "offline dry run: the plan says how" \
    bash -c "[ $RC = 0 ] && grep -q 'local disk(s) are copied by a migration of the vm built paused' <<<\"\$0\"" "$OUT"
OUT=$(tern_on n1 vm migrate 100 n3 --with-local-disks --migration-type insecure 2>&1); RC=$?
note "$(grep -E 'disk0: [0-9.]+ MiB copied|stopped on node' <<<"$OUT" | sed 's/^[0-9-]* [0-9:]* //' | tr '\n' '|')"
check "offline migration with local disks: TASK OK" \
    bash -c "[ $RC = 0 ] && [ \"\$(tail -1 <<<\"\$0\")\" = 'TASK OK' ]" "$OUT"
check "  vm 100 is stopped on n3" vm_on 100 n3 stopped
check "  the volume moved: on n3, not on n2" bash -c "[ -s '$(vol n3)' ] && [ ! -e '$(vol n2)' ]"
check "  the guest never ran on the way (no heartbeat on n2 after the stop, none on n3)" \
    bash -c "! grep -q '^HB' '$(console_of n3 100)' 2>/dev/null"
check "  no tern-vmm for vm 100" [ "$(vmm_count 100)" = 0 ]
check_out "vm start 100 (on n3)" tern_on n1 vm start 100
check "  the guest finds its blocks (DISK verify ok, boot 3)" \
    wait_for "$(console_of n3 100)" '^DISK verify ok [1-9][0-9]* blocks boot=3' 30
OUT=$(tern_on n1 vm migrate 100 n2 --online --with-local-disks --migration-type insecure 2>&1)
check "and back to n2 live: TASK OK" bash -c "[ \"\$(tail -1 <<<\"\$0\")\" = 'TASK OK' ]" "$OUT"

# move-disk: the running VM's disk to a shared storage, then (stopped) back
mkdir -p "$TMP/nas2"
tern_on n1 storage add nas2 --path "$TMP/nas2" --shared >/dev/null
OUT=$(tern_on n1 vm move-disk 100 disk0 nas2 --delete-source 2>&1); RC=$?
note "$(grep -E 'copied|switched' <<<"$OUT" | sed 's/^[0-9-]* [0-9:]* //' | tr '\n' '|')"
check "move-disk 100 disk0 nas2 (running): TASK OK" \
    bash -c "[ $RC = 0 ] && [ \"\$(tail -1 <<<\"\$0\")\" = 'TASK OK' ]" "$OUT"
check "  switched between two requests: writes waited < 50 ms" \
    bash -c "ms=\$(grep -o 'writes waited [0-9.]* ms' <<<\"\$0\" | grep -o '[0-9.]*'); awk \"BEGIN { exit !(\$ms < 50) }\"" "$OUT"
check "  the config names nas2" bash -c "[ \"\$($TERN --config $TMP/n3.conf vm show 100 --output json | jq -r '.config.disks[0].storage')\" = nas2 ]"
check "  the new volume is there, the old one removed (--delete-source)" \
    bash -c "[ -s '$TMP/nas2/vm-100-disk-0.raw' ] && [ ! -e '$(vol n2)' ]"
check "  the guest goes on writing and verifying (DISK ok)" disk_ok_on n2
check "  and its pages (VERIFY ok)" verify_on n2 100
OUT=$(tern_on n1 vm move-disk 100 disk3 local 2>&1); RC=$?
check "move-disk: a disk the vm lacks is refused (TASK ERROR naming it)" \
    bash -c "[ $RC = 1 ] && grep -q 'vm 100 has no disk3' <<<\"\$0\"" "$OUT"
OUT=$(tern_on n1 vm move-disk 100 disk9 local 2>&1); RC=$?
check "move-disk: disk9 is a usage error (exit 2)" bash -c "[ $RC = 2 ] && grep -q \"bad disk 'disk9'\" <<<\"\$0\"" "$OUT"
check_out "vm stop 100" tern_on n1 vm stop 100
OUT=$(tern_on n1 vm move-disk 100 disk0 local 2>&1); RC=$?
check "move-disk of the stopped vm back to local: TASK OK, copied" \
    bash -c "[ $RC = 0 ] && grep -q 'MiB copied (the vm is stopped)' <<<\"\$0\"" "$OUT"
check "  the old volume kept without --delete-source" test -s "$TMP/nas2/vm-100-disk-0.raw"
check_out "vm start 100" tern_on n1 vm start 100
check "  the guest finds its blocks (DISK verify ok, boot 4)" \
    wait_for "$(console_of n2 100)" '^DISK verify ok [1-9][0-9]* blocks boot=4' 30
