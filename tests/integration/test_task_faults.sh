# Tasks that outlive their daemon (issue 13): a frozen target given up on
# within 10 s with the node named; cancel answers what it did (cancelled,
# or refused while etcd decides the handover, with the pause logged every
# few seconds and ended when etcd answers); no stop-and-copy on a cluster
# known to be unquorate; a source ternd killed mid-migration: the orphaned
# migration is abandoned by tern-vmm within seconds (the VM runs on), the
# task is marked as its node's while offline and ended "interrupted" by the
# restarted ternd, or followed to its end when the restart comes in time;
# a paused VM migrates and is "paused" (not "incoming") on its target.
NET=127.0.0.8
. tests/integration/cluster_lib.sh
# KEEP_TMP=DIR keeps the nodes' files there for a post-mortem
[ -n "${KEEP_TMP:-}" ] && trap 'cp -r "$TMP" "$KEEP_TMP"; stop_all; cleanup' EXIT
# tern_to SECONDS NODE ARGS...: tern on that node, killed after SECONDS (a
# follow that would outlast the check fails it instead)
tern_to() { local s=$1 n=$2; shift 2; timeout "$s" "$TERN" --config "$TMP/$n.conf" "$@"; }

check "cluster of three" cluster_up tasks
mkdir -p "$TMP/shared"
tern_on n1 storage add shared --path "$TMP/shared" --shared >/dev/null
check_out "vm create 100 --start" tern_on n1 vm create 100 --memory 96 --cpus 1 \
    --kernel "$GUEST" --cmdline "tern.hb=50 tern.ws=16 tern.rate=20 tern.verify=1" \
    --disk shared:16 --start
check "vm 100 runs on n1 and verifies" runs_and_verifies 100 n1

# slow_migration FROM TO [BW]: a live migration at BW MiB/s (2: several
# seconds), under way; its id in $TASK, its log in $TLOG
slow_migration() {
    TASK=$(tern_on "$1" vm migrate 100 "$2" --online --bwlimit "${3:-2}" --no-follow 2>&1 |
        grep -o 'UPID:[^ ]*')
    TLOG=$TMP/$1/data/tasks/$TASK.log
    wait_for "$TLOG" ' pass 1: ' 15
}
task_status() { tern_on "$1" task show "$TASK" --output json | jq -r .status; }
runs_on() {   # NODE: runs, verifies, one tern-vmm
    check "$2: vm 100 runs on $1 and verifies" runs_and_verifies 100 "$1"
    check "$2: one tern-vmm for vm 100" [ "$(vmm_count 100)" = 1 ]
}
vmm_query() { $CTL "$TMP/$1/data/run/100/control.sock" '{"cmd":"query_migrate"}' 2>/dev/null; }

# 1. a frozen target (its ternd stopped, its etcd member answers): given
# up on within 10 s, the node and the real probe timeout named
slow_migration n1 n2
kill -STOP "${TD_PID[n2]}"
T0=$(now_ms)
check "frozen target: the task ends" wait_rc 30 1 tern_to 30 n1 task log "$TASK" --follow
T1=$(now_ms)
kill -CONT "${TD_PID[n2]}"
note "frozen target: task ended $(( T1 - T0 )) ms after the freeze"
check "frozen target given up on in <= 10 s ($(( T1 - T0 )) ms)" [ $(( T1 - T0 )) -le 10000 ]
check "  the log names the node, its address and the real timeout" \
    grep -Eq "node 'n2' \(127\.0\.0\.82:18406\) did not answer in 3 s" "$TLOG"
check "  TASK ERROR says the node stopped answering" \
    grep -q "^TASK ERROR: node 'n2' stopped answering" "$TLOG"
runs_on n1 "frozen target"

# 2. cancel during pre-copy: "cancelled", the VM stays; a second cancel
# of the ended task is refused
slow_migration n1 n3
OUT=$(tern_on n1 task cancel "$TASK" 2>&1); RC=$?
check "cancel in pre-copy: exit 0, 'cancelled task' ($OUT)" \
    bash -c "[ $RC = 0 ] && grep -q '^cancelled task UPID' <<<\"\$0\"" "$OUT"
ST=$(task_status n1)
check "  the task ended cancelled ($ST)" [ "$ST" = "ERROR: migration cancelled" ]
OUT=$(tern_on n1 task cancel "$TASK" 2>&1); RC=$?
check "  a second cancel is refused: it has ended ($OUT)" \
    bash -c "[ $RC = 1 ] && grep -q 'has ended' <<<\"\$0\"" "$OUT"
runs_on n1 "cancelled"

# 3. a paused VM migrates: on its target it is "paused" (not "incoming"),
# and resumes there
check "vm pause 100" tern_on n1 vm pause 100
check_out "paused vm 100 migrates to n2: TASK OK" tern_on n1 vm migrate 100 n2 --online
check "  the target shows it paused, not incoming" vm_on 100 n2 paused
check_out "  vm resume on the target" tern_on n1 vm resume 100
runs_on n2 "resumed on the target"

# 4. cancel while etcd decides the handover (two members stopped): refused
# with the reason; the pause is logged every few seconds and ends when
# etcd answers; the task ends as etcd decided (TASK OK), never "cancelled"
kill -TERM "${TD_PID[n2]}"; wait "${TD_PID[n2]}" 2>/dev/null; unset "TD_PID[n2]"
TERN_TEST_HOLD=handover-deciding TERN_TEST_HOLD_MS=4000 start_node n2
check "n2 back with a hold before the etcd commit" wait_rc 30 0 node_count_online 3
check "n2 adopted vm 100" runs_and_verifies 100 n2
wait_rc 30 0 tern_on n2 vm migrate 100 n3 --online --no-follow
TASK=$(grep -o 'UPID:[^ ]*' <<<"$OUT"); TLOG=$TMP/n2/data/tasks/$TASK.log
check "destination loaded, etcd decides" wait_for "$TLOG" 'etcd decides the handover' 30
kill -STOP $(etcd_of n1) $(etcd_of n3)
OUT=$(tern_on n2 task cancel "$TASK" 2>&1); RC=$?
check "cancel while etcd decides: refused, exit 1, with the reason ($OUT)" \
    bash -c "[ $RC = 1 ] && grep -q 'cancel refused: the handover is being decided: the outcome depends on etcd' <<<\"\$0\"" "$OUT"
check "  the pause is logged with its length" \
    wait_for "$TLOG" 'vm 100 paused [0-9]+ s: waiting for etcd to decide the owner' 25
vm_state() {
    local out
    out=$($CTL "$TMP/$1/data/run/100/control.sock" '{"cmd":"status"}' 2>&1)
    grep -o '"state":"[a-z]*"' <<<"$out" || echo "$out" | head -c 300
}
ST=$(vm_state n2)
check "  the guest is paused on n2 meanwhile ($ST)" [ "$ST" = '"state":"paused"' ]
kill -CONT $(etcd_of n1) $(etcd_of n3)
T0=$(now_ms)
check "  etcd back: the pause ends" wait_for "$TLOG" 'etcd answered after' 20
note "etcd back: the task saw it $(( $(now_ms) - T0 )) ms later"
check "  the task ends TASK OK, as etcd decided (not cancelled)" \
    wait_rc 30 0 tern_to 30 n2 task log "$TASK" --follow
runs_on n3 "handover decided by etcd"
check "quorate again: all nodes online" wait_rc 30 0 node_count_online 3

# 5. quorum lost before stop-and-copy: the guest is never paused; it runs
# on in pre-copy until etcd answers, then the migration completes
slow_migration n3 n1 16
kill -STOP $(etcd_of n1) $(etcd_of n2)
check "no quorum: the task says it keeps the vm in pre-copy" \
    wait_for "$TLOG" 'no stop-and-copy without quorum' 30
check "  and says so again every few seconds" wait_for "$TLOG" 'in pre-copy [0-9]+ s more' 15
check "  the guest runs on at the source (heartbeat)" hb_moves n3 100
always_running() {   # NODE: the VM's tern-vmm says "running" for 5 s on end
    local st
    for _ in $(seq 25); do
        st=$(vm_state "$1")
        [ "$st" = '"state":"running"' ] || { note "vm 100 on $1: $st"; return 1; }
        sleep 0.2
    done
}
check "  the source tern-vmm stays running (sampled for 5 s)" always_running n3
kill -CONT $(etcd_of n1) $(etcd_of n2)
check "  etcd back: the migration completes, TASK OK" \
    wait_rc 60 0 tern_to 60 n3 task log "$TASK" --follow
check "  the log says when etcd answered" grep -q 'etcd answers again after' "$TLOG"
runs_on n1 "after the quorum came back"
check "quorate again: all nodes online" wait_rc 30 0 node_count_online 3
