# Local disks in a live migration between two real tern-vmm: the source
# mirrors its disk over NBD into the destination's export while tern-guest
# writes and verifies it (`tern.disk`); holes stay holes; the target equals
# the source at the pause (read with nbdcopy, libnbd's tool); tern's client
# mirrors into a qemu-nbd export; the destination or the source killed and
# the migration cancelled mid-mirror; a hostile NBD peer refused; a secure
# migration's NBD over STARTTLS (no plaintext on the wire, plain and foreign
# clients refused, a foreign server refused, interop with nbdinfo/qemu-nbd).
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

# 6. TLS (a secure migration): NBD's STARTTLS with the migration's
# certificates. The NBD connection runs through a recording proxy: a canary
# written in the image crosses in plain without TLS and never with it.
scripts/make-certs "$TMP/pki" node1 node2 >/dev/null
scripts/make-certs "$TMP/evil" rogue >/dev/null
# the destination's certificate names 127.0.0.1, so that libnbd's tools,
# which check the host name, can connect to it too
mkdir -p "$TMP/pki/dst"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=dst \
    -keyout "$TMP/pki/dst/key.pem" -out "$TMP/pki/dst/req.csr" 2>/dev/null
openssl x509 -req -in "$TMP/pki/dst/req.csr" -CA "$TMP/pki/ca.pem" -CAkey "$TMP/pki/ca.key" \
    -CAcreateserial -out "$TMP/pki/dst/cert.pem" -days 2 2>/dev/null \
    -extfile <(printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n')
cp "$TMP/pki/ca.pem" "$TMP/pki/dst/ca.pem"
CANARY=tern-plaintext-canary-0123456789abcdef
canary() { for _ in $(seq 4096); do printf '%s' "$CANARY"; done | dd of="$1" bs=1M seek=200 conv=notrunc 2>/dev/null; }
proxy() {   # LISTEN_PORT TARGET_PORT CAPTURE: forwards, records both directions
    python3 - "$@" <<'PY' &
import socket, sys, threading
lp, tp, cap = int(sys.argv[1]), int(sys.argv[2]), open(sys.argv[3], "ab", buffering=0)
lock = threading.Lock()
def pump(a, b):
    while True:
        try:
            d = a.recv(1 << 20)
        except OSError:
            d = b""
        if not d:
            for s in (a, b):
                try: s.shutdown(socket.SHUT_RDWR)
                except OSError: pass
            return
        with lock:
            cap.write(d)
        b.sendall(d)
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", lp)); ls.listen(8)
open(sys.argv[3] + ".ready", "w").close()
while True:
    c, _ = ls.accept()
    t = socket.create_connection(("127.0.0.1", tp))
    threading.Thread(target=pump, args=(c, t), daemon=True).start()
    threading.Thread(target=pump, args=(t, c), daemon=True).start()
PY
    PROXY_PID=$!
}
tls_run() {   # NAME SECURE(0|1) [env...]: a migration through the proxy
    local name=$1 secure=$2; shift 2
    boot_src "$name" "$@"
    canary "$TMP/$name.img"
    truncate -s 256M "$TMP/$name-d.img"
    local p np pp tls=() extra=""
    p=$(rand_port); np=$(rand_port); pp=$(rand_port)
    [ "$secure" = 1 ] && tls=(--tls-dir "$TMP/pki/dst") &&
        extra=",\"tls\":true,\"tls_dir\":\"$TMP/pki/node1\""
    start_dst "$name-d" "tcp:127.0.0.1:$p" --disk "path=$TMP/$name-d.img" \
        --nbd-listen "tcp:127.0.0.1:$np" "${tls[@]}"
    : >"$TMP/$name.cap"
    proxy "$pp" "$np" "$TMP/$name.cap"
    wait_rc 10 0 test -e "$TMP/$name.cap.ready"
    NBD_PORT=$np
    migrate "$name" "tcp:127.0.0.1:$p" "$extra,\"nbd\":\"tcp:127.0.0.1:$pp\"" &
    MPID=$!
}
tls_end() {   # NAME
    wait $MPID; mig_status "$1"
    kill "$PROXY_PID"; wait "$PROXY_PID" 2>/dev/null
}

tls_run pl 0
tls_end pl
check "insecure: completed, and the canary crossed the wire in plain" \
    bash -c "[ '$MIG' = completed ] && grep -qa '$CANARY' '$TMP/pl.cap'"
ctl pl-d '{"cmd":"quit"}' >/dev/null; wait_vm pl-d; wait_vm pl

tls_run st 1 TERN_TEST_HOLD=disk-pass TERN_TEST_HOLD_MS=4000
wait_for "$TMP/st.log" "test hold at 'disk-pass'" 30
NBDS="nbd://127.0.0.1:$NBD_PORT/disk0"
mkdir -p "$TMP/lnbd-ok" "$TMP/lnbd-evil"
ln -sf "$TMP/pki/node1/ca.pem" "$TMP/lnbd-ok/ca-cert.pem"
ln -sf "$TMP/pki/node1/cert.pem" "$TMP/lnbd-ok/client-cert.pem"
ln -sf "$TMP/pki/node1/key.pem" "$TMP/lnbd-ok/client-key.pem"
ln -sf "$TMP/pki/ca.pem" "$TMP/lnbd-evil/ca-cert.pem"
ln -sf "$TMP/evil/rogue/cert.pem" "$TMP/lnbd-evil/client-cert.pem"
ln -sf "$TMP/evil/rogue/key.pem" "$TMP/lnbd-evil/client-key.pem"
check "tls: a plain client (nbdinfo) is refused: tls required" \
    bash -c "! timeout 10 nbdinfo '$NBDS' >'$TMP/plain.out' 2>&1 && grep -qi 'tls' '$TMP/plain.out'"
check "tls: the server logged the plain client" grep -q "plain client refused: option [0-9]* before starttls" "$TMP/st-d.log"
check "tls: a client with a certificate of another CA is refused" \
    bash -c "! timeout 10 nbdinfo 'nbds://127.0.0.1:$NBD_PORT/disk0?tls-certificates=$TMP/lnbd-evil' >/dev/null 2>&1"
check "tls: ... and named in the server's log" grep -q "peer refused: tls: peer certificate refused\|peer refused: tls: handshake" "$TMP/st-d.log"
check "interop: nbdinfo over STARTTLS with the cluster's certificates reads the export" \
    bash -c "timeout 10 nbdinfo --size 'nbds://127.0.0.1:$NBD_PORT/disk0?tls-certificates=$TMP/lnbd-ok' | grep -qx 268435456"
tls_end st
check "tls: the secure migration with a local disk completed" [ "$MIG" = completed ]
check "tls: the mirror said tls" grep -q "disk0: mirror to tcp:127.0.0.1:[0-9]* (tls)" "$TMP/st.log"
check "tls: the data crossed the proxy (> 32 MiB recorded)" [ "$(stat -c %s "$TMP/st.cap")" -gt $((32 * MIB)) ]
check "tls: the canary never crossed in plain" bash -c "! grep -qa '$CANARY' '$TMP/st.cap'"
check "tls: the canary arrived in the target image" cmp <(dd if="$TMP/st.img" bs=1M skip=200 count=1 2>/dev/null) <(dd if="$TMP/st-d.img" bs=1M skip=200 count=1 2>/dev/null)
check "tls: DISK ok on the destination" new_disk_ok st-d
ctl st-d '{"cmd":"quit"}' >/dev/null; wait_vm st-d; wait_vm st

# 7. tern's TLS client against qemu-nbd (STARTTLS, qemu's x509 credentials):
# a certificate of the cluster naming the host is taken, one of another CA
# refused
qnbd_tls() {   # NAME CERTDIR PORT: trusts the cluster's clients, shows CERTDIR's
    mkdir -p "$TMP/$1.creds"
    cat "$TMP/pki/ca.pem" "$2/ca.pem" >"$TMP/$1.creds/ca-cert.pem"
    ln -sf "$2/cert.pem" "$TMP/$1.creds/server-cert.pem"
    ln -sf "$2/key.pem" "$TMP/$1.creds/server-key.pem"
    truncate -s 256M "$TMP/$1.img"
    qemu-nbd --persistent -x disk0 -b 127.0.0.1 -p "$3" -f raw "$TMP/$1.img" \
        --object "tls-creds-x509,id=t,dir=$TMP/$1.creds,endpoint=server,verify-peer=on" \
        --tls-creds t 2>"$TMP/$1.log" &
    QPID=$!
    wait_rc 10 0 grep -q ":$(printf %04X "$3") " /proc/net/tcp
}
tq_run() {   # WHO CERTDIR: migrate tq with its disk into a qemu-nbd tls export
    local qp p
    qp=$(rand_port); p=$(rand_port)
    qnbd_tls "q$1" "$2" "$qp"
    truncate -s 256M "$TMP/tq-$1.img"
    start_dst "tq-$1" "tcp:127.0.0.1:$p" --disk "path=$TMP/tq-$1.img" --tls-dir "$TMP/pki/node2" \
        --nbd-listen "tcp:127.0.0.1:$(rand_port)"
    migrate tq "tcp:127.0.0.1:$p" ",\"tls\":true,\"tls_dir\":\"$TMP/pki/node1\",\"nbd\":\"tcp:127.0.0.1:$qp\""
    kill "$QPID"; wait "$QPID" 2>/dev/null
}
boot_src tq
tq_run rogue "$TMP/evil/rogue"
check "tls: an nbd server with a certificate of another CA is refused: migration failed" \
    bash -c "[ '$MIG' = failed ] && grep -q 'certificate verification' '$TMP/tq.migration'"
check "  the source keeps running and verifies its disk" new_disk_ok tq
wait_vm tq-rogue
tq_run good "$TMP/pki/dst"
check "interop: tern's tls client mirrored into qemu-nbd's tls export" [ "$MIG" = completed ]
check "interop: the destination verifies what qemu-nbd got (DISK ok)" new_disk_ok tq-good
ctl tq-good '{"cmd":"quit"}' >/dev/null; wait_vm tq-good; wait_vm tq
