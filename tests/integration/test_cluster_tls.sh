# etcd with TLS and client certificates, one-time join tokens, and nodes
# leaving (docs/cluster.md, "TLS and client certificates", "Leaving"):
# n2 joins with a join token, which then admits nobody else (n3 with it is
# refused and stays out); etcd's client and peer ports refuse a client
# without a certificate, with one from another CA, and plain http, and
# answer one with a cluster certificate (so the refusals are real); a
# member with http:// addresses is refused; `cluster leave` is refused
# while the node owns a VM (named), then leaves a 2-node cluster quorate,
# and the node joins again; a dead node is removed with `node remove`
# (refused while online, and while it owns a VM), leaving a quorate
# 2-node cluster; a member of a static cluster without TLS refuses to start
# with https:// addresses on its old data. No guest runs: VMs are only
# defined.
NET=127.0.0.9
. tests/integration/cluster_lib.sh

command -v openssl >/dev/null || { not_ok "openssl is missing (scripts/install-deps)"; exit 1; }
for n in n1 n2 n3; do write_conf $n; start_node $n; done
wait_rc 20 3 tern_on n1 cluster status
check_out "n1 creates cluster 'sec'" tern_on n1 cluster create sec
wait_rc 20 0 tern_on n1 cluster status
FP=$(tern_on n1 cluster status --output json | jq -r .fingerprint)
A1="$(node_ip n1):18406"
join_token() { tern_on n1 cluster join-token --output json | jq -r .token; }
members() { tern_on "$1" cluster status --output json | jq .member_count; }
# quorate_with NODE N: NODE's cluster is quorate with N members
quorate_with() { tern_on "$1" cluster status >/dev/null && [ "$(members "$1")" = "$2" ]; }
# no_node NODE NAME: NODE's cluster answers and has no node NAME
no_node() {
    tern_on "$1" node list >/dev/null || return 1
    OUT=$(tern_on "$1" node show "$2" 2>&1)
    [ $? = 1 ] && grep -q "no node '$2' in the cluster" <<<"$OUT"
}
offline() { tern_on n1 node show "$1" --output json | jq -e '.online == false' >/dev/null; }
out_of_cluster() { [ "$(tern_on "$1" cluster status --output json | jq .in_cluster)" = false ]; }
no_etcd_data() { [ -z "$(etcd_of "$1")" ] && [ ! -e "$TMP/$1/data/etcd" ] && [ ! -e "$TMP/$1/data/pki/node.key" ]; }
# refused NAME REGEX CMD...: exit 1 and one line matching REGEX
refused() {
    local name=$1 re=$2; shift 2
    OUT=$("$@" 2>&1); RC=$?
    check "$name ($OUT)" eval '[ $RC = 1 ] && [ "$(wc -l <<<"$OUT")" = 1 ] && grep -Eq -- "$re" <<<"$OUT"'
}

# --- one-time join tokens
JT=$(join_token)
check "join-token: 64 hex characters" eval '[[ "$JT" =~ ^[0-9a-f]{64}$ ]]'
check_out "n2 joins with the join token" tern_on n2 cluster join "$A1" --fingerprint "$FP" --token "$JT"
refused "the join token replayed for n3: refused" \
    "join token refused: unknown, expired or already used" \
    tern_on n3 cluster join "$A1" --fingerprint "$FP" --token "$JT"
check "n3 stays out: in no cluster, no etcd, no certificate" eval 'out_of_cluster n3 && no_etcd_data n3'
check "the cluster keeps 2 members" quorate_with n1 2
check_out "n3 joins with a new join token" tern_on n3 cluster join "$A1" --fingerprint "$FP" --token "$(join_token)"
check "3 nodes online" wait_rc 30 0 node_count_online 3
PKI=$TMP/n1/data/pki
check "node key mode 0600" [ "$(stat -c %a "$PKI/node.key")" = 600 ]
check "node certificate signed by the cluster CA" eval 'openssl verify -CAfile "$PKI/ca.pem" "$PKI/node.pem" >/dev/null'
check "valid for n1's address" eval 'openssl x509 -in "$PKI/node.pem" -noout -ext subjectAltName | grep -q "IP Address:$(node_ip n1)"'

# --- etcd's ports: nothing without a cluster certificate
KEY=$(printf /tern/secret/cluster-token | base64 -w0)
CLIENT="https://$(node_ip n1):27791/v3/kv/range"
PEER="https://$(node_ip n1):27801/members"
range() {   # CURL-ARGS...: the cluster token as read off n1's client port, "" if none
    curl -s --max-time 5 --noproxy '*' "$@" "$CLIENT" -d "{\"key\": \"$KEY\"}" |
        jq -r '.kvs[0].value // empty' 2>/dev/null
}
peer() { curl -sf --http1.1 --max-time 5 --noproxy '*' "$@" "$PEER"; }
MINE=(--cacert "$PKI/ca.pem" --cert "$PKI/node.pem" --key "$PKI/node.key")
check "with n1's certificate the token is readable (so the refusals below are real)" \
    test -n "$(range "${MINE[@]}")"
check "without a client certificate: nothing" test -z "$(range --cacert "$PKI/ca.pem")"
check "without a client certificate, not even checking the server: nothing" test -z "$(range -k)"
# a CA of its own, and a client certificate from it for n1's own name
O=$TMP/other
mkdir -p "$O"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=other-ca \
    -keyout "$O/ca.key" -out "$O/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=n1 \
    -keyout "$O/node.key" -out "$O/node.csr" 2>/dev/null
printf 'subjectAltName=IP:%s,IP:127.0.0.1\nextendedKeyUsage=clientAuth,serverAuth\n' "$(node_ip n1)" >"$O/ext"
openssl x509 -req -in "$O/node.csr" -CA "$O/ca.pem" -CAkey "$O/ca.key" -CAcreateserial -days 1 \
    -extfile "$O/ext" -out "$O/node.pem" 2>/dev/null
check "the other CA's certificate is made" test -s "$O/node.pem"
check "a client certificate from another CA: nothing" \
    test -z "$(range -k --cert "$O/node.pem" --key "$O/node.key")"
check "plain http on the client port: nothing" \
    eval '! curl -s --max-time 5 --noproxy "*" "http://$(node_ip n1):27791/v3/kv/range" -d "{\"key\": \"$KEY\"}" | grep -q kvs'
check "the peer port with a cluster certificate answers (so the refusals below are real)" \
    eval 'peer "${MINE[@]}" | grep -q n2'
check "the peer port without a certificate: refused" eval '! peer -k'
check "the peer port with another CA's certificate: refused" \
    eval '! peer -k --cert "$O/node.pem" --key "$O/node.key"'

# --- leave
tern_on n1 storage add img --path "$TMP/img" >/dev/null
tern_on n3 vm create 100 --memory 64 --cpus 1 --kernel "$GUEST" --disk img:4 >/dev/null
refused "leave while n3 owns vm 100: refused, naming it" "node 'n3' owns vm 100" tern_on n3 cluster leave
check "and n3 is still a member" quorate_with n1 3
tern_on n3 vm destroy 100 >/dev/null
E3=$(etcd_of n3)
check_out "n3 leaves" tern_on n3 cluster leave
check "n1: a quorate cluster of 2 members" wait_rc 15 0 quorate_with n1 2
check "n3 is no node of the cluster any more" no_node n1 n3
check "n3: in no cluster" out_of_cluster n3
check "n3: its etcd stopped, etcd data and certificate gone" eval '! kill -0 "$E3" 2>/dev/null && no_etcd_data n3'
check_out "a write on the 2-node cluster works" tern_on n2 storage add after-leave --path "$TMP/img2"
check_out "n3 joins again with a new join token" \
    tern_on n3 cluster join "$A1" --fingerprint "$FP" --token "$(join_token)"
check "3 nodes online again" wait_rc 30 0 node_count_online 3

# --- node remove
refused "node remove of an online node: refused, says to leave" \
    "node 'n2' is online: run 'tern cluster leave' on it" tern_on n1 node remove n2
check_out "vm 101 defined on n2" tern_on n2 vm create 101 --memory 64 --cpus 1 --kernel "$GUEST"
kill_node n2
check "n2 offline" wait_rc 20 0 offline n2
refused "node remove of n2 while it owns vm 101: refused, naming it" "node 'n2' owns vm 101" \
    tern_on n1 node remove n2
start_node n2
check "n2 back" wait_rc 30 0 node_count_online 3
check_out "vm 101 destroyed" tern_on n2 vm destroy 101
kill_node n2
check "n2 offline again" wait_rc 20 0 offline n2
check_out "node remove n2 (dead, owns nothing)" tern_on n1 node remove n2
check "n1 and n3: a quorate cluster of 2 members" wait_rc 15 0 quorate_with n3 2
check "n2 is no node of the cluster any more" no_node n3 n2
check_out "a write on the 2-node cluster works" tern_on n3 storage add after-remove --path "$TMP/img3"
refused "node remove again: refused, no such member" "no etcd member called 'n2'" \
    tern_on n1 node remove n2

# --- a member with http:// addresses cannot join a cluster with TLS
write_conf n4
sed -i 's|https://|http://|' "$TMP/n4.conf"
start_node n4
wait_rc 20 3 tern_on n4 cluster status
refused "a node with http:// addresses cannot join: refused, says why" \
    "runs etcd with TLS and client certificates" \
    tern_on n4 cluster join "$A1" --fingerprint "$FP" --token "$(join_token)"

# --- a member of a cluster without TLS does not start as one with TLS
kill_node n4
write_conf n5
sed -i 's|https://|http://|' "$TMP/n5.conf"
echo "initial_cluster = n5=http://$(node_ip n5):27801" >>"$TMP/n5.conf"
start_node n5
check "a static cluster without TLS runs" wait_rc 20 0 tern_on n5 cluster status
check "and its ternd says that etcd is open" grep -q 'etcd without TLS (http:// addresses): anyone who reaches' "$TMP/n5.log"
kill -TERM "${TD_PID[n5]}"; wait "${TD_PID[n5]}" 2>/dev/null; unset "TD_PID[n5]"
sed -i 's|http://|https://|g' "$TMP/n5.conf"
OUT=$(timeout 30 "$TERND" --config "$TMP/n5.conf" 2>&1); RC=$?
check "switched to https:// on that data: ternd refuses to start, says why" \
    eval '[ $RC = 1 ] && grep -q "a member of a cluster without TLS cannot switch to https in place" <<<"$OUT"'
note "$(tail -1 <<<"$OUT")"
