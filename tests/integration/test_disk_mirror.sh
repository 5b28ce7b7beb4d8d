# Local disks in a live migration between two real tern-vmm: the source
# mirrors its disk over NBD into the destination's export while tern-guest
# writes and verifies it (`tern.disk`); holes stay holes; the target equals
# the source at the pause (read with nbdcopy, libnbd's tool); tern's client
# mirrors into a qemu-nbd export; the destination or the source killed and
# the migration cancelled mid-mirror; a hostile NBD peer refused.
source "$(dirname "$0")/lib.sh"
command -v nbdcopy >/dev/null && command -v qemu-nbd >/dev/null ||
    { not_ok "nbdcopy or qemu-nbd missing (scripts/install-deps)"; exit 1; }

CMD="tern.hb=50 tern.disk=4 tern.ws=16 tern.rate=20 tern.verify=1"
MIB=$((1 << 20))

# fresh NAME: a 256 MiB sparse image with 32 MiB of random data at 128 MiB
# (beyond the guest's 4 MiB): 36 MiB allocated with the guest's blocks.
fresh() {
    truncate -s 256M "$TMP/$1.img"
    dd if=/dev/urandom of="$TMP/$1.img" bs=1M count=32 seek=128 conv=notrunc 2>/dev/null
}
region() { dd if="$1" bs=1M skip=128 count=32 2>/dev/null | md5sum | cut -d' ' -f1; }
boot_src() {   # NAME [env...]
    local name=$1; shift
    fresh "$name"
    env "$@" "$VMM" --name "$name" --console "file:$TMP/$name.console" --control "$TMP/$name.sock" \
        --memory 128M --kernel "$GUEST" --disk "path=$TMP/$name.img" --cmdline "$CMD" \
        2>"$TMP/$name.log" &
    VM_PID[$name]=$!
    wait_for "$TMP/$name.console" '^HB 10 ' 20
}
dst() {   # NAME: a destination with a fresh sparse image and an NBD listener
    truncate -s 256M "$TMP/$1.img"
    start_dst "$1" "unix:$TMP/$1.mig" --disk "path=$TMP/$1.img" --nbd-listen "unix:$TMP/$1.nbd"
}
disk_fig() { grep -o '"disks":\[[^]]*\]' "$TMP/$1.migration" | grep -o "\"$2\":[0-9.a-z]*" | cut -d: -f2; }
# mig_status NAME: the final status of a migration run in the background
mig_status() { MIG=$(grep -o '"status":"[a-z-]*"' "$TMP/$1.migration" | head -1 | cut -d'"' -f4); }
no_disk_fail() { ! grep -q 'DISK FAIL' "$@"; }
new_disk_ok() {   # NAME: a DISK ok after the current end of its console
    local n
    n=$(grep -c '^DISK ok' "$TMP/$1.console")
    wait_rc 20 0 bash -c "[ \$(grep -c '^DISK ok' '$TMP/$1.console') -gt $n ]"
}

# 1. the live mirror, the guest writing and verifying all along
boot_src live
SUM=$(region "$TMP/live.img")
dst live-d
migrate live "unix:$TMP/live-d.mig" ",\"nbd\":\"unix:$TMP/live-d.nbd\""
check "live: completed (total $(fig live total_ms) ms, downtime $(fig live downtime_ms) ms, disks $(fig live disks_ms) ms of it)" \
    [ "$MIG" = completed ]
note "disk0: $(grep -o '"disks":\[[^]]*\]' "$TMP/live.migration")"
check "live: disk0 copied its 36 MiB allocated, not the 256 MiB of the disk" \
    bash -c "t=$(disk_fig live total); c=$(disk_fig live copied); [ \$t -ge $((32 * MIB)) ] && [ \$t -le $((36 * MIB)) ] && [ \$c -ge \$t ] && [ \$c -lt $((64 * MIB)) ]"
check "live: disk0 synchronous (active mode) before the pause" \
    bash -c "[ '$(disk_fig live active)' = true ] && awk 'BEGIN { exit !($(disk_fig live sync_ms) > 0) }'"
check "live: the downtime split has disks_ms" bash -c "[ -n '$(fig live disks_ms)' ]"
check "live: DISK ok continues on the destination" new_disk_ok live-d
check "live: VERIFY ok on the destination" verify_ok_after live-d
check "live: no DISK FAIL on either side" no_disk_fail "$TMP/live.console" "$TMP/live-d.console"
check "live: heartbeat continues across" hb_consecutive_across live live-d
check "live: the data beyond the guest's blocks arrived" [ "$(region "$TMP/live-d.img")" = "$SUM" ]
check "live: holes stay holes (target allocates < 64 MiB of 256)" \
    [ "$(du -k "$TMP/live-d.img" | cut -f1)" -lt 65536 ]
ctl live-d '{"cmd":"quit"}' >/dev/null; wait_vm live-d; wait_vm live

# 2. at the pause the target equals the source: the source holds after LOADED
# (paused, disks flushed), nbdinfo and nbdcopy read tern's export meanwhile
boot_src eq TERN_TEST_HOLD=loaded TERN_TEST_HOLD_MS=4000
dst eq-d
migrate eq "unix:$TMP/eq-d.mig" ",\"nbd\":\"unix:$TMP/eq-d.nbd\"" &
MPID=$!
wait_for "$TMP/eq.log" "test hold at 'loaded'" 30
check "interop: nbdinfo lists tern's export disk0 of 256 MiB" \
    bash -c "nbdinfo --json 'nbd+unix:///disk0?socket=$TMP/eq-d.nbd' | jq -e '.exports[0].\"export-size\" == 268435456' >/dev/null"
nbdcopy "nbd+unix:///disk0?socket=$TMP/eq-d.nbd" "$TMP/eq-copy.img" 2>"$TMP/nbdcopy.err"
check "interop: nbdcopy of the target at the pause equals the source image (cmp)" \
    cmp "$TMP/eq.img" "$TMP/eq-copy.img"
wait $MPID; mig_status eq
check "paused source: migration completed after the hold" [ "$MIG" = completed ]
check "paused source: the destination goes on writing" new_disk_ok eq-d
ctl eq-d '{"cmd":"quit"}' >/dev/null; wait_vm eq-d; wait_vm eq; rm -f "$TMP/eq-copy.img"

# 3. tern's client into a qemu-nbd export of the destination's image
boot_src qn
truncate -s 256M "$TMP/qn-d.img"
qemu-nbd --persistent --shared=2 -x disk0 --socket="$TMP/qemu.nbd" \
    --image-opts "driver=raw,file.driver=file,file.filename=$TMP/qn-d.img,file.locking=off" \
    2>"$TMP/qemu-nbd.log" &
QPID=$!
wait_rc 10 0 test -S "$TMP/qemu.nbd"
start_dst qn-d "unix:$TMP/qn-d.mig" --disk "path=$TMP/qn-d.img" --nbd-listen "unix:$TMP/qn-unused.nbd"
migrate qn "unix:$TMP/qn-d.mig" ",\"nbd\":\"unix:$TMP/qemu.nbd\""
check "interop: mirror into qemu-nbd completed" [ "$MIG" = completed ]
check "interop: the destination verifies what qemu-nbd wrote (DISK ok)" new_disk_ok qn-d
check "interop: no DISK FAIL" no_disk_fail "$TMP/qn-d.console"
kill "$QPID" 2>/dev/null; wait "$QPID" 2>/dev/null
ctl qn-d '{"cmd":"quit"}' >/dev/null; wait_vm qn-d; wait_vm qn

# 4. faults mid-mirror: the VM keeps running on the source, its disk intact
fault_case() {   # NAME HOLD WHAT(dst|src|cancel)
    local name=$1 hold=$2 what=$3
    boot_src "$name" TERN_TEST_HOLD="$hold" TERN_TEST_HOLD_MS=2000
    dst "$name-d"
    migrate "$name" "unix:$TMP/$name-d.mig" ",\"nbd\":\"unix:$TMP/$name-d.nbd\"" &
    local mpid=$!
    wait_for "$TMP/$name.log" "test hold at '$hold'" 30
    case $what in
    dst) kill -9 "${VM_PID[$name-d]}" ;;
    cancel) ctl "$name" '{"cmd":"migrate_cancel"}' >/dev/null ;;
    esac
    wait $mpid
    mig_status "$name"
}
fault_case kd disk-pass dst
check "destination killed after the bulk pass: migration failed" [ "$MIG" = failed ]
check "  the source keeps running" grep -q '"state":"running"' <<<"$(ctl kd '{"cmd":"status"}')"
check "  and its guest verifies its disk again (DISK ok)" new_disk_ok kd
check "  no DISK FAIL" no_disk_fail "$TMP/kd.console"
ctl kd '{"cmd":"quit"}' >/dev/null; wait_vm kd; wait_vm kd-d

fault_case ka disks-synced dst
check "destination killed in active mode: migration failed" [ "$MIG" = failed ]
check "  guest writes went on (the dead target failed none): DISK ok" new_disk_ok ka
check "  no DISK FAIL" no_disk_fail "$TMP/ka.console"
ctl ka '{"cmd":"quit"}' >/dev/null; wait_vm ka; wait_vm ka-d

fault_case cc disk-pass cancel
check "cancel mid-mirror: cancelled" [ "$MIG" = cancelled ]
check "  the source keeps running and verifies" new_disk_ok cc
wait_vm cc-d
check "  the destination exits 1" [ "$RC" = 1 ]
ctl cc '{"cmd":"quit"}' >/dev/null; wait_vm cc

boot_src ks TERN_TEST_HOLD=disk-pass TERN_TEST_HOLD_MS=2000
dst ks-d
migrate ks "unix:$TMP/ks-d.mig" ",\"nbd\":\"unix:$TMP/ks-d.nbd\"" &
MPID=$!
wait_for "$TMP/ks.log" "test hold at 'disk-pass'" 30
kill -9 "${VM_PID[ks]}"; wait_vm ks; wait $MPID
wait_vm ks-d
check "source killed mid-mirror: the destination exits 1" [ "$RC" = 1 ]
check "  and never ran the guest (no heartbeat there)" bash -c "! grep -q '^HB' '$TMP/ks-d.console' 2>/dev/null"

# 5. a hostile NBD peer is refused with one line; the migration goes on
boot_src hp TERN_TEST_HOLD=disk-pass TERN_TEST_HOLD_MS=4000
dst hp-d
migrate hp "unix:$TMP/hp-d.mig" ",\"nbd\":\"unix:$TMP/hp-d.nbd\"" &
MPID=$!
wait_for "$TMP/hp.log" "test hold at 'disk-pass'" 30
python3 - "$TMP/hp-d.nbd" >"$TMP/hp.peer" 2>&1 <<'EOF'
import socket, struct, sys
def peer(payload):   # until the server hangs up: it has read all of payload then
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.recv(18)
    s.sendall(payload); s.settimeout(3)
    try:
        while s.recv(65536): pass
    except OSError: pass
    s.close()
IHAVEOPT = 0x49484156454F5054
peer(struct.pack(">I", 3) + b"BADMAGIC" + struct.pack(">II", 7, 4))
peer(struct.pack(">I", 3) + struct.pack(">QII", IHAVEOPT, 7, 1 << 30))
# after a proper NBD_OPT_GO of disk0 (no info requests): requests
go = struct.pack(">I", 3) + struct.pack(">QII", IHAVEOPT, 7, 4 + 5 + 2) + \
     struct.pack(">I", 5) + b"disk0" + struct.pack(">H", 0)
req = lambda typ, off, n, magic=0x25609513: struct.pack(">IHHQQI", magic, 0, typ, 1, off, n)
peer(go + req(0, 0, 512, magic=0xdeadbeef))       # bad request magic
peer(go + req(1, 0, 64 << 20))                    # a write of 64 MiB
peer(go + req(9, 0, 0))                           # an unknown command
# a read past the end is answered EINVAL and the connection goes on
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.recv(18)
s.sendall(go); s.settimeout(5)
def more(n):
    b = b""
    while len(b) < n:
        c = s.recv(65536)
        if not c:
            break
        b += c
    return b
got = more(20 + 12 + 20)                          # INFO (a 20-byte header, 12 of data), ACK
s.sendall(req(0, 256 << 20, 512) + req(0, 0, 512))
r = more(16 + 16 + 512)
magic, err1, h1 = struct.unpack(">IIQ", r[:16])
magic2, err2, h2 = struct.unpack(">IIQ", r[16:32])
print("past-end-error", err1, "then-read-error", err2, "data", len(r) - 32)
s.close()
EOF
wait $MPID; mig_status hp
check "hostile peer: bad option magic refused" grep -q "peer refused: bad option magic" "$TMP/hp-d.log"
check "hostile peer: an oversized option refused" grep -q "peer refused: option 7 of 1073741824 bytes" "$TMP/hp-d.log"
check "hostile peer: a bad request magic refused" grep -q "peer refused: bad request magic 0xdeadbeef" "$TMP/hp-d.log"
check "hostile peer: a 64 MiB write refused" grep -q "peer refused: request of 67108864 bytes (at most 33554432)" "$TMP/hp-d.log"
check "hostile peer: an unknown command refused" grep -q "peer refused: unknown command 9" "$TMP/hp-d.log"
check "hostile peer: a read past the end answered EINVAL (22), the next read served" \
    grep -q "past-end-error 22 then-read-error 0 data 512" "$TMP/hp.peer"
check "hostile peer: the migration completed all the same" [ "$MIG" = completed ]
check "hostile peer: DISK ok on the destination" new_disk_ok hp-d
ctl hp-d '{"cmd":"quit"}' >/dev/null; wait_vm hp-d; wait_vm hp
