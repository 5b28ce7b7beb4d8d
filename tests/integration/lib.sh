# Shared helpers for the integration tests: real tern-vmm processes booting
# the real tern-guest on /dev/kvm. Every check prints one TAP line.
BUILD=${BUILD:-build}
VMM=$BUILD/tern-vmm
GUEST=$BUILD/guest/tern-guest
CTL=$BUILD/tests/ctl
TMP=$(mktemp -d /tmp/tern-test.XXXXXX)
declare -A VM_PID=()

cleanup() {
    local pid
    for pid in "${VM_PID[@]}"; do kill -9 "$pid" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

ok()     { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; }
note()   { echo "# $*"; }
check()  { local name=$1; shift; if "$@"; then ok "$name"; else not_ok "$name"; fi; }

now_ms() { date +%s%3N; }

# start_vm NAME [tern-vmm options...]: console in $TMP/NAME.console, control
# socket $TMP/NAME.sock, stderr in $TMP/NAME.log.
start_vm() {
    local name=$1; shift
    "$VMM" --name "$name" --console "file:$TMP/$name.console" \
        --control "$TMP/$name.sock" "$@" 2>"$TMP/$name.log" &
    VM_PID[$name]=$!
}

# wait_vm NAME: waits for the process; its exit status lands in $RC.
wait_vm() {
    local name=$1
    RC=0
    wait "${VM_PID[$name]}" || RC=$?
    unset "VM_PID[$name]"
}

# wait_for FILE REGEX SECONDS: true once a line of FILE matches.
wait_for() {
    local file=$1 re=$2 deadline=$(( $(now_ms) + ${3:-10} * 1000 ))
    while [ "$(now_ms)" -lt $deadline ]; do
        grep -Eq -- "$re" "$file" 2>/dev/null && return 0
        sleep 0.02
    done
    return 1
}

# wait_rc SECONDS RC CMD...: until CMD exits with RC; its output in $OUT.
wait_rc() {
    local deadline=$(( $(now_ms) + $1 * 1000 )) want=$2; shift 2
    while :; do
        OUT=$("$@" 2>&1); RC=$?
        [ "$RC" -eq "$want" ] && return 0
        [ "$(now_ms)" -ge $deadline ] && return 1
        sleep 0.2
    done
}

# ctl NAME REQUEST...: control requests, replies on stdout.
ctl() { local name=$1; shift; "$CTL" "$TMP/$name.sock" "$@"; }

wait_socket() {
    local i
    for i in $(seq 100); do [ -S "$TMP/$1.sock" ] && return 0; sleep 0.02; done
    return 1
}

# last_hb NAME: sequence number of the last heartbeat on the console.
last_hb() { grep -Eo '^HB [0-9]+' "$TMP/$1.console" | tail -1 | cut -d' ' -f2; }

# hb_in_order: the heartbeats of the console on stdin go up by one, line by
# line (none lost, none repeated), and there are at least two of them: no
# heartbeat at all proves nothing.
hb_in_order() {
    grep -Eo '^HB [0-9]+' | cut -d' ' -f2 |
        awk 'NR > 1 && $1 != prev + 1 { bad = 1 } { prev = $1 } END { exit bad || NR < 2 }'
}

# hb_consecutive NAME: the heartbeats of NAME are in order.
hb_consecutive() { hb_in_order <"$TMP/$1.console"; }

# ---- migration helpers ----

# start_dst NAME URI [options]: a destination waiting on URI.
start_dst() {
    local name=$1 uri=$2; shift 2
    "$VMM" --incoming "$uri" --control "$TMP/$name.sock" \
        --console "file:$TMP/$name.console" "$@" 2>"$TMP/$name.log" &
    VM_PID[$name]=$!
    # it logs once it listens (a loaded host took over 0.2 s, and a source
    # that came earlier found no socket); one that exits is not waited for
    local i
    for ((i = 0; i < 200; i++)); do
        grep -q 'waiting for a source' "$TMP/$name.log" 2>/dev/null && return 0
        kill -0 "${VM_PID[$name]}" 2>/dev/null || return 0
        sleep 0.05
    done
}

# migrate SRC URI [extra json]: runs a migration to its end; the final
# "migration" event line lands in $TMP/SRC.migration, its status in $MIG.
migrate() {
    local src=$1 uri=$2 extra=${3:-}
    timeout 120 "$CTL" --wait-match '"status":"(completed|failed|cancelled|postcommit-failed)"' \
        --timeout 110 "$TMP/$src.sock" \
        "{\"cmd\":\"migrate\",\"uri\":\"$uri\"$extra}" >"$TMP/$src.events" 2>&1
    grep '"event":"migration"' "$TMP/$src.events" |
        grep -E '"status":"(completed|failed|cancelled|postcommit-failed)"' | tail -1 \
        >"$TMP/$src.migration"
    MIG=$(grep -o '"status":"[a-z-]*"' "$TMP/$src.migration" | head -1 | cut -d'"' -f4)
}

# fig NAME KEY: a number from the final migration event.
fig() { grep -o "\"$2\":[0-9.e+-]*" "$TMP/$1.migration" | head -1 | cut -d: -f2; }

# hb_consecutive_across A B: heartbeats of A then B go on one by one.
# B's guest still writes: its last line may be cut short ("HB 4" of "HB 45"),
# so the last line is left out.
hb_consecutive_across() { cat "$TMP/$1.console" "$TMP/$2.console" | sed '$d' | hb_in_order; }

# verify_ok_after NAME: a VERIFY ok line appears after the current end of the
# console, and no VERIFY FAIL anywhere.
verify_ok_after() {
    local name=$1 n
    n=$(grep -c '^VERIFY ok' "$TMP/$name.console" 2>/dev/null)
    local deadline=$(( $(now_ms) + ${2:-10} * 1000 ))
    while [ "$(now_ms)" -lt $deadline ]; do
        grep -q 'VERIFY FAIL' "$TMP/$name.console" && return 1
        [ "$(grep -c '^VERIFY ok' "$TMP/$name.console")" -gt "$n" ] && return 0
        sleep 0.05
    done
    return 1
}

# rand_port: a port on 127.0.0.1 below the ephemeral range (32768 and up), so
# that no outgoing connection of a suite running beside holds it.
rand_port() { echo $(( 20000 + RANDOM % 12000 )); }
