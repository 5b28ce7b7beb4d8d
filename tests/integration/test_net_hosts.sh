#!/bin/bash
# Two "hosts" as network namespaces, each with a ternd (and its etcd
# member) and a bridge vmbr0; the bridges are joined by a veth pair (the
# switch link), the pinger sits in a third namespace on host A's bridge.
# A second veth pair between the hosts carries their management addresses
# (etcd, the API, the migration stream). A VM on vmbr0 migrates live with
# `tern vm migrate --online` A to B and back while pinged every 10 ms:
# the lost answers and the gap between the two answers around the pause,
# against the downtime in the task log; then idle (pinged once before, then from the
# end on) A to B with the announce (it answers at once) and back without
# it (tern-vmm's `announce=off`, through a vmm_binary wrapper): host A's
# bridge goes on sending to the switch link until it forgets the MAC.
# Last, host A deletes the VM's TAP under it.
#
# Every address is inside the namespaces this suite makes: ${PFX}-a-PID,
# ${PFX}-b-PID, ${PFX}-p-PID (TERN_NS_PREFIX, default "tern"), removed at
# the end. The suite itself runs where it is started.
NET=unused
. tests/integration/cluster_lib.sh

PFX=${TERN_NS_PREFIX:-tern}
NS_A=$PFX-a-$$ NS_B=$PFX-b-$$ NS_P=$PFX-p-$$
MGMT_A=10.94.0.1 MGMT_B=10.94.0.2
PINGER_IP=10.95.0.1 VM_IP=10.95.0.2
AGEING_S=5   # the bridges forget a MAC after this (default 300 s)

del_ns() { for ns in $NS_A $NS_B $NS_P; do ip netns del "$ns" 2>/dev/null; done; }
trap 'stop_all; cleanup; del_ns' EXIT
in_a() { ip netns exec "$NS_A" "$@"; }
in_b() { ip netns exec "$NS_B" "$@"; }
in_p() { ip netns exec "$NS_P" "$@"; }
ns_of() { [ "$1" = n1 ] && echo "$NS_A" || echo "$NS_B"; }

rig() {
    local ns
    for ns in $NS_A $NS_B $NS_P; do
        ip netns add "$ns" && ip netns exec "$ns" ip link set lo up || return 1
    done
    # management: mA (host A) <-> mB (host B)
    ip link add mA netns "$NS_A" type veth peer name mB netns "$NS_B" || return 1
    in_a ip addr add $MGMT_A/24 dev mA && in_a ip link set mA up &&
        in_b ip addr add $MGMT_B/24 dev mB && in_b ip link set mB up || return 1
    # the switch link lA <-> lB, and the pinger's port pA on host A
    ip link add lA netns "$NS_A" type veth peer name lB netns "$NS_B" &&
        ip link add p0 netns "$NS_P" type veth peer name pA netns "$NS_A" || return 1
    for ns in $NS_A $NS_B; do
        ip netns exec "$ns" ip link add vmbr0 type bridge ageing_time $((AGEING_S * 100)) &&
            ip netns exec "$ns" ip link set vmbr0 up || return 1
    done
    in_a ip link set lA master vmbr0 && in_a ip link set lA up &&
        in_b ip link set lB master vmbr0 && in_b ip link set lB up &&
        in_a ip link set pA master vmbr0 && in_a ip link set pA up &&
        in_p ip addr add $PINGER_IP/24 dev p0 && in_p ip link set p0 up
}
check "the rig: hosts A and B, the switch link, the pinger's namespace" rig

# The cluster rig of cluster_lib.sh, two nodes, each ternd in its host's
# namespace; tern-vmm through a wrapper that adds announce=off to every
# NIC while $TMP/no-announce exists
node_ip() { [ "$1" = n1 ] && echo $MGMT_A || echo $MGMT_B; }
cat >"$TMP/vmm-wrap" <<EOF
#!/bin/bash
if [ -e "$TMP/no-announce" ]; then
    args=()
    for a in "\$@"; do [[ \$a == tap=* ]] && a+=,announce=off; args+=("\$a"); done
    set -- "\${args[@]}"
fi
exec "$PWD/$VMM" "\$@"
EOF
chmod +x "$TMP/vmm-wrap"
CONF_EXTRA="bridges = vmbr0
vmm_binary = $TMP/vmm-wrap"
start_node() { ip netns exec "$(ns_of "$1")" "$TERND" --config "$TMP/$1.conf" 2>>"$TMP/$1.log" & TD_PID[$1]=$!; }
tern_on() { local n=$1; shift; ip netns exec "$(ns_of "$n")" "$TERN" --config "$TMP/$n.conf" "$@"; }
two_nodes_up() {
    local n fp
    for n in n1 n2; do write_conf $n; start_node $n; done
    wait_rc 20 3 tern_on n1 cluster status || return 1
    tern_on n1 cluster create hosts >"$TMP/create.out" 2>&1 || return 1
    wait_rc 20 0 tern_on n1 cluster status || return 1
    fp=$(tern_on n1 cluster status --output json | jq -r .fingerprint)
    tern_on n2 cluster join "$MGMT_A:18406" --fingerprint "$fp" \
        --token-file "$TMP/n1/data/admin.token" >"$TMP/join-n2.out" 2>&1 || return 1
    wait_rc 30 0 node_count_online 2
}
check "two nodes, each in its host's namespace, one cluster" two_nodes_up

CMD="tern.ip=$VM_IP/24 tern.hb=100"
check_out "vm 300 with a nic on vmbr0 starts on n1" \
    tern_on n1 vm create 300 --memory 64 --cpus 1 --kernel "$GUEST" --cmdline "$CMD" \
    --net bridge=vmbr0 --start
check "vm 300 runs on n1" vm_on 300 n1
MAC=$(vm_field 300 "config.nets[0].mac")
check "its tap tern300i0 is on host A's vmbr0" \
    in_a bash -c '[ "$(basename "$(readlink /sys/class/net/tern300i0/master)")" = vmbr0 ]'
check "the guest's nic is up" wait_for "$(console_of n1 300)" "^NET up .* ip=$VM_IP/24" 20
in_p ping -q -c 50 -i 0.01 -W 5 $VM_IP >"$TMP/ping0" 2>&1
check "the pinger reaches it on host A: 50 pings, 50 answers" \
    grep -q '50 packets transmitted, 50 received' "$TMP/ping0"

# ping_figures FILE AT T1: lost answers among the requests up to the last
# answered one; the gap between the two answers around AT (unix ms: the
# destination's state load, inside the pause), the longest elsewhere (the
# noise of a loaded host); answers after T1
ping_figures() {
    awk -v at="$2" -v t1="$3" '/bytes from/ {
            t = substr($1, 2, length($1) - 2) * 1000
            split($0, a, "icmp_seq="); split(a[2], b, " "); seq = b[1] + 0
            if (n++) { g = t - prev; if (prev <= at && t > at) gap = g
                       else if (g > noise) noise = g }
            if (t > t1) after++
            prev = t; got[seq] = 1; if (seq > last) last = seq
        }
        END { for (s = 1; s <= last; s++) if (!(s in got)) lost++
              printf "%d %.1f %.1f %d\n", lost, gap, noise, after }' "$1"
}

# migrate_pinging VM TARGET SECONDS-AFTER: `tern vm migrate --online` from
# n1 while the pinger pings every 10 ms from a second before to SECONDS
# after. LOST, GAP (across the pause: around the destination NIC's
# loaded_at_us), NOISE, AFTER (answers after the command), DOWNTIME (the
# task log's), LOG (its file)
migrate_pinging() {
    local vm=$1 to=$2 after=$3 from t0 t1
    from=$([ "$to" = n1 ] && echo n2 || echo n1)
    # directly, not through in_p: a background subshell ignores SIGINT
    ip netns exec "$NS_P" ping -D -O -i 0.01 $VM_IP >"$TMP/ping-$to" 2>&1 &
    local pinger=$!
    sleep 1
    t0=$(now_ms)
    check_out "vm migrate $vm $to --online" tern_on n1 vm migrate "$vm" "$to" --online
    t1=$(now_ms)
    sleep "$after"
    kill -INT $pinger; wait $pinger 2>/dev/null
    LOG=$(task_log_file "$from")
    DOWNTIME=$(grep -Eo 'downtime [0-9.]+ ms:' "$LOG" | head -1 | grep -Eo '[0-9.]+')
    local loaded
    loaded=$("$CTL" "$TMP/$to/data/run/$vm/control.sock" '{"cmd":"status"}' |
        jq '.devices[] | select(.type == "virtio-net") | .loaded_at_us / 1000')
    check "$to's nic says when the state loaded ($loaded)" [ -n "$loaded" ]
    read -r LOST GAP NOISE AFTER < <(ping_figures "$TMP/ping-$to" "${loaded:-0}" "$t1")
    note "$from->$to: downtime ${DOWNTIME:-?} ms, gap $GAP ms, $LOST lost (longest gap elsewhere $NOISE ms); $(grep -o 'network: net0.*' "$LOG")"
    note "  $(grep -o 'downtime [0-9.]* ms: .*' "$LOG"); the commit's etcd transaction $(grep -Eo 'etcd [0-9.]+ ms' "$LOG")"
}

# at most 2 lost outside the pause: the requests of the downtime are
# lost (each host's TAP drops what came before the commit)
lost_ok() { [ "$LOST" -le $(( ${DOWNTIME%.*} / 10 + 3 )) ]; }
gap_ok() { awk "BEGIN { exit !($GAP <= $DOWNTIME + 200) }"; }

# to host B: the announce must cross the switch link to the pinger's bridge
migrate_pinging 300 n2 1
check "vm 300 runs on n2" vm_on 300 n2
check "A to B: answers go on from host B, across the switch link ($AFTER)" [ "$AFTER" -ge 20 ]
check "A to B: gap $GAP ms <= downtime $DOWNTIME ms + 200 ms" gap_ok
check "A to B: at most 2 lost outside the pause ($LOST lost)" lost_ok
check "n2 announced the vm on its tap" \
    grep -q "announced $MAC on tap 'tern300i0'" "$TMP/n2/data/run/300/vmm.log"
check "n1 removed its tap once the vm left" wait_rc 10 1 in_a test -e /sys/class/net/tern300i0

migrate_pinging 300 n1 1
check "vm 300 runs on n1 again" vm_on 300 n1
check "B to A: answers go on from host A ($AFTER)" [ "$AFTER" -ge 20 ]
check "B to A: gap $GAP ms <= downtime $DOWNTIME ms + 200 ms" gap_ok
check "B to A: at most 2 lost outside the pause ($LOST lost)" lost_ok

# An idle VM (one that is pinged announces itself with its first answer
# from the destination: requests it had not answered at the pause wait in
# its queue) is out of reach from the pinger's side after a migration
# without the announce until the bridges forget where it was. One ping
# before the migration, the pinger from its end on: UNREACH (ms from the
# last answer before to the first after), FIRST (from the migration's
# end), ANSWERS
stamp_ms() { awk '/bytes from/ { printf "%.0f\n", substr($1, 2, length($1) - 2) * 1000; exit }' "$1"; }
migrate_idle() {
    local to=$1 seconds=$2 t1 last first
    in_p ping -D -c 1 -W 2 $VM_IP >"$TMP/ping-last" 2>&1
    check_out "vm migrate 300 $to --online (idle)" tern_on n1 vm migrate 300 "$to" --online
    t1=$(now_ms)
    ip netns exec "$NS_P" ping -D -O -i 0.01 $VM_IP >"$TMP/ping-idle" 2>&1 &
    local pinger=$!
    sleep "$seconds"
    kill -INT $pinger; wait $pinger 2>/dev/null
    last=$(stamp_ms "$TMP/ping-last")
    first=$(stamp_ms "$TMP/ping-idle")
    UNREACH=$(( ${first:-0} - ${last:-0} )) FIRST=$(( ${first:-0} - t1 ))
    ANSWERS=$(grep -c 'bytes from' "$TMP/ping-idle")
}

# with the announce: the RARP from host B's TAP crosses the switch link to
# the pinger's bridge, and the VM answers at once
migrate_idle n2 1
check "vm 300 runs on n2 (idle)" vm_on 300 n2
note "idle, with the announce: first answer $FIRST ms after the migration's end, none for $UNREACH ms"
check "idle, with the announce: answers at once ($FIRST ms < 1 s)" [ "$FIRST" -lt 1000 ]
check "idle, with the announce: answers go on ($ANSWERS)" [ "$ANSWERS" -ge 20 ]
ON=$UNREACH

# without: host A's bridge goes on sending to the switch link, where it last
# saw the VM, until it forgets (AGEING_S)
touch "$TMP/no-announce"
migrate_idle n1 $((AGEING_S + 1))
check "vm 300 runs on n1 (idle, no announce)" vm_on 300 n1
check "no announce: n1 sent no rarp" \
    grep -q "not announcing $MAC on tap 'tern300i0'" "$TMP/n1/data/run/300/vmm.log"
note "idle, without the announce: first answer $FIRST ms after the migration's end, none for $UNREACH ms (bridge ageing ${AGEING_S} s); with the announce none for $ON ms"
check "no announce: answers come back once the bridge forgot ($ANSWERS)" [ "$ANSWERS" -ge 20 ]
check "no announce: out of reach until then ($UNREACH ms >= ${AGEING_S} s - 0.5 s)" \
    [ "$UNREACH" -ge $(( AGEING_S * 1000 - 500 )) ]
check "no announce: worse than with it ($UNREACH ms > $ON ms)" [ "$UNREACH" -gt "$ON" ]
rm "$TMP/no-announce"

# the host deletes the VM's TAP under it: said once, the VM runs on, and
# ternd's stop does not mind the TAP gone
in_a ip link del tern300i0
in_p ping -q -c 3 -i 0.05 -W 1 $VM_IP >/dev/null 2>&1
check "tap deleted under the vm: it runs on" hb_moves n1 300
check "tap deleted under the vm: logged once" \
    [ "$(grep -c "tap 'tern300i0'.*link down" "$TMP/n1/data/run/300/vmm.log")" = 1 ]
check_out "vm stop 300" tern_on n1 vm stop 300
check "vm 300 stopped" vm_on 300 n1 stopped
