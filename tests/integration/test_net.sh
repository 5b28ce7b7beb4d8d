#!/bin/bash
# virtio-net on real TAPs and real Linux bridges, in a network namespace
# this suite makes for itself. Two "hosts": bridges brA and brB joined by a
# veth pair (the switch link), tapA on brA, tapB on brB, the pinger on brB's
# address. tern-guest answers ping and UDP echo across both bridges; live
# migrations between tern-vmm on tapA and tapB while pinging every 10 ms
# (lost answers, the gap), and of an idle VM without the announce (the
# switch keeps sending to the old side until its FDB entry ages) and with
# it (answers at once); bad --net options; a TAP deleted under a running VM.
if [ -z "${TERN_NET_NS:-}" ]; then
    # everything below runs inside a namespace of its own, removed at the end
    ns=tern-net-$$
    ip netns add "$ns" || { echo "not ok - test_net: cannot create namespace $ns"; exit 1; }
    ip netns exec "$ns" ip link set lo up
    TERN_NET_NS=$ns ip netns exec "$ns" "$0" "$@"
    rc=$?
    ip netns del "$ns"
    exit $rc
fi
source "$(dirname "$0")/lib.sh"

BR_IP=10.77.0.1
VM_IP=10.77.0.2
AGEING_S=4
ip link add vA type veth peer name vB
for h in A B; do
    ip link add br$h type bridge ageing_time $((AGEING_S * 100))
    ip tuntap add mode tap name tap$h
    ip link set tap$h master br$h
    ip link set v$h master br$h
    ip link set tap$h up
    ip link set v$h up
    ip link set br$h up
done
ip addr add $BR_IP/24 dev brB
GUEST_NET="tern.ip=$VM_IP/24 tern.netstat=1 tern.hb=100"
MAC=52:54:00:77:00:02

# dev_field NAME KEY: a field of the first virtio-net in NAME's status.
dev_field() {
    ctl "$1" '{"cmd":"status"}' | jq -r ".devices[] | select(.type==\"virtio-net\") | .$2"
}
rarps_at_least() { [ "$(dev_field "$1" rarps)" -ge "$2" ]; }

# ---- one VM: ping and UDP echo across both bridges ----
start_vm one --memory 64M --net tap=tapA,mac=$MAC --kernel "$GUEST" --cmdline "$GUEST_NET"
check "guest brings its NIC up with the given mac" \
    wait_for "$TMP/one.console" "^NET up mac=$MAC ip=$VM_IP/24" 10
check "guest sends a gratuitous arp at boot" wait_for "$TMP/one.console" '^NET garp boot' 3
ping -q -c 100 -i 0.01 -W 5 $VM_IP >"$TMP/ping1" 2>&1
note "$(tail -2 "$TMP/ping1" | tr '\n' ' ')"
check "100 pings every 10 ms, 100 answers" grep -q '100 packets transmitted, 100 received' "$TMP/ping1"
rx=$(dev_field one rx_packets)
tx=$(dev_field one tx_packets)
check "the device counted them (rx $rx, tx $tx)" [ "$rx" -ge 101 -a "$tx" -ge 101 ]
reply=$(echo "tern udp echo" | timeout 5 socat -t 2 - UDP:$VM_IP:7)
check "udp echo answers" [ "$reply" = "tern udp echo" ]
check "guest counts icmp and udp" \
    wait_for "$TMP/one.console" '^NET rx=[0-9]+ tx=[0-9]+ arp=[0-9]+ icmp=1[0-9][0-9] udp=1 ' 3
ctl one '{"cmd":"announce"}' >/dev/null
check "announce on demand: the guest's gratuitous arp" \
    wait_for "$TMP/one.console" '^NET garp announce' 3
check "announce on demand: 5 rarps sent" wait_rc 3 0 rarps_at_least one 5

# ---- live migration while pinging every 10 ms ----
start_pinger() { ping -D -O -i 0.01 $VM_IP >"$1" 2>&1 & PINGER=$!; }
stop_pinger() { kill -INT $PINGER; wait $PINGER 2>/dev/null; }
# ping_figures FILE T_MS: lost answers among the requests up to the last
# answered one; the gap between the two answers around T_MS (wall clock,
# ms) and the longest gap elsewhere (the noise of a loaded host), in ms
# from ping -D timestamps; answers after T_MS; ms from T_MS to the first
# answer after it
ping_figures() {
    awk -v at="$2" '/bytes from/ {
            t = substr($1, 2, length($1) - 2) * 1000
            split($0, a, "icmp_seq="); split(a[2], b, " "); seq = b[1] + 0
            if (n++) {
                g = t - prev
                if (prev <= at && t > at) mig = g; else if (g > noise) noise = g
            }
            if (t > at && !after++) first = t - at
            prev = t; got[seq] = 1; if (seq > last) last = seq
        }
        END { for (s = 1; s <= last; s++) if (!(s in got)) lost++
              printf "%d %.1f %.1f %d %.1f\n", lost, mig, noise, after, first }' "$1"
}

# migrate_pinging SRC DST DST-TAP SECONDS-AFTER [net options]: migrates SRC
# to a new DST on DST-TAP; with PING_DURING the pinger runs from a second
# before, else it starts once the migration is over (one ping before it
# keeps the bridges' entries fresh). Figures: LOST, GAP (the one spanning
# the pause), NOISE, AFTER, FIRST (ms to the first answer after the pause),
# DOWNTIME
migrate_pinging() {
    local src=$1 dst=$2 tap=$3 after=$4 extra=${5:-}
    start_dst "$dst" "unix:$TMP/$dst.mig" --net "tap=$tap$extra"
    if [ -n "${PING_DURING:-}" ]; then
        start_pinger "$TMP/$dst.ping"
        sleep 1
    else
        ping -c 1 -W 2 $VM_IP >/dev/null
    fi
    migrate "$src" "unix:$TMP/$dst.mig"
    local at
    if [ -z "${PING_DURING:-}" ]; then
        at=$(now_ms) # FIRST: from the pinger's start
        start_pinger "$TMP/$dst.ping"
    fi
    sleep "$after"
    stop_pinger
    DOWNTIME=$(fig "$src" downtime_ms)
    if [ -n "${PING_DURING:-}" ]; then
        # the pause: the downtime before the completed event (its timestamp, s)
        local done_s
        done_s=$(grep -o '"timestamp":[0-9.]*' "$TMP/$src.migration" | tail -1 | cut -d: -f2)
        at=$(awk "BEGIN { printf \"%.3f\", $done_s * 1000 - $DOWNTIME }")
    fi
    read -r LOST GAP NOISE AFTER FIRST < <(ping_figures "$TMP/$dst.ping" "$at")
    wait_vm "$src"
}

PING_DURING=1 migrate_pinging one two tapB 1.5
check "migration completed" [ "$MIG" = completed ]
first=$(dev_field two first_tx_ms)
note "pinging during the migration: downtime ${DOWNTIME} ms, gap across the pause ${GAP} ms (longest gap elsewhere ${NOISE} ms), $LOST lost, first frame from the destination ${first} ms after the state load"
check "answers go on from the destination" [ "$AFTER" -ge 20 ]
check "at most the requests of the downtime lost ($LOST <= ${DOWNTIME%.*} / 10 + 5)" \
    [ "$LOST" -le $(( ${DOWNTIME%.*} / 10 + 5 )) ]
check "the guest sent its gratuitous arp on the destination" \
    wait_for "$TMP/two.console" '^NET garp announce' 3
check "the destination logged its announce" \
    grep -q "net0: announced $MAC on tap 'tapB'" "$TMP/two.log"
check "the destination sent 5 rarps" wait_rc 3 0 rarps_at_least two 5
check "mac kept across the migration" [ "$(dev_field two mac)" = $MAC ]

# An idle VM (nothing in flight that it would answer from its new place),
# pinged once before the migration and from its end on: towards the
# pinger's side (tapA to tapB) without the announce, brB goes on sending to
# the switch link, where its FDB entry says the VM is, and brA has nowhere
# to send: answers start only once the entry ages (AGEING_S) and brB
# floods. FIRST counts from the pinger's start.
migrate_pinging two three tapA 1.5
check "idle, with announce: completed" [ "$MIG" = completed ]
note "idle, with announce: downtime ${DOWNTIME} ms, first answer ${FIRST} ms after the pinger started"
check "with announce it answers at once (${FIRST} ms < 1 s)" awk "BEGIN { exit !($FIRST < 1000) }"

migrate_pinging three four tapB $((AGEING_S + 2)) ,announce=off
check "idle, without announce: completed" [ "$MIG" = completed ]
note "idle, without announce: downtime ${DOWNTIME} ms, first answer ${FIRST} ms after the pinger started, $LOST lost (bridge ageing ${AGEING_S} s)"
check "no rarp without the announce" [ "$(dev_field four rarps)" = 0 ]
check "without announce the vm is unreachable until the bridge forgets (${FIRST} ms > 1 s)" \
    awk "BEGIN { exit !($FIRST > 1000) }"
check "answers come back once it has" [ "$AFTER" -ge 20 ]
ctl four '{"cmd":"quit"}' >/dev/null; wait_vm four

# ---- bad input ----
bad_net() {
    local want=$1; shift
    "$VMM" --kernel "$GUEST" "$@" >"$TMP/bad.out" 2>&1
    local rc=$?
    [ $rc = 1 ] && [ "$(wc -l <"$TMP/bad.out")" = 1 ] && grep -q -- "$want" "$TMP/bad.out"
}
check "--net without tap= refused" bad_net "tap=IFNAME is required" --net mac=52:54:00:00:00:01
check "--net bad interface name refused" bad_net "bad key or value 'tap'" --net tap=a/b
check "--net multicast mac refused" bad_net "bad key or value 'mac'" --net tap=tapA,mac=01:00:5e:00:00:01
check "a fifth nic refused" bad_net "at most 4 nics" --net tap=t0 --net tap=t1 --net tap=t2 --net tap=t3 --net tap=t4
start_vm nic --memory 64M --net tap=tapA --kernel "$GUEST" --cmdline "$GUEST_NET"
wait_for "$TMP/nic.console" '^NET up' 10
start_dst nonic "unix:$TMP/nonic.mig"
migrate nic "unix:$TMP/nonic.mig"
check "a destination without the source's nic refuses" \
    grep -q "source has 1 nics, 0 given here (--net)" "$TMP/nic.migration"
wait_vm nonic
check "the source keeps running" grep -q '"state":"running"' <<<"$(ctl nic '{"cmd":"status"}')"

# a hostile driver: a looping chain, an address past RAM, a 4 GiB length on
# the transmit queue; the NIC stops until reset (said once), the VM and
# the monitor go on
start_vm bad --memory 64M --net tap=tapB --kernel "$GUEST" --cmdline "$GUEST_NET tern.netbad=3"
check "hostile driver: the guest posted its malformed chains" \
    wait_for "$TMP/bad.console" '^NET posted 3 malformed chains' 10
hb=$(last_hb bad)
check "hostile driver: the vm runs on" wait_for "$TMP/bad.console" "^HB $((${hb:-0} + 2)) " 5
check "hostile driver: the monitor answers" grep -q '"state":"running"' <<<"$(ctl bad '{"cmd":"status"}')"
check "hostile driver: the nic stopped, said once" \
    [ "$(grep -c 'virtio-net at 0x.*device stopped until reset' "$TMP/bad.log")" = 1 ]
ctl bad '{"cmd":"quit"}' >/dev/null; wait_vm bad
check "hostile driver: tern-vmm quits normally" [ "$RC" = 0 ]

# a TAP deleted under the running VM: said once, link down, the VM goes on
ip link del tapA
sleep 0.5
ping -q -c 3 -i 0.05 -W 1 $VM_IP >/dev/null 2>&1
hb=$(last_hb nic)
check "vm keeps running after its tap went away" wait_for "$TMP/nic.console" "^HB $((hb + 2)) " 5
check "the loss of the tap is logged once" [ "$(grep -c "tap 'tapA'.*link down" "$TMP/nic.log")" = 1 ]
check "status shows the link down" [ "$(dev_field nic link)" = false ]
ctl nic '{"cmd":"quit"}' >/dev/null; wait_vm nic
check "and quits normally" [ "$RC" = 0 ]
