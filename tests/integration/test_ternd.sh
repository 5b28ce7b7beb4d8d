# ternd and tern against a real three-node cluster: three ternd on
# 127.0.0.11-13, each starting its own etcd member (ports 23791/23801, apart
# from test_cluster_etcd's 2379/2380 so the two never collide), then the CLI
# through the REST API: status and node list, a node killed with SIGKILL
# going offline within its TTL, etcd supervision, quorum lost and regained,
# a wrong token, a config with a key missing.
BUILD=${BUILD:-build}
. tests/integration/lib.sh
TERND=$BUILD/ternd
TERN=$BUILD/tern
TTL=3
declare -A TD_PID=()

for bin in "$TERND" "$TERN"; do
    [ -x "$bin" ] || { not_ok "$bin is missing (make all)"; exit 1; }
done
[ -x "${TERN_ETCD:-/usr/bin/etcd}" ] || { not_ok "etcd is missing (scripts/install-deps)"; exit 1; }

# Graceful first (ternd stops its etcd), SIGKILL for what is left; etcd
# members die with their ternd (PR_SET_PDEATHSIG) in any case.
stop_all() {
    local n pid
    for n in "${!TD_PID[@]}"; do kill -TERM "${TD_PID[$n]}" 2>/dev/null; done
    for n in "${!TD_PID[@]}"; do
        pid=${TD_PID[$n]}
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
    done
    wait 2>/dev/null
    TD_PID=()
}
trap 'stop_all; cleanup' EXIT

write_conf() {   # NAME I [skip-key]
    local n=$1 i=$2 skip=${3:-}
    mkdir -p "$TMP/$n"
    {
        echo "# ternd test config of $n"
        echo "name = $n"
        echo "cluster_address = http://127.0.0.1$i:23791"
        echo "peer_address = http://127.0.0.1$i:23801"
        echo "initial_cluster = n1=http://127.0.0.11:23801,n2=http://127.0.0.12:23801,n3=http://127.0.0.13:23801"
        echo "migration_address = 127.0.0.1$i:7000"
        echo "data_dir = $TMP/$n/data"
        echo "api_address = 127.0.0.1$i:18006"
        echo "heartbeat_ttl_s = $TTL"
        echo "etcd_election_ms = 500"
    } | grep -v "^$skip =" >"$TMP/$n.conf"
}

start_ternd() { "$TERND" --config "$TMP/$1.conf" 2>>"$TMP/$1.log" & TD_PID[$1]=$!; }
etcd_pid() { pgrep -P "${TD_PID[$1]}" -x etcd; }
tern_on() { local n=$1; shift; "$TERN" --config "$TMP/$n.conf" "$@"; }

# wait_ok_match SECONDS REGEX CMD...: until CMD exits 0 with a line matching
# REGEX (a member's status can lag the quorum read by a moment).
wait_ok_match() {
    local deadline=$(( $(now_ms) + $1 * 1000 )) re=$2; shift 2
    while :; do
        OUT=$("$@" 2>&1); RC=$?
        [ "$RC" -eq 0 ] && grep -Eq -- "$re" <<<"$OUT" && return 0
        [ "$(now_ms)" -ge $deadline ] && return 1
        sleep 0.2
    done
}
online_count() { grep -c ' online ' <<<"$OUT"; }

# --- a config key missing: one line naming it, no etcd started
write_conf bad 9 data_dir
"$TERND" --config "$TMP/bad.conf" >"$TMP/bad.out" 2>&1; RC=$?
check "ternd refuses a config without data_dir (exit $RC)" [ "$RC" -eq 1 ]
check "and says which key in one line" \
    bash -c "[ \$(wc -l <'$TMP/bad.out') -eq 1 ] && grep -q \"missing key 'data_dir'\" '$TMP/bad.out'"
note "$(cat "$TMP/bad.out")"

# --- three nodes
t0=$(now_ms)
for i in 1 2 3; do write_conf "n$i" "$i"; start_ternd "n$i"; done
wait_rc 30 0 tern_on n1 cluster status
check "tern cluster status: quorate yes (after $(( $(now_ms) - t0 )) ms)" \
    grep -q '^quorate:  yes' <<<"$OUT"
# the third member may answer a moment after quorum
wait_ok_match 10 '3 known, 3 reachable' tern_on n1 cluster status
check "3 members, 3 reachable, a leader" \
    bash -c "grep -q '3 known, 3 reachable' <<<'$OUT' && ! grep -q '^leader:   none' <<<'$OUT'"
deadline=$(( $(now_ms) + 10000 ))
while OUT=$(tern_on n2 node list 2>&1); [ "$(online_count)" -lt 3 ] && [ "$(now_ms)" -lt $deadline ]; do
    sleep 0.2
done
check "tern node list: 3 nodes online" [ "$(online_count)" -eq 3 ]
echo "$OUT" | sed 's/^/# /'
JSON=$(tern_on n3 node list --output json)
check "node list --output json: 3 online, cpu model and memory" \
    bash -c "[ \$(grep -c '\"online\": true' <<<'$JSON') -eq 3 ] &&
             grep -q '\"cpu_model\"' <<<'$JSON' && grep -q '\"memory_free\"' <<<'$JSON'"
check "admin token file is mode 600" [ "$(stat -c %a "$TMP/n1/data/admin.token")" = 600 ]

# --- SIGKILL one ternd: its etcd goes with it, the node goes offline by TTL
E1=$(etcd_pid n1)
kill -9 "${TD_PID[n1]}"; wait "${TD_PID[n1]}" 2>/dev/null; unset "TD_PID[n1]"
t0=$(now_ms)
for _ in $(seq 50); do kill -0 "$E1" 2>/dev/null || break; sleep 0.1; done
check "etcd of n1 died with its ternd" bash -c "! kill -0 $E1 2>/dev/null"
deadline=$(( t0 + (TTL + 3) * 1000 ))
while OUT=$(tern_on n2 node list 2>&1); ! grep -q '^n1 .* offline ' <<<"$OUT" && [ "$(now_ms)" -lt $deadline ]; do
    sleep 0.2
done
check "n1 offline within ttl $TTL s + 3 s (after $(( $(now_ms) - t0 )) ms)" \
    bash -c "grep -q '^n1 .* offline ' <<<'$OUT' && [ \$(grep -c ' online ' <<<'$OUT') -eq 2 ]"
wait_ok_match 10 '2 reachable' tern_on n2 cluster status
check "still quorate with 2 of 3" \
    bash -c "grep -q '^quorate:  yes' <<<'$OUT' && grep -q '3 known, 2 reachable' <<<'$OUT'"

# --- ternd restarts its etcd member when it dies, and logs why
E2=$(etcd_pid n2)
kill -9 "$E2"
check "ternd n2 logs why etcd went" wait_for "$TMP/n2.log" 'killed by signal 9.*restarting' 5
wait_ok_match 15 '2 reachable' tern_on n3 cluster status
note "etcd n2: pid $E2 before, $(etcd_pid n2) now; $(grep -E '^(quorate|members):' <<<"$OUT" | tr '\n' ' ')"
check "etcd of n2 restarted (new pid), quorate again" \
    bash -c "p=\$(pgrep -P ${TD_PID[n2]} -x etcd) && [ \"\$p\" != $E2 ] && grep -q '2 reachable' <<<'$OUT'"

# --- a second member stops answering: no majority
E2=$(etcd_pid n2)
kill -STOP "$E2"
t0=$(now_ms)
tern_on n3 cluster status >"$TMP/st.out" 2>&1; RC=$?
check "without a majority: cluster status exits 3 (after $(( $(now_ms) - t0 )) ms)" [ "$RC" -eq 3 ]
check "and says quorate no" grep -q '^quorate:  no (cluster not quorate)' "$TMP/st.out"
tern_on n3 node list >"$TMP/nl.out" 2>"$TMP/nl.err"; RC=$?
check "node list still shows the local view, marked stale, exit 3" \
    bash -c "[ $RC -eq 3 ] && grep -q '^n3 ' '$TMP/nl.out' && grep -q 'stale' '$TMP/nl.err'"
kill -CONT "$E2"
t0=$(now_ms)
wait_rc 15 0 tern_on n3 cluster status
check "member back: quorate yes again (after $(( $(now_ms) - t0 )) ms)" grep -q '^quorate:  yes' <<<"$OUT"

# --- authentication
echo 0000 >"$TMP/wrong.token"
tern_on n3 --token-file "$TMP/wrong.token" node list >/dev/null 2>"$TMP/auth.err"; RC=$?
check "wrong token: exit 1 and one clear line" \
    bash -c "[ $RC -eq 1 ] && [ \$(wc -l <'$TMP/auth.err') -eq 1 ] && grep -q 'unauthorized' '$TMP/auth.err'"
note "$(cat "$TMP/auth.err")"
CODE=$(curl -s -o "$TMP/401.json" -w '%{http_code}' --noproxy '*' \
    --cacert "$TMP/n3/data/tls/cert.pem" https://127.0.0.13:18006/api/v1/nodes)
check "no token: http 401 with a json error" \
    bash -c "[ '$CODE' = 401 ] && grep -q '\"error\"' '$TMP/401.json'"
CODE=$(curl -s -o /dev/null -w '%{http_code}' --noproxy '*' \
    --cacert "$TMP/n3/data/tls/cert.pem" -H "Authorization: Bearer $(cat "$TMP/n3/data/admin.token")" \
    https://127.0.0.13:18006/api/v1/version)
check "right token over verified https: http 200" [ "$CODE" = 200 ]
tern_on n3 frobnicate now >/dev/null 2>&1; RC=$?
check "unknown command: exit 2" [ "$RC" -eq 2 ]

# --- graceful stop: nothing left behind
P2=${TD_PID[n2]} P3=${TD_PID[n3]}
stop_all
check "ternd stops its etcd on SIGTERM" bash -c "! pgrep -P $P2 >/dev/null && ! pgrep -P $P3 >/dev/null"
# "[n]": the pattern must not match the command line of this check itself
check "no etcd of this test left running" bash -c "! pgrep -f -- '--data-dir $TMP/[n]' >/dev/null"
