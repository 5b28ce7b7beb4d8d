# The dirtier writes pages and verify checks every one of them.
source "$(dirname "$0")/lib.sh"

start_vm d --kernel "$GUEST" --memory 512M \
    --cmdline "tern.hb=100 tern.ws=128 tern.rate=200 tern.verify=1"
# a first VERIFY ok, then another (tern.verify=1: every second, but 128 MiB
# checked takes seconds of a guest's CPU when suites run side by side)
verify_twice() { wait_for "$TMP/d.console" '^VERIFY ok' 30 && verify_ok_after d 20; }
check "dirtier: VERIFY ok twice" verify_twice
check "dirtier: no VERIFY FAIL" bash -c "! grep -q 'VERIFY FAIL' '$TMP/d.console'"
pages=$(grep -E '^HB' "$TMP/d.console" | tail -1 | cut -d' ' -f3)
note "pages written after $(last_hb d) heartbeats: $pages"
check "dirtier: heartbeat counts pages written (${pages:-0} > 0)" [ "${pages:-0}" -gt 0 ]
ctl d '{"cmd":"quit"}' >/dev/null
wait_vm d

start_vm smp --kernel "$GUEST" --cpus 2 --memory 512M \
    --cmdline "tern.hb=100 tern.ws=64 tern.rate=100 tern.verify=1 tern.smp=1"
check "2 vcpus: banner says cpus=2" wait_for "$TMP/smp.console" '^tern-guest .*cpus=2' 10
check "2 vcpus: CPU 1 up" wait_for "$TMP/smp.console" '^CPU 1 up' 10
check "2 vcpus: cpu 0 verifies ok" wait_for "$TMP/smp.console" '^VERIFY ok .*cpu=0' 10
check "2 vcpus: cpu 1 verifies ok" wait_for "$TMP/smp.console" '^VERIFY ok .*cpu=1' 10
check "2 vcpus: no VERIFY FAIL" bash -c "! grep -q 'VERIFY FAIL' '$TMP/smp.console'"
ctl smp '{"cmd":"quit"}' >/dev/null
check "2 vcpus: exit status 0" eval "wait_vm smp; [ \$RC = 0 ]"
