# Clusters made at run time: three ternd without initial_cluster start in
# no cluster (no etcd), n1 creates one through the REST API, n2 and n3 join
# it with n1's address, admin token and fingerprint; a wrong fingerprint is
# refused (502) and leaves the node out; create on a member is a 409; the
# cluster token works between nodes; the node info is refreshed; n3 killed
# with SIGKILL and restarted comes back as a member from its etcd data.
# Addresses 127.0.0.31-33, etcd ports 24791/24801, API port 18106: apart
# from the other tests so that they can run at the same time.
BUILD=${BUILD:-build}
. tests/integration/lib.sh
TERND=$BUILD/ternd
TTL=3
declare -A TD_PID=()

[ -x "$TERND" ] || { not_ok "$TERND is missing (make build/ternd)"; exit 1; }
[ -x "${TERN_ETCD:-/usr/bin/etcd}" ] || { not_ok "etcd is missing (scripts/install-deps)"; exit 1; }
command -v jq >/dev/null || { not_ok "jq is missing"; exit 1; }

# Graceful first (ternd stops its etcd), SIGKILL for what is left; etcd
# members die with their ternd (PR_SET_PDEATHSIG) in any case.
stop_all() {
    local n pid etcds=()
    for n in "${!TD_PID[@]}"; do
        etcds+=($(pgrep -P "${TD_PID[$n]}" -x etcd))
        kill -TERM "${TD_PID[$n]}" 2>/dev/null
    done
    for n in "${!TD_PID[@]}"; do
        pid=${TD_PID[$n]}
        for _ in $(seq 80); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
    done
    for pid in "${etcds[@]}"; do kill -9 "$pid" 2>/dev/null; done
    wait 2>/dev/null
    TD_PID=()
}
trap 'stop_all; cleanup' EXIT

write_conf() {   # NAME I
    local n=$1 i=$2
    mkdir -p "$TMP/$n"
    cat >"$TMP/$n.conf" <<EOF
# ternd test config of $n: no initial_cluster, so in no cluster at first
name = $n
cluster_address = https://127.0.0.3$i:24791
peer_address = https://127.0.0.3$i:24801
migration_address = 127.0.0.3$i:7000
data_dir = $TMP/$n/data
api_address = 127.0.0.3$i:18106
heartbeat_ttl_s = $TTL
etcd_election_ms = 500
EOF
}

start_ternd() { "$TERND" --config "$TMP/$1.conf" 2>>"$TMP/$1.log" & TD_PID[$1]=$!; }
etcd_pid() { pgrep -P "${TD_PID[$1]}" -x etcd; }

# api NODE METHOD PATH [BODY [TOKEN]]: the answer in $OUT, the status in $CODE.
api() {
    local n=$1 m=$2 p=$3 body=${4:-} token=${5:-}
    [ -n "$token" ] || token=$(cat "$TMP/$n/data/admin.token" 2>/dev/null)
    local args=(-s --noproxy '*' --max-time 60 -o "$TMP/api.out" -w '%{http_code}' -X "$m"
                --cacert "$TMP/$n/data/tls/cert.pem" -H "Authorization: Bearer $token")
    [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data "$body")
    CODE=$(curl "${args[@]}" "https://127.0.0.3${n#n}:18106/api/v1$p")
    OUT=$(cat "$TMP/api.out" 2>/dev/null)
}
field() { jq -r "$1" <<<"$OUT"; }
# answer STATUS JQ-CONDITION: the last answer had that status and matches.
answer() { [ "$CODE" = "$1" ] && jq -e "$2" <<<"$OUT" >/dev/null; }
no_etcd() { ! pgrep -P "${TD_PID[$1]}" -x etcd >/dev/null; }

# wait_api SECONDS JQ-CONDITION NODE METHOD PATH: until the answer matches.
wait_api() {
    local deadline=$(( $(now_ms) + $1 * 1000 )) cond=$2; shift 2
    while :; do
        api "$@"
        [ "$(jq -r "$cond" <<<"$OUT" 2>/dev/null)" = true ] && return 0
        [ "$(now_ms)" -ge $deadline ] && return 1
        sleep 0.3
    done
}
FULL='.in_cluster and .quorate and .member_count == 3 and .members_reachable == 3
      and .leader != null and .cluster_name == "testc"'

# --- three nodes in no cluster
for i in 1 2 3; do write_conf "n$i" "$i"; start_ternd "n$i"; done
for n in n1 n2 n3; do wait_api 20 '.node != null' "$n" GET /cluster/status; done
check "in no cluster: status 200, in_cluster false, not quorate, no name" \
    answer 200 '.in_cluster == false and .quorate == false and .cluster_name == null'
check "and says why, with the two ways out" \
    grep -q "this node is in no cluster: 'tern cluster create NAME' or 'tern cluster join ADDRESS'" <<<"$OUT"
check "no etcd runs on a node in no cluster" no_etcd n1
api n1 GET /nodes
check "node list in no cluster: 409 ($CODE)" [ "$CODE" = 409 ]
FP1=$(api n1 GET /cluster/status; field .fingerprint)
FP2=$(api n2 GET /cluster/status; field .fingerprint)
check "status has this node's fingerprint" bash -c "[[ '$FP1' == sha256//* ]] && [ ${#FP1} -eq 52 ]"
TOK1=$(cat "$TMP/n1/data/admin.token")

# --- create on n1
t0=$(now_ms)
api n1 POST /cluster '{"name": "testc"}'
check "create: 200 with cluster_name and node (after $(( $(now_ms) - t0 )) ms)" \
    answer 200 '.cluster_name == "testc" and .node == "n1"'
note "$OUT"
wait_api 10 '.in_cluster and .quorate and .member_count == 1' n1 GET /cluster/status
check "n1: in cluster testc, quorate, 1 member" \
    answer 200 '.in_cluster and .quorate and .member_count == 1 and .cluster_name == "testc"'

# --- bad joins leave the node out
api n3 POST /cluster/join "{\"address\": \"127.0.0.31:18106\", \"token\": \"$TOK1\", \"fingerprint\": \"sha256//nope\"}"
check "join with a malformed fingerprint: 400 ($CODE)" [ "$CODE" = 400 ]
note "$(field .error)"
api n3 POST /cluster/join "{\"address\": \"127.0.0.31:18106\", \"token\": \"$TOK1\", \"fingerprint\": \"$FP2\"}"
check "join with another node's fingerprint: 502 ($CODE)" [ "$CODE" = 502 ]
check "and says the key does not match the fingerprint" grep -q 'does not match the fingerprint' <<<"$OUT"
note "$(field .error)"
api n3 GET /cluster/status
check "n3 stays in no cluster, no etcd" \
    eval 'answer 200 ".in_cluster == false" && no_etcd n3'
api n3 POST /cluster/join "{\"address\": \"127.0.0.31:18106\", \"token\": \"$(tr 0-9a-f 1-9a-f0 <<<"$TOK1")\", \"fingerprint\": \"$FP1\"}"
check "join with a wrong token: refused by n1 ($CODE), n3 still out" \
    eval '[ "$CODE" = 403 ] && no_etcd n3'

# --- n2 joins; n3's etcd cannot start (a binary that exits): the member
# it got added is removed again, and n3 stays out
JOIN1="{\"address\": \"127.0.0.31:18106\", \"token\": \"$TOK1\", \"fingerprint\": \"$FP1\"}"
t0=$(now_ms)
api n2 POST /cluster/join "$JOIN1"
check "n2 joins: 200 (after $(( $(now_ms) - t0 )) ms)" \
    answer 200 '.cluster_name == "testc" and .node == "n2" and .members == 2'
note "$OUT"
kill -TERM "${TD_PID[n3]}"; wait "${TD_PID[n3]}" 2>/dev/null
TERN_ETCD=/bin/false start_ternd n3
wait_api 20 '.node != null' n3 GET /cluster/status
api n3 POST /cluster/join "$JOIN1"
check "join whose etcd does not start: 500 ($CODE), says so, member removed again" \
    answer 500 '.error | test("etcd did not start here.*removed from the cluster again")'
note "$(field .error)"
wait_api 10 '.member_count == 2' n1 GET /cluster/status
check "the cluster has 2 members again, quorate" answer 200 '.quorate and .member_count == 2'
api n3 GET /cluster/status
check "n3 stays in no cluster, its etcd data removed" \
    eval 'answer 200 ".in_cluster == false" && [ ! -e "$TMP/n3/data/etcd" ]'
kill -TERM "${TD_PID[n3]}"; wait "${TD_PID[n3]}" 2>/dev/null
start_ternd n3
wait_api 20 '.node != null' n3 GET /cluster/status

# --- n3 joins through n1 (etcd refuses a second add for 5 s after the
# first while it checks that every member is connected: ternd waits)
t0=$(now_ms)
api n3 POST /cluster/join "$JOIN1"
check "n3 joins: 200 (after $(( $(now_ms) - t0 )) ms)" \
    answer 200 '.cluster_name == "testc" and .node == "n3" and .members == 3'
note "$OUT"
for n in n1 n2 n3; do
    wait_api 20 "$FULL" "$n" GET /cluster/status
    check "$n: cluster testc, 3 members, 3 reachable, quorate, leader $(field .leader)" \
        answer 200 "$FULL"
done
wait_api 15 '[.nodes[] | select(.online)] | length == 3' n2 GET /nodes
check "node list: 3 nodes online" answer 200 '[.nodes[] | select(.online)] | length == 3'

# --- a member cannot create or join again
api n2 POST /cluster '{"name": "other"}'
check "create on a member: 409 naming the cluster ($CODE)" \
    answer 409 ".error == \"node 'n2' is already in cluster 'testc'\""
api n1 POST /cluster/join "{\"address\": \"127.0.0.32:18106\", \"token\": \"$TOK1\", \"fingerprint\": \"$FP2\"}"
check "join on a member: 409 ($CODE)" [ "$CODE" = 409 ]

# --- the cluster token, as etcd holds it, is accepted by every node
KEY=$(printf /tern/secret/cluster-token | base64 -w0)
P2=$TMP/n2/data/pki
CTOK=$(curl -s --noproxy '*' --cacert "$P2/ca.pem" --cert "$P2/node.pem" --key "$P2/node.key" \
       https://127.0.0.32:24791/v3/kv/range -d "{\"key\": \"$KEY\"}" |
       jq -r '.kvs[0].value' | base64 -d)
check "cluster token in etcd: 64 hex" bash -c "[[ '$CTOK' =~ ^[0-9a-f]{64}$ ]]"
ok_all=true
for n in n1 n2 n3; do api "$n" GET /version "" "$CTOK"; [ "$CODE" = 200 ] || ok_all=false; done
check "every node accepts the cluster token" $ok_all
PUB=$(openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 2>/dev/null |
      openssl pkey -pubout | jq -Rs .)
api n1 POST /cluster/members "{\"name\": \"n2\", \"peer_url\": \"https://127.0.0.39:24801\",
    \"client_url\": \"https://127.0.0.39:24791\", \"public_key\": $PUB}" "$CTOK"
check "members add with the cluster token: a name taken is 409 ($CODE)" \
    answer 409 '.error | test("already")'
api n1 POST /cluster/members '{"name": "n9", "peer_url": "http://127.0.0.39:24801"}' "$CTOK"
check "a member with http:// addresses in a cluster with TLS: 409 saying so ($CODE)" \
    answer 409 '.error | test("runs etcd with TLS")'
note "$(field .error)"
api n1 POST /cluster/join "{\"address\": \"127.0.0.32:18106\", \"token\": \"$TOK1\", \"fingerprint\": \"$FP2\"}" "$CTOK"
check "join with the cluster token: 403, admin only ($CODE)" [ "$CODE" = 403 ]

# --- the node info is refreshed every 10 s; "registered" stays
rec() { api n2 GET /nodes; jq -r ".nodes[] | select(.name == \"n1\") | .info.$1" <<<"$OUT"; }
REG=$(rec registered) UPD=$(rec updated)
deadline=$(( $(now_ms) + 15000 ))
while [ "$(rec updated)" = "$UPD" ] && [ "$(now_ms)" -lt $deadline ]; do sleep 0.5; done
check "node info refreshed (updated $UPD -> $(rec updated)), registered kept" \
    bash -c "[ '$(rec updated)' != '$UPD' ] && [ '$(rec registered)' = '$REG' ]"

# --- n3 killed and restarted: back as a member from its etcd data
E3=$(etcd_pid n3)
kill -9 "${TD_PID[n3]}"; wait "${TD_PID[n3]}" 2>/dev/null; unset "TD_PID[n3]"
for _ in $(seq 50); do kill -0 "$E3" 2>/dev/null || break; sleep 0.1; done
check "etcd of n3 died with its ternd" bash -c "! kill -0 $E3 2>/dev/null"
start_ternd n3
t0=$(now_ms)
wait_api 30 "$FULL" n3 GET /cluster/status
check "n3 restarted: a member again, 3 reachable, quorate (after $(( $(now_ms) - t0 )) ms)" \
    answer 200 "$FULL"
check "n3 started from its etcd data" grep -q 'etcd data in .*: starting the member' "$TMP/n3.log"
wait_api $(( TTL + 10 )) '[.nodes[] | select(.online)] | length == 3' n1 GET /nodes
check "n3 online again" answer 200 '.nodes[] | select(.name == "n3") | .online'

# --- graceful stop: nothing left behind
stop_all
check "no etcd of this test left running" bash -c "! pgrep -f -- '--data-dir $TMP/[n]' >/dev/null"
check "no ternd of this test left running" bash -c "! pgrep -f -- '$TMP/[n][0-9].conf' >/dev/null"
