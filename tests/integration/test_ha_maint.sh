# Maintenance mode: `tern node maintenance enable n1` live-migrates the
# VMs of n1 away in one task (a VM on local storage cannot move: the task
# names it and ends in TASK ERROR); n1 then takes no new VMs nor
# migrations; `disable --return` brings the VMs back; a ternd restart in
# the middle of an evacuation: the restarted ternd carries on.
NET=127.0.0.15
. tests/integration/cluster_lib.sh

check "cluster of three" cluster_up maint
mkdir -p "$TMP/shared" "$TMP/local"
tern_on n1 storage add shared --path "$TMP/shared" --shared >/dev/null
tern_on n1 storage add local --path "$TMP/local" >/dev/null
CMD="tern.hb=100 tern.ws=2 tern.rate=5 tern.verify=1"
for id in 100 101 102; do
    check_out "vm create $id on n1 --start" tern_on n1 vm create $id --memory 64 --cpus 1 \
        --kernel "$GUEST" --cmdline "$CMD" --disk shared:4 --start
done
check_out "vm create 103 on local storage --start" tern_on n1 vm create 103 --memory 64 \
    --cpus 1 --kernel "$GUEST" --cmdline "tern.hb=100" --disk local:4 --start
for id in 100 101 102; do check "vm $id runs on n1" vm_on $id n1; done

node_of() { vm_field "$1" node; }
OUT=$(tern_on n2 node maintenance enable n1 2>&1); RC=$?
check "enable (asked on n2): the task ends in TASK ERROR, exit 1" \
    bash -c "[ $RC = 1 ] && grep -q '^TASK ERROR' <<<\"\$0\"" "$OUT"
check "  it names the vm that could not move, and why" \
    grep -q "^TASK ERROR: 1 vm(s) could not move: vm 103 (.*local" <<<"$OUT"
check "  a line per vm: migrating to its auto target" \
    bash -c "[ \$(grep -c 'vm 10[012]: migrating to' <<<\"\$0\") = 3 ]" "$OUT"
check "  and done" bash -c "[ \$(grep -c 'vm 10[012]: done' <<<\"\$0\") = 3 ]" "$OUT"
for id in 100 101 102; do
    N=$(node_of $id)
    check "vm $id left n1: runs on $N" \
        bash -c "[ '$N' != n1 ] && [ '$N' != null ]"
    check "vm $id verifies on $N" verify_on "$N" $id
done
vm103_on_n1() { vm_on 103 n1 || { tern_on n1 vm show 103; tail -3 "$TMP/n1/data/run/103/vmm.log"; false; }; }
check_out "vm 103 still runs on n1" vm103_on_n1
OUT=$(tern_on n1 vm create 104 --memory 64 --cpus 1 --kernel "$GUEST" --disk shared:4 2>&1)
check "in maintenance: vm create on n1 refused ($OUT)" grep -q "node 'n1' is in maintenance" <<<"$OUT"
OUT=$(tern_on n1 vm migrate 100 n1 --online 2>&1)
check "in maintenance: a migration to n1 refused ($OUT)" grep -q "node 'n1' is in maintenance" <<<"$OUT"

check_out "vm 103 stopped" tern_on n1 vm stop 103
check_out "vm 103 destroyed" tern_on n1 vm destroy 103
OUT=$(tern_on n3 node maintenance disable n1 --return 2>&1); RC=$?
check "disable --return: TASK OK ($(tail -1 <<<"$OUT"))" \
    bash -c "[ $RC = 0 ] && grep -q '^TASK OK' <<<\"\$0\"" "$OUT"
for id in 100 101 102; do check "vm $id is back on n1" runs_and_verifies $id n1; done
OUT=$(tern_on n1 node maintenance disable n1 2>&1)
check "disable again: refused ($OUT)" grep -q "not in maintenance" <<<"$OUT"

# a ternd restart in the middle of an evacuation
TASK=$(tern_on n1 node maintenance enable n1 --no-follow 2>&1 | grep -o 'UPID:[^ ]*')
check "enable --no-follow: a task" [ -n "$TASK" ]
check "the evacuation started" wait_for "$TMP/n1/data/tasks/$TASK.log" 'migrating to' 20
kill -TERM "${TD_PID[n1]}"; wait "${TD_PID[n1]}" 2>/dev/null; unset "TD_PID[n1]"
start_node n1
check "n1 back online" wait_rc 40 0 node_count_online 3
all_off_n1() { for id in 100 101 102; do [ "$(node_of $id)" != n1 ] || return 1; done; }
check "after the restart every vm leaves n1" wait_rc 90 0 all_off_n1
check "the restarted ternd said it goes on" \
    bash -c "grep -l 'ternd restarted: the maintenance' $TMP/n1/data/tasks/*maintenance*.log >/dev/null"
for id in 100 101 102; do
    N=$(node_of $id)
    check "vm $id runs on $N, once, and verifies" \
        bash -c "[ $(vmm_count $id) = 1 ]" 
    check "vm $id verifies on $N" verify_on "$N" $id
done
