#!/bin/bash
# make bench-disk: how fast tern copies a local disk, beside the limits of
# this machine and qemu-img / nbdcopy on the same image. A 1 GiB image with
# 512 MiB of data (the rest holes); tern-guest does not write the disk, so
# each figure is the bulk copy. Prints one line per system; not part of
# `make check`.
#   tern mirror   a live migration of a paused VM over NBD on 127.0.0.1
#                 (tern-vmm's mirror, libnbd client, tern-vmm's NBD server),
#                 16 writes in flight (the default)
#   tern mirror w1  the same with one write at a time (TERN_NBD_WINDOW=1)
#   tern move     move_disk into another file of the host (no NBD)
#   qemu-img      qemu-img convert of the same image into a fresh file
#   nbdcopy       libnbd's nbdcopy into a qemu-nbd export of a fresh file
#   QEMU mirror   QEMU's drive-mirror (sync=full) into a QEMU NBD export
#                 (bench/qemu_mirror.py), timed to BLOCK_JOB_READY; then
#                 tern/QEMU, the time ratio against "tern mirror"
#   file write    dd of the data with fsync: the target's write limit
#   sync full/delta, tern delta   replication: a full sync, a delta sync, and
#                 a migration into a copy of the replica (docs/replication.md)
set -uo pipefail
cd "$(dirname "$0")/.."
source tests/integration/lib.sh
MIB=$((1 << 20))
DATA_MIB=${DATA_MIB:-512}

mkimg() { truncate -s 1G "$1"; }
mkimg "$TMP/src.img"
dd if=/dev/urandom of="$TMP/src.img" bs=4M count=$((DATA_MIB / 4)) seek=16 conv=notrunc 2>/dev/null
sync
rate() { awk -v b="$1" -v ms="$2" 'BEGIN { printf "%8.1f MiB/s  (%d MiB in %.0f ms)", b / 1048576 / (ms / 1000), b / 1048576, ms }'; }
line() { printf '%-12s %s\n' "$1" "$2"; }
drop() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }

# the limit: the data written to a fresh file with fsync
drop
t0=$(now_ms)
dd if="$TMP/src.img" of="$TMP/dd.img" bs=4M skip=16 count=$((DATA_MIB / 4)) conv=fsync 2>/dev/null
line "file write" "$(rate $((DATA_MIB * MIB)) $(( $(now_ms) - t0 )))"
rm -f "$TMP/dd.img"

drop
t0=$(now_ms)
qemu-img convert -f raw -O raw "$TMP/src.img" "$TMP/qi.img" && sync
line "qemu-img" "$(rate $((DATA_MIB * MIB)) $(( $(now_ms) - t0 )))"
rm -f "$TMP/qi.img"

mkimg "$TMP/qn.img"
qemu-nbd --persistent -x disk0 --socket="$TMP/q.nbd" -f raw "$TMP/qn.img" 2>/dev/null &
QPID=$!
wait_rc 10 0 test -S "$TMP/q.nbd"
drop
t0=$(now_ms)
nbdcopy "$TMP/src.img" "nbd+unix:///disk0?socket=$TMP/q.nbd" --flush
line "nbdcopy" "$(rate $((DATA_MIB * MIB)) $(( $(now_ms) - t0 )))"
kill $QPID; wait $QPID 2>/dev/null; rm -f "$TMP/qn.img"

# tern's mirror inside a live migration (the VM paused: no guest writes);
# tern_mirror LABEL WINDOW: TERN_NBD_WINDOW writes in flight (1: one at a
# time, as before the window)
num() { grep -o "\"$1\":[0-9.]*" <<<"$DISK" | cut -d: -f2; }
tern_mirror() {
    drop
    rm -f "$TMP/dst.img"; mkimg "$TMP/dst.img"
    TERN_NBD_WINDOW=$2 start_vm src --memory 128M --kernel "$GUEST" --disk "path=$TMP/src.img" \
        --paused --cmdline tern.hb=1000
    wait_socket src
    PORT=$(rand_port)
    start_dst dst "unix:$TMP/dst.mig" --disk "path=$TMP/dst.img" --nbd-listen "tcp:127.0.0.1:$PORT"
    migrate src "unix:$TMP/dst.mig" ",\"nbd\":\"tcp:127.0.0.1:$PORT\""
    DISK=$(grep -o '"disks":\[[^]]*\]' "$TMP/src.migration")
    FULL_MS=$(fig src total_ms) FULL_COPIED=$(num copied) # the last: the default, for "tern delta"
    TERN_MS=$(num sync_ms) TERN_BYTES=$(num copied)        # and for "tern/QEMU"
    line "$1" "$(rate "$(num copied)" "$(num sync_ms)")  [$MIG, downtime $(fig src downtime_ms) ms, disks $(fig src disks_ms) ms]"
    cmp -s "$TMP/src.img" "$TMP/dst.img" && note "$1: target equals source (cmp)" || note "$1: target DIFFERS"
    ctl dst '{"cmd":"quit"}' >/dev/null; wait_vm dst; wait_vm src
}
tern_mirror "tern mirror w1" 1
tern_mirror "tern mirror" 16

# QEMU's drive-mirror of the same image into a QEMU NBD export of a fresh
# file of the same size (bench/qemu_mirror.py: both QEMUs stopped, as tern's
# VM is paused), timed to BLOCK_JOB_READY; its rate counts the same data
# bytes as tern's line (the job's len covers the whole image, holes too)
drop
rm -f "$TMP/dst.img"; mkimg "$TMP/dst.img"
if Q=$(python3 bench/qemu_mirror.py "$GUEST" "$TMP/src.img" "$TMP/dst.img" "$(rand_port)" "$TMP"); then
    qv() { grep -o "$1=[0-9]*" <<<"$Q" | cut -d= -f2; }
    line "QEMU mirror" "$(rate $((DATA_MIB * MIB)) "$(qv ready_ms)")  [drive-mirror to READY, job len $(($(qv len) / MIB)) MiB, cancel done at $(qv cancel_ms) ms]"
    cmp -s "$TMP/src.img" "$TMP/dst.img" && note "QEMU mirror: target equals source (cmp)" || note "QEMU mirror: target DIFFERS"
    line "tern/QEMU" "$(awk -v t="$TERN_MS" -v q="$(qv ready_ms)" -v tb="$TERN_BYTES" 'BEGIN { printf "%.2fx the time (tern mirror %.0f ms for %.0f MiB, QEMU %.0f ms to READY): below 1.00x tern is faster", t / q, t, tb / 1048576, q }')"
else
    line "QEMU mirror" "failed (logs: $TMP/qsrc.log, $TMP/qdst.log)"
fi

# tern's move into a file of the host
drop
mkimg "$TMP/moved.img"
start_vm mv --memory 128M --kernel "$GUEST" --disk "path=$TMP/dst.img" --paused --cmdline tern.hb=1000
wait_socket mv
# the event's keys come in either order: match both
"$CTL" --wait-match '"event":"move-disk".*"status":"(completed|failed)"|"status":"(completed|failed)".*"event":"move-disk"' --timeout 120 "$TMP/mv.sock" \
    "{\"cmd\":\"move_disk\",\"disk\":0,\"path\":\"$TMP/moved.img\"}" >"$TMP/mv.events" 2>&1
EV=$(grep '"status":"completed"' "$TMP/mv.events" | tail -1)
DISK=$EV
line "tern move" "$(rate "$(num copied)" "$(num sync_ms)")  [switch $(num switch_ms) ms]"
ctl mv '{"cmd":"quit"}' >/dev/null; wait_vm mv

# replication (docs/replication.md): a full sync of the same image into a
# tern-replica, then the guest writes its first 16 MiB and a delta sync goes;
# then a migration into a copy of the replica that mirrors only the delta
# (nbd_delta), beside "tern mirror" above (the full copy)
receive() {
    rm -f "$TMP/rep.out"
    build/tern-replica --listen "unix:$TMP/rep.nbd" --export "disk0=$TMP/rep.img,size=1G" "$@" \
        >"$TMP/rep.out" 2>"$TMP/rep.log" &
    RPID=$!
    wait_for "$TMP/rep.out" '^ready' 60
}
sync_vm() {   # NAME FULL: the sync's end event in $TMP/NAME.sync
    "$CTL" --wait-event repl-sync --timeout 300 "$TMP/$1.sock" \
        "{\"cmd\":\"repl_sync\",\"uri\":\"unix:$TMP/rep.nbd\",\"full\":$2}" | grep '"event":"repl-sync"' >"$TMP/$1.sync"
    wait $RPID || note "tern-replica did not commit"
}
sval() { grep -o "\"$2\":[0-9.]*" "$TMP/$1.sync" | head -1 | cut -d: -f2; }
drop
start_vm rp --memory 128M --kernel "$GUEST" --disk "path=$TMP/src.img,repl=$TMP/src.bm" \
    --cmdline "tern.hb=1000 tern.disk=16"
wait_for "$TMP/rp.console" '^DISK ok' 30
receive --fresh
sync_vm rp true
line "sync full" "$(rate "$(sval rp bytes)" "$(sval rp ms)")"
receive
sync_vm rp false
line "sync delta" "$(rate "$(sval rp bytes)" "$(sval rp ms)")  [the guest's 16 MiB area, written meanwhile]"
cp --sparse=always "$TMP/rep.img" "$TMP/dd.img"
PORT=$(rand_port)
start_dst rpd "unix:$TMP/rpd.mig" --disk "path=$TMP/dd.img" --nbd-listen "tcp:127.0.0.1:$PORT"
migrate rp "unix:$TMP/rpd.mig" ",\"nbd\":\"tcp:127.0.0.1:$PORT\",\"nbd_delta\":true"
DISK=$(grep -o '"disks":\[[^]]*\]' "$TMP/rp.migration")
line "tern delta" "$(awk -v d="$(num copied)" -v t="$(fig rp total_ms)" -v f="$FULL_COPIED" -v ft="$FULL_MS" \
    'BEGIN { printf "%.1f MiB mirrored, migration %.0f ms (full mirror: %.1f MiB, %.0f ms)", d / 1048576, t, f / 1048576, ft }')  [$MIG, downtime $(fig rp downtime_ms) ms]"
ctl rpd '{"cmd":"quit"}' >/dev/null; wait_vm rpd; wait_vm rp
