# A three-node tern cluster on one machine for the integration tests: three
# ternd on $NET.1-3 (each with its etcd member), made with `tern cluster
# create` and `tern cluster join`, real tern-vmm processes booting the real
# tern-guest. Node nI has address $NET$I (NET=127.0.0.5: 127.0.0.51..53); every node also has an address in 127.0.1.0/24 (config key
# `addresses`) for the migration-network tests. The caller sets NET
# (e.g. 127.0.0.5) before sourcing; ports 27791/27801 (etcd), 18406 (API),
# 27100+ (migrations).
BUILD=${BUILD:-build}
. tests/integration/lib.sh
TERND=${TERND:-$BUILD/ternd}
TERN=$BUILD/tern
TTL=3
declare -A TD_PID=()

for bin in "$TERND" "$TERN" "$VMM" "$GUEST"; do
    [ -x "$bin" ] || { not_ok "$bin is missing (make all)"; exit 1; }
done
command -v jq >/dev/null || { not_ok "jq is missing (scripts/install-deps)"; exit 1; }

# Everything goes: ternd, their etcd members and every tern-vmm they
# started (those outlive a ternd on purpose).
stop_all() {
    local n pid
    for n in "${!TD_PID[@]}"; do kill -TERM "${TD_PID[$n]}" 2>/dev/null; done
    for n in "${!TD_PID[@]}"; do
        pid=${TD_PID[$n]}
        for _ in $(seq 80); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
    done
    pkill -9 -f -- "--control $TMP/" 2>/dev/null
    pkill -9 -f -- "--data-dir $TMP/" 2>/dev/null
    wait 2>/dev/null
    TD_PID=()
}
trap 'stop_all; cleanup' EXIT

node_ip() { echo "$NET${1#n}"; }
# etcd_curl NODE PATH [CURL-ARGS...]: a call to NODE's etcd gateway with its
# cluster certificate (etcd wants one from every client)
etcd_curl() {
    local n=$1 p=$2 pki="$TMP/$1/data/pki"; shift 2
    curl -s --noproxy '*' --cacert "$pki/ca.pem" --cert "$pki/node.pem" --key "$pki/node.key" \
        "https://$(node_ip "$n"):27791$p" "$@"
}

write_conf() {   # NAME
    local n=$1 ip
    ip=$(node_ip "$n")
    mkdir -p "$TMP/$n"
    cat >"$TMP/$n.conf" <<EOF2
name = $n
cluster_address = https://$ip:27791
peer_address = https://$ip:27801
migration_address = $ip:27100
addresses = $ip,127.0.1.${ip##*.}
data_dir = $TMP/$n/data
api_address = $ip:18406
heartbeat_ttl_s = $TTL
etcd_election_ms = 500
${CONF_EXTRA:-}
EOF2
}

start_node() { "$TERND" --config "$TMP/$1.conf" 2>>"$TMP/$1.log" & TD_PID[$1]=$!; }
kill_node() { kill -9 "${TD_PID[$1]}" 2>/dev/null; wait "${TD_PID[$1]}" 2>/dev/null; unset "TD_PID[$1]"; }
tern_on() { local n=$1; shift; "$TERN" --config "$TMP/$n.conf" "$@"; }
etcd_of() { pgrep -f -- "--data-dir $TMP/$1/data/etcd"; }

# check_out NAME CMD...: check, and on failure the command's output and
# the end of every node's log as notes (so that a rare failure explains
# itself in the test output).
check_out() {
    local name=$1 out rc n; shift
    out=$("$@" 2>&1); rc=$?
    if [ $rc = 0 ]; then ok "$name"; return; fi
    not_ok "$name"
    while IFS= read -r n; do note "  $n"; done <<<"$out"
    for n in n1 n2 n3; do
        [ -f "$TMP/$n.log" ] && tail -4 "$TMP/$n.log" | while IFS= read -r l; do note "  $n: $l"; done
    done
}


# cluster_up NAME: n1 creates the cluster, n2 and n3 join it.
cluster_up() {
    local n fp
    for n in n1 n2 n3; do write_conf $n; start_node $n; done
    wait_rc 20 3 tern_on n1 cluster status || return 1
    tern_on n1 cluster create "$1" >"$TMP/create.out" 2>&1 || return 1
    wait_rc 20 0 tern_on n1 cluster status || return 1
    fp=$(tern_on n1 cluster status --output json | jq -r .fingerprint)
    for n in n2 n3; do
        tern_on $n cluster join "$(node_ip n1):18406" --fingerprint "$fp" \
            --token-file "$TMP/n1/data/admin.token" >"$TMP/join-$n.out" 2>&1 || return 1
    done
    wait_rc 30 0 node_count_online 3
}
node_count_online() {
    [ "$(tern_on n1 node list --output json | jq '[.nodes[] | select(.online)] | length')" = "$1" ]
}

# ---- VMs ----
console_of() { echo "$TMP/$1/data/run/$2/console.log"; }
vm_field() { tern_on n1 vm show "$1" --output json | jq -r ".$2"; }
# vm_on ID NODE [STATUS]: the cluster shows the VM there (the run state
# reaches etcd from ternd's main loop). Waits up to 60 s: a loaded 2-core
# machine starts a VM slowly. On a timeout it notes what it saw and the
# VM's lines in the nodes' logs, so that a failure explains itself.
vm_on() {
    local deadline=$(( $(now_ms) + 60000 )) got
    while [ "$(now_ms)" -lt $deadline ]; do
        got=$(tern_on n1 vm show "$1" --output json 2>&1)
        [ "$(jq -r .node <<<"$got" 2>/dev/null)" = "$2" ] &&
            [ "$(jq -r .status <<<"$got" 2>/dev/null)" = "${3:-running}" ] && return 0
        sleep 0.2
    done
    note "vm $1 not ${3:-running} on $2 in 60 s; vm show: $(jq -c '{node, status}' <<<"$got" 2>/dev/null || echo "$got")"
    vm_log_notes "$1"
    return 1
}
# vm_log_notes ID: the last lines of each node's log that name the VM.
vm_log_notes() {
    local n
    for n in n1 n2 n3; do
        [ -f "$TMP/$n.log" ] || continue
        grep -E "vm[= ]$1\b" "$TMP/$n.log" | tail -6 | while IFS= read -r l; do note "  $n: $l"; done
    done
}
runs_and_verifies() { vm_on "$1" "$2" && verify_on "$2" "$1"; }
# hb_moves NODE ID: the VM's heartbeat goes on in that node's console.
hb_moves() {
    local f n
    f=$(console_of "$1" "$2")
    n=$(grep -Eo '^HB [0-9]+' "$f" 2>/dev/null | tail -1 | cut -d' ' -f2)
    wait_for "$f" "^HB $(( ${n:-0} + 2 )) " 5
}
# verify_on NODE ID: a new VERIFY ok on that node's console, no FAIL.
verify_on() {   # up to 60 s: the first VERIFY after a boot on a loaded machine
    local f n deadline=$(( $(now_ms) + 60000 ))
    f=$(console_of "$1" "$2")
    n=$(grep -c '^VERIFY ok' "$f" 2>/dev/null)
    while [ "$(now_ms)" -lt $deadline ]; do
        grep -q 'VERIFY FAIL' "$f" && return 1
        [ "$(grep -c '^VERIFY ok' "$f")" -gt "${n:-0}" ] && return 0
        sleep 0.1
    done
    return 1
}
# vmm_count ID: how many tern-vmm processes run VM ID in this cluster.
vmm_count() { pgrep -f -- "tern-vmm --name $1 .*$TMP/" | wc -l; }
# task_log_file NODE: the newest task log of that node.
task_log_file() { ls -t "$TMP/$1/data/tasks/"*.log 2>/dev/null | head -1; }
