# Ping-pong: 20 live migrations back and forth, every page verified after each.
source "$(dirname "$0")/lib.sh"

start_vm vm0 --kernel "$GUEST" --memory 256M --cmdline "tern.hb=20 tern.ws=32 tern.rate=20 tern.verify=0.5"
wait_for "$TMP/vm0.console" '^VERIFY ok' 10
prev=vm0
good=0
for i in $(seq 1 20); do
    next=vm$i
    start_dst "$next" "unix:$TMP/$next.mig"
    migrate "$prev" "unix:$TMP/$next.mig"
    wait_vm "$prev"
    # a VERIFY takes seconds of a guest's CPU when suites run side by side
    why=$MIG
    [ "$MIG" = completed ] && { verify_ok_after "$next" 20 || why="$MIG, no VERIFY ok in 20 s"; }
    [ "$why" = completed ] && { hb_consecutive_across "$prev" "$next" || why="$MIG, heartbeat broken"; }
    if [ "$why" = completed ]; then
        good=$((good + 1))
    else
        not_ok "migration $i ($prev -> $next): $why"
    fi
    note "migration $i: total $(fig $prev total_ms) ms, downtime $(fig $prev downtime_ms) ms"
    prev=$next
done
check "20 migrations back and forth, VERIFY ok and heartbeat unbroken after each ($good/20)" [ $good = 20 ]
ctl "$prev" '{"cmd":"pause"}' >/dev/null
first=$(grep -Eo '^HB [0-9]+' "$TMP/vm0.console" | head -1 | cut -d' ' -f2)
all=$(cat $(for i in $(seq 0 20); do echo "$TMP/vm$i.console"; done) | grep -c '^HB')
last=$(last_hb "$prev")
check "heartbeat sequence unbroken over all 21 processes ($first..$last, $all lines)" \
    [ $((last - first + 1)) = "$all" ]
ctl "$prev" '{"cmd":"quit"}' >/dev/null; wait_vm "$prev"
