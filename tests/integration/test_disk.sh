# virtio-blk: the guest writes stamped blocks, reads them back, and a second
# boot on the same image verifies what the first one wrote.
source "$(dirname "$0")/lib.sh"

img=$TMP/disk.img
truncate -s 16M "$img"
start_vm d1 --kernel "$GUEST" --disk "path=$img" --cmdline "tern.hb=200 tern.disk=4"
check "disk: first pass DISK ok" wait_for "$TMP/d1.console" '^DISK ok' 20
check "disk: no DISK FAIL" bash -c "! grep -q 'DISK FAIL' '$TMP/d1.console'"
start_vm locked --kernel "$GUEST" --disk "path=$img"
check "disk: second writer refused (exit 1)" eval "wait_vm locked; [ \$RC = 1 ]"
check "disk: refusal names the lock" grep -q "disk '$img': in use by another process (locked)" "$TMP/locked.log"
check "disk: first VM unaffected" grep -q '"state":"running"' <<<"$(ctl d1 '{"cmd":"status"}')"
status=$(ctl d1 '{"cmd":"status"}')
check "disk: status lists the disk with writes and no inflight" \
    grep -q '"type":"virtio-blk".*"inflight":0' <<<"$status"
ctl d1 '{"cmd":"quit"}' >/dev/null
wait_vm d1
check "disk: image has stamped blocks" bash -c "grep -aq TERNBLK '$img'"

start_vm d2 --kernel "$GUEST" --disk "path=$img" --cmdline "tern.hb=200 tern.disk=4"
check "disk: second boot verifies the first boot's blocks" \
    wait_for "$TMP/d2.console" '^DISK verify ok [1-9][0-9]* blocks boot=2' 20
check "disk: second boot writes and verifies again" wait_for "$TMP/d2.console" '^DISK ok' 20
check "disk: no DISK FAIL after restart" bash -c "! grep -q 'DISK FAIL' '$TMP/d2.console'"
ctl d2 '{"cmd":"quit"}' >/dev/null
wait_vm d2

start_vm ro --kernel "$GUEST" --disk "path=$img,readonly=on" --cmdline "tern.hb=200"
check "disk: readonly attach works beside nothing else" wait_for "$TMP/ro.console" '^HB 1 ' 5
ctl ro '{"cmd":"quit"}' >/dev/null
wait_vm ro
