# Tasks that outlive their daemon (issue 13), the restarts: the source's
# ternd killed mid-migration and not back for a while: tern-vmm abandons
# the orphaned migration within seconds (the guest runs on, unthrottled),
# `task list` marks the task as one of an offline node, `task log
# --follow` names the node, and the restarted ternd ends the task
# "interrupted (ternd restarted)" saying where the VM is; killed and back
# at once: the same task is followed to its end.
NET=127.0.0.14
. tests/integration/cluster_lib.sh
# KEEP_TMP=DIR keeps the nodes' files there for a post-mortem
[ -n "${KEEP_TMP:-}" ] && trap 'cp -r "$TMP" "$KEEP_TMP"; stop_all; cleanup' EXIT
# tern_to SECONDS NODE ARGS...: tern on that node, killed after SECONDS (a
# follow that would outlast the check fails it instead)
tern_to() { local s=$1 n=$2; shift 2; timeout "$s" "$TERN" --config "$TMP/$n.conf" "$@"; }

check "cluster of three" cluster_up restart
mkdir -p "$TMP/shared"
tern_on n1 storage add shared --path "$TMP/shared" --shared >/dev/null
check_out "vm create 100 --start" tern_on n1 vm create 100 --memory 96 --cpus 1 \
    --kernel "$GUEST" --cmdline "tern.hb=50 tern.ws=16 tern.rate=20 tern.verify=1" \
    --disk shared:16 --start
check "vm 100 runs on n1 and verifies" runs_and_verifies 100 n1

# slow_migration FROM TO: a live migration at 2 MiB/s, under way; its id
# in $TASK, its log in $TLOG
slow_migration() {
    TASK=$(tern_on "$1" vm migrate 100 "$2" --online --bwlimit 2 --no-follow 2>&1 |
        grep -o 'UPID:[^ ]*')
    TLOG=$TMP/$1/data/tasks/$TASK.log
    wait_for "$TLOG" ' pass 1: ' 15
}
# (its log, not its control socket: any control request is a sign that
# someone watches, which would keep the orphan going)
abandoned() { wait_for "$TMP/$1/data/run/100/vmm.log" 'failed: abandoned: no control request' "$2"; }
runs_on() {   # NODE WHAT: runs, verifies, one tern-vmm
    check "$2: vm 100 runs on $1 and verifies" runs_and_verifies 100 "$1"
    check "$2: one tern-vmm for vm 100" [ "$(vmm_count 100)" = 1 ]
}

# 1. the source's ternd killed mid-migration, back only later
slow_migration n1 n2
kill_node n1
T0=$(now_ms)
check "ternd killed: tern-vmm abandons the orphaned migration" abandoned n1 30
T1=$(now_ms)
note "orphaned migration abandoned $(( T1 - T0 )) ms after the kill"
check "  within 15 s of the kill ($(( T1 - T0 )) ms)" [ $(( T1 - T0 )) -le 15000 ]
check "  the guest runs on at the source" hb_moves n1 100
Q=$($CTL "$TMP/n1/data/run/100/control.sock" '{"cmd":"query_migrate"}' 2>&1)
check "  query_migrate: failed, abandoned, unthrottled" \
    bash -c "grep -q '\"status\":\"failed\"' <<<\"\$0\" && grep -q '\"error\":\"abandoned: no control request' <<<\"\$0\" && grep -q '\"throttle_pct\":0,' <<<\"\$0\"" "$Q"
check "  and verifies" verify_on n1 100
check "  the destination tern-vmm on n2 ended" \
    wait_rc 15 0 bash -c "! pgrep -f -- 'tern-vm[m] .*--control $TMP/n2/' >/dev/null"
check "task list marks the task of the offline node" \
    wait_rc 20 0 bash -c "$TERN --config $TMP/n2.conf task list | grep -F '$TASK' | grep -q 'running (node offline)'"
OUT=$(tern_to 20 n2 task log "$TASK" --follow 2>&1); RC=$?
check "task log --follow of the dead node's task: exit 1, naming the node ($OUT)" \
    bash -c "[ $RC = 1 ] && grep -q \"node 'n1'\" <<<\"\$0\"" "$OUT"
start_node n1
check "the restarted ternd ends it: interrupted, saying where the vm is" \
    wait_for "$TLOG" "^TASK ERROR: interrupted \(ternd restarted\); vm 100 is running on node 'n1'" 40
check "  the log says why it could not be followed" \
    grep -q 'the task cannot be followed: the migration had ended: failed: abandoned' "$TLOG"
check "  task list: no task of vm 100 runs" \
    bash -c "[ \"\$($TERN --config $TMP/n2.conf task list --vmid 100 --output json | jq '[.tasks[] | select(.status == \"running\")] | length')\" = 0 ]"
check "  task show: the same end" \
    bash -c "$TERN --config $TMP/n2.conf task show $TASK | grep -q 'status:   ERROR: interrupted (ternd restarted)'"
runs_on n1 "orphan abandoned"
check "all nodes online" wait_rc 30 0 node_count_online 3

# 2. killed and back at once: the restarted ternd follows the same task
# to its end (the VM is paused: its migration is one pass long, whatever
# the guest dirties)
check "vm pause 100" tern_on n1 vm pause 100
slow_migration n1 n2
kill_node n1
start_node n1
check "ternd back at once: the task is followed to its end, TASK OK" \
    wait_rc 90 0 tern_to 90 n1 task log "$TASK" --follow
check "  its log says ternd restarted" grep -q 'ternd restarted: the new ternd' "$TLOG"
check "  and that the new one follows the migration" grep -q 'following the migration of vm 100' "$TLOG"
check "  one log, one task: the start line once" [ "$(grep -c 'migrate of vm 100 started' "$TLOG")" = 1 ]
check "  the target has it paused" vm_on 100 n2 paused
check_out "  vm resume" tern_on n1 vm resume 100
runs_on n2 "followed after the restart"
