# The cluster handover under faults: the target's tern-vmm or ternd killed
# mid-migration (the VM keeps running on the source), two etcd members
# stopped (not quorate: migrate refused, the running VM untouched), and the
# source's ternd killed right after the etcd commit, alone and together
# with the source tern-vmm (the VM runs on the target, never twice).
NET=127.0.0.6
. tests/integration/cluster_lib.sh

check "cluster of three" cluster_up faults
mkdir -p "$TMP/shared"
tern_on n1 storage add shared --path "$TMP/shared" --shared >/dev/null
check_out "vm create 100 --start" tern_on n1 vm create 100 --memory 128 --cpus 1 --kernel "$GUEST" \
    --cmdline "tern.hb=50 tern.ws=16 tern.rate=20 tern.verify=1" --disk shared:16 --start
check "vm 100 runs on n1 and verifies" runs_and_verifies 100 n1

# slow_migration TO: a live migration at 2 MiB/s (several seconds); $TASK
slow_migration() {
    TASK=$(tern_on n1 vm migrate 100 "$1" --online --bwlimit 2 --no-follow 2>&1 | grep -o 'UPID:[^ ]*')
    wait_for "$(task_log_file n1)" ' pass 1: ' 10
}
# held_migration FROM TO: a live migration asked of a just restarted node
# (it answers 503 until it has adopted its VMs, so ask until it takes it); $TASK
held_migration() {
    check "migrate $1 -> $2 taken" wait_rc 60 0 tern_on "$1" vm migrate 100 "$2" --online --no-follow
    TASK=$(grep -o 'UPID:[^ ]*' <<<"$OUT" | head -1)
}
task_ends() { wait_rc 60 1 tern_on n1 task log "$TASK" --follow; }
still_on_n1() {
    check "$1: vm 100 still runs on n1" runs_and_verifies 100 n1
    check "$1: heartbeat goes on at n1" hb_moves n1 100
    check "$1: one tern-vmm for vm 100" [ "$(vmm_count 100)" = 1 ]
}

# 1. the target's tern-vmm dies mid-migration
slow_migration n2
kill -9 "$(cut -d' ' -f1 "$TMP/n2/data/run/100/pid")"
task_ends
check "target tern-vmm killed: TASK ERROR ($(tail -1 <<<"$OUT"))" grep -q '^TASK ERROR' <<<"$OUT"
check "  it names what failed: the target tern-vmm on 'n2', killed by signal 9" \
    grep -q "^TASK ERROR: target tern-vmm on 'n2' exited (killed by signal 9" <<<"$OUT"
still_on_n1 "target tern-vmm killed"

# 2. the target's ternd dies mid-migration (its tern-vmm lives on, but
# nobody would settle its handover: the source gives up)
slow_migration n2
kill_node n2
task_ends
check "target ternd killed: TASK ERROR, it stopped answering" grep -q "stopped answering" <<<"$OUT"
check "  it names the node and its address, not a URL" \
    grep -Eq "node 'n2' \(127\.0\.0\.[0-9]+:[0-9]+\) (refused the connection|did not answer in [0-9]+ s)" <<<"$OUT"
still_on_n1 "target ternd killed"
check "target ternd killed: its destination tern-vmm ended" \
    wait_rc 10 0 bash -c "! pgrep -f -- 'tern-vm[m] .*--control $TMP/n2/' >/dev/null"
start_node n2
check "n2 back online" wait_rc 30 0 node_count_online 3

# 3. no quorum: two etcd members stopped
kill -STOP $(etcd_of n2) $(etcd_of n3)
check "two etcd members stopped: cluster status says not quorate (exit 3)" \
    wait_rc 20 3 tern_on n1 cluster status
OUT=$(tern_on n1 vm migrate 100 n3 --online 2>&1); RC=$?
check "not quorate: migrate refused with exit 3 ($OUT)" \
    bash -c "[ $RC = 3 ] && grep -q 'cluster not quorate' <<<\"\$0\"" "$OUT"
check "not quorate: vm 100 keeps running on n1" hb_moves n1 100
check "not quorate: and verifies" verify_on n1 100
kill -CONT $(etcd_of n2) $(etcd_of n3)
check "members back: quorate again" wait_rc 30 0 tern_on n1 cluster status
check "members back: all nodes online" wait_rc 30 0 node_count_online 3

# 4. the source's ternd dies right after the etcd commit, before it told
# its tern-vmm: the source waits (paused), the destination waits; the
# restarted ternd settles it from etcd: the VM runs on n2, once
kill -TERM "${TD_PID[n1]}"; wait "${TD_PID[n1]}" 2>/dev/null; unset "TD_PID[n1]"
TERN_TEST_HOLD=handover-committed TERN_TEST_HOLD_MS=4000 start_node n1
check "n1 back with a hold after the commit" wait_rc 30 0 node_count_online 3
held_migration n1 n2
check "committed in etcd" wait_for "$TMP/n1/data/tasks/$TASK.log" ' handover committed' 60
kill_node n1
check "source ternd killed after the commit: vm 100 is not running anywhere meanwhile" \
    bash -c "! grep -q '\"state\":\"running\"' <<<\"\$($CTL $TMP/n1/data/run/100/control.sock '{\"cmd\":\"status\"}')\""
start_node n1
check "restarted n1 settles the handover: vm 100 runs on n2" runs_and_verifies 100 n2
check "the source tern-vmm ended (migrated away)" \
    wait_rc 10 0 bash -c "! pgrep -f -- 'tern-vm[m] .*--control $TMP/n1/' >/dev/null"
check "one tern-vmm for vm 100" [ "$(vmm_count 100)" = 1 ]
check "heartbeat goes on at n2" hb_moves n2 100
check "n1 logged how it settled" grep -q "handover settled from etcd: node 'n2' owns it" "$TMP/n1.log"

# 5. the same, but the source host dies whole (ternd and tern-vmm): the
# destination lost its source after LOADED and asks etcd, which names it
# the owner: it resumes
kill -TERM "${TD_PID[n2]}"; wait "${TD_PID[n2]}" 2>/dev/null; unset "TD_PID[n2]"
TERN_TEST_HOLD=handover-committed TERN_TEST_HOLD_MS=4000 start_node n2
check "n2 back with a hold after the commit" wait_rc 30 0 node_count_online 3
check "n2 adopted vm 100" runs_and_verifies 100 n2
held_migration n2 n3
check "committed in etcd (n2 -> n3)" wait_for "$TMP/n2/data/tasks/$TASK.log" ' handover committed' 60
kill_node n2
kill -9 "$(cut -d' ' -f1 "$TMP/n2/data/run/100/pid")"
check_out "source host gone: the destination resumes because etcd names n3" \
    bash -c "$(declare -f vm_on vm_field runs_and_verifies verify_on console_of now_ms tern_on); TERN=$TERN TMP=$TMP runs_and_verifies 100 n3 || { tail -20 $TMP/n3.log; tail -5 $TMP/n3/data/run/100/vmm.log; exit 1; }"
check "heartbeat goes on at n3" hb_moves n3 100
check "one tern-vmm for vm 100" [ "$(vmm_count 100)" = 1 ]
check "n3 logged how it settled" grep -q "handover settled from etcd: node 'n3' owns it" "$TMP/n3.log"

# 6. restart policy: a tern-vmm killed from outside (a crash, not a stop)
# comes back on the node that owns the VM; its end is reported
OLD=$(cut -d' ' -f1 "$TMP/n3/data/run/100/pid")
kill -9 "$OLD"
check "killed vm restarted by n3's ternd" \
    wait_rc 20 0 bash -c "p=\$(cut -d' ' -f1 $TMP/n3/data/run/100/pid); [ \"\$p\" != $OLD ] && kill -0 \$p"
check "restarted: runs on n3 and verifies" runs_and_verifies 100 n3
check "vm show names how the last one ended" \
    bash -c "$TERN --config $TMP/n1.conf vm show 100 --output json | jq -e '.last_exit | test(\"killed by signal 9\")' >/dev/null"
check "n3 logged the restart" grep -q "vm 100: restarting after a crash" "$TMP/n3.log"
# the migrate task of the killed n2 held the VM's lock on n2's lease: it
# goes with that lease (TTL), then stop works
check "vm stop once the dead node's lock expired: not restarted" wait_rc 15 0 tern_on n1 vm stop 100
sleep 2
check "stopped: no tern-vmm for vm 100" [ "$(vmm_count 100)" = 0 ]
