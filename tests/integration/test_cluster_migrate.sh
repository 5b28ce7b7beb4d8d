# `tern vm migrate` in a three-node cluster: create and join, a VM on
# shared storage running tern-guest with its page verifier, migrated live
# around all nodes (secure, insecure, over a migration network, auto) and
# offline, each pre-check refused with its one line, dry run, cancel.
NET=127.0.0.5
CONF_EXTRA="task_records = 3"   # each node keeps the records of its last 3 tasks
. tests/integration/cluster_lib.sh

check "cluster created on n1, n2 and n3 joined, all online" cluster_up demo
check "cluster status on n3: 3 members, quorate" \
    bash -c "$TERN --config $TMP/n3.conf cluster status --output json | jq -e '.quorate and .member_count == 3' >/dev/null"

mkdir -p "$TMP/shared" "$TMP/local"
check "storage add shared" tern_on n1 storage add shared --path "$TMP/shared" --shared
check "storage add local" tern_on n2 storage add local --path "$TMP/local"
CMD="tern.hb=50 tern.ws=16 tern.rate=20 tern.verify=1"
check "vm create 100 on shared storage" \
    tern_on n1 vm create 100 --memory 128 --cpus 1 --kernel "$GUEST" --cmdline "$CMD" --disk shared:16
check_out "vm start 100" tern_on n1 vm start 100
check "vm 100 runs on n1" vm_on 100 n1
check "vm 100 verifies its pages on n1" verify_on n1 100
tern_on n1 vm create 101 --memory 40000 --cpus 1 --kernel "$GUEST" --disk shared:8 >/dev/null
tern_on n1 vm create 102 --memory 64 --cpus 1 --kernel "$GUEST" --disk local:8 >/dev/null

# refused: each with one line naming why, exit 1, nothing moves
refused() {   # NAME REGEX ARGS...
    local name=$1 re=$2; shift 2
    OUT=$(tern_on n1 vm migrate "$@" 2>&1); RC=$?
    check "refused: $name ($(head -1 <<<"$OUT"))" \
        bash -c "[ $RC = 1 ] && [ \$(wc -l <<<\"\$0\") = 1 ] && grep -Eq -- \"\$1\" <<<\"\$0\"" "$OUT" "$re"
}
refused "running without --online" "use --online" 100 n2
refused "target is the source (409, a pre-check)" "is the source.*http 409" 100 n1 --online
refused "unknown node (409, a pre-check)" "not in the cluster.*http 409" 100 n7 --online
refused "no address in the migration network" "no address in migration network" \
    100 n2 --online --migration-network 10.9.0.0/16
refused "target memory, its reserve explained" "needs 40256 MiB: 40000 for the vm \\+ 256 reserve" 101 n2
refused "auto: no node fits, the reason of each" \
    "auto: no node but 'n1' passes every check: n2: node 'n2' has [0-9]+ MiB free; vm 101 needs 40256 MiB.*; n3: node 'n3' has" 101 auto
refused "disk on local storage" "not shared" 102 n3

# made-up nodes, online, that differ from the real ones in their addresses,
# cpu model, version and devices (their records written straight into etcd)
b64() { printf %s "$1" | base64 -w0; }
LEASE=$(etcd_curl n1 /v3/lease/grant -d '{"TTL":120}' | jq -r .ID)
INFO=$(tern_on n1 node list --output json | jq -c '.nodes[] | select(.name == "n2") | .info')
fake_node() {   # NAME JQ-EDIT
    local info
    info=$(jq -c "$2" <<<"$INFO")
    etcd_curl n1 /v3/kv/put -d "{\"key\":\"$(b64 /tern/nodes/$1)\",\"value\":\"$(b64 "$info")\"}" >/dev/null
    etcd_curl n1 /v3/kv/put -d "{\"key\":\"$(b64 /tern/alive/$1)\",\"value\":\"$(b64 '{}')\",\"lease\":\"$LEASE\"}" >/dev/null
}
fake_node n7 '.addresses = ["127.0.2.1", "127.0.2.2"]'
fake_node n8 '.cpu_model = "Imaginary CPU 9000"'
fake_node n9 '.version = "0.0.9"'
fake_node n10 '.devices = {"serial": 1}'
refused "two addresses in the migration network" "has 2 addresses in migration network" \
    100 n7 --online --migration-network 127.0.2.0/24
refused "cpu model" "not supported by node 'n8'" 100 n8 --online
refused "older version" "runs tern 0.0.9, older" 100 n9 --online
refused "a device model the target lacks" "vm 100 has 1 virtio-blk device\(s\); node 'n10' supports none" \
    100 n10 --online
etcd_curl n1 /v3/lease/revoke -d "{\"ID\":\"$LEASE\"}" >/dev/null
for n in n7 n8 n9 n10; do
    etcd_curl n1 /v3/kv/deleterange -d "{\"key\":\"$(b64 /tern/nodes/$n)\"}" >/dev/null
done

OUT=$(tern_on n1 vm migrate 100 n2 --online --dry-run 2>&1); RC=$?
check "dry run: exit 0, every check ok, the plan" \
    bash -c "[ $RC = 0 ] && ! grep -q FAIL <<<\"\$0\" && grep -q 'live migration of vm 100' <<<\"\$0\"" "$OUT"
check "dry run: nothing moved" vm_on 100 n1

# a slow migration holds the lock: a second one is refused, then cancel
TASK=$(tern_on n1 vm migrate 100 n2 --online --bwlimit 2 --no-follow 2>&1 | grep -o 'UPID:[^ ]*')
sleep 0.5
refused "locked by a running task" "locked by task UPID" 100 n3 --online
check "vm list: the LOCK column is the task type and a short id" \
    bash -c "$TERN --config $TMP/n2.conf vm list | grep -Eq '^100 .* migrate n1:[0-9a-f]+\$'"
# progress of the running migration, from another node: pass 1 has a rate
wait_for "$(task_log_file n1)" ' pass 1: ' 10
sleep 2.5
RUN=$(tern_on n3 task list --vmid 100 --output json | jq -c "first(.tasks[] | select(.id == \"$TASK\"))")
note "running: $RUN"
check "task list --output json: a running migration has progress and eta_s" \
    jq -e '.status == "running" and (.progress.percent | type == "number") and
           .progress.percent >= 0 and .progress.percent < 100 and (.eta_s | type == "number")' <<<"$RUN"
check "  its rate is measured during pass 1 (about 2 MiB/s, not 0)" \
    jq -e '.progress.pass == 1 and .progress.rate > 1000000 and .progress.rate < 4000000' <<<"$RUN"
OUT=$(tern_on n2 task show "$TASK" 2>&1)
check "task show UPID: status running and a progress line with eta" \
    bash -c "grep -q '^status:   running' <<<\"\$0\" && grep -Eq '^progress: \\[#*-*\\] +[0-9]+%.* sent .*/s  eta [0-9]{2}:[0-9]{2}  pass 1' <<<\"\$0\"" "$OUT"
check "task log: pass 1 lines with a rate, a share done and an eta" \
    grep -Eq '^[0-9-]{10} [0-9:]{8} pass 1: [0-9]+% done, .* MiB sent, .* [1-9][0-9.]* MiB/s, .* eta [0-9]+ s$' \
    "$(task_log_file n1)"
check "cancel the running migration" tern_on n2 task cancel "$TASK"
wait_rc 30 1 tern_on n1 task log "$TASK" --follow
check "cancelled: the task ends in TASK ERROR" grep -q "^TASK ERROR: migration cancelled" <<<"$OUT"
check "cancelled: vm 100 still runs on n1" vm_on 100 n1
check "cancelled: and verifies" verify_on n1 100
check "cancelled: one tern-vmm for vm 100" [ "$(vmm_count 100)" = 1 ]

# live around all nodes
migrate_ok() {   # FROM TO EXTRA...
    local from=$1 to=$2; shift 2
    OUT=$(tern_on n3 vm migrate 100 "$to" --online "$@" 2>&1); RC=$?
    echo "$OUT" >"$TMP/migrate-$from-$to.log"
    check "migrate $from -> $to $*: TASK OK" bash -c "[ $RC = 0 ] && [ \"\$(tail -1 <<<\"\$0\")\" = 'TASK OK' ]" "$OUT"
    check "  on $to: running there, verify ok" runs_and_verifies 100 "$to"
    check "  one tern-vmm for vm 100" [ "$(vmm_count 100)" = 1 ]
    note "$(grep -E 'average migration speed|downtime [0-9.]+ ms:' <<<"$OUT" | tr '\n' ' ')"
}
migrate_ok n1 n2
check "task log: start line, progress, speed and downtime" \
    bash -c "grep -q \"starting migration of vm 100 from node 'n1' to node 'n2'\" \"\$0\" &&
             grep -q ' pass 1: ' \"\$0\" && grep -q ' average migration speed: .* - downtime' \"\$0\"" \
    "$TMP/migrate-n1-n2.log"
check "migrate prints the task id once" [ "$(grep -c 'UPID:' "$TMP/migrate-n1-n2.log")" = 1 ]
check "task log lines carry a timestamp, but the last (TASK OK)" \
    bash -c "sed '1d;\$d' \"\$0\" | grep -Evq '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} ' && exit 1;
             [ \"\$(tail -1 \"\$0\")\" = 'TASK OK' ]" "$TMP/migrate-n1-n2.log"
check "no 'transferred X of Y' past the RAM in the log" bash -c "! grep -q 'transferred .* of ' \"\$0\"" \
    "$TMP/migrate-n1-n2.log"
UPID=$(head -1 "$TMP/migrate-n1-n2.log" | grep -o 'UPID:[^ ]*')
check "task log --output json: lines with time and text, and the figures" \
    bash -c "$TERN --config $TMP/n3.conf task log '$UPID' --output json |
             jq -e '(.lines[0].time | test(\"^[0-9-]{10} [0-9:]{8}\$\")) and .lines[-1].text == \"TASK OK\" and
                    .lines[-1].time == null and .status == \"OK\" and .figures.passes >= 1 and
                    .figures.transferred > 0 and (.figures.downtime_ms | type == \"number\")' >/dev/null"
check "heartbeat continues from n1 to n2" \
    bash -c "cat '$(console_of n1 100)' '$(console_of n2 100)' | grep -Eo '^HB [0-9]+' | cut -d' ' -f2 |
             awk 'NR > 1 && \$1 != prev + 1 { bad = 1 } { prev = \$1 } END { exit bad }'"
check "uptime goes on across the migration (the guest did not reboot)" \
    bash -c "[ \$($TERN --config $TMP/n1.conf vm show 100 --output json | jq .uptime_s) -ge 3 ]"
migrate_ok n2 n3 --migration-type insecure
migrate_ok n3 n1 --migration-network 127.0.1.0/24
check "migration network: the address in 127.0.1.0/24 was used" \
    grep -q "to node 'n1' (127.0.1.51)" "$TMP/migrate-n3-n1.log"
check "cluster set migration type=insecure,network=127.0.1.0/24" \
    tern_on n2 cluster set migration type=insecure,network=127.0.1.0/24
OUT=$(tern_on n2 vm migrate 100 n2 --online 2>&1)
check "the cluster defaults apply: insecure, over 127.0.1.52" \
    bash -c "grep -q 'migration type insecure' <<<\"\$0\" && grep -q \"(127.0.1.52)\" <<<\"\$0\"" "$OUT"
tern_on n2 cluster set migration type=secure,network=none >/dev/null
check "vm console from another node (forwarded to the owner)" \
    wait_rc 10 0 bash -c "$TERN --config $TMP/n3.conf vm console 100 --no-follow | grep -q '^VERIFY ok'"
FROM=$(vm_field 100 node)
OUT=$(tern_on n2 vm migrate 100 auto --online 2>&1); RC=$?
check "auto: moved to another node, the one with the most free memory that passes" \
    bash -c "[ $RC = 0 ] && grep -q 'TASK OK' <<<\"\$0\" && ! grep -q \"to node '$FROM'\" <<<\"\$0\"" "$OUT"
NODE=$(vm_field 100 node)
check "after auto: vm 100 runs on $NODE and verifies" verify_on "$NODE" 100

# offline: stopped, moved, started on the new node
TO=$( [ "$NODE" = n2 ] && echo n3 || echo n2 )
check_out "vm stop 100" tern_on n1 vm stop 100
check "stopped: no tern-vmm for vm 100" [ "$(vmm_count 100)" = 0 ]
OUT=$(tern_on n1 vm migrate 100 "$TO" 2>&1); RC=$?
check "offline migration to $TO: TASK OK" bash -c "[ $RC = 0 ] && grep -q 'offline migration' <<<\"\$0\"" "$OUT"
check "offline: owner is $TO, stopped" vm_on 100 "$TO" stopped
check_out "vm start 100 (from n1, forwarded to $TO)" tern_on n1 vm start 100
check "started on $TO: verify ok" verify_on "$TO" 100

check "task list shows the migrations" \
    bash -c "$TERN --config $TMP/n2.conf task list --vmid 100 --output json | jq -e '[.tasks[] | select(.type == \"migrate\")] | length >= 3' >/dev/null"
check "vm destroy refuses a running vm" bash -c "! $TERN --config $TMP/n1.conf vm destroy 100 2>/dev/null"
check "vm destroy 102" tern_on n1 vm destroy 102

n1_records=$(tern_on n2 task list --node n1 --limit 1000 --output json | jq '.tasks | length')
n1_logs=$(ls "$TMP/n1/data/tasks/" | wc -l)
check "task records pruned to task_records (n1: $n1_records records in etcd, $n1_logs logs kept)" \
    bash -c "[ $n1_records -le 3 ] && [ $n1_logs -gt 3 ]"
