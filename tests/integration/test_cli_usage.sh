# The tern CLI's command line: every command's --help, usage errors (exit
# 2, one line naming the culprit, nothing sent), an unreachable API (exit
# 1, one line) - all without a server. Then, when ternd and etcd are
# there, the commands against one real single-node ternd on 127.0.0.21
# (etcd 25791/25801, API 18206, apart from the other tests' ports); a
# command whose endpoint ternd does not serve yet is noted and skipped.
BUILD=${BUILD:-build}
. tests/integration/lib.sh
TERN=$BUILD/tern
TERND=$BUILD/ternd
TD_PID=

[ -x "$TERN" ] || { not_ok "$TERN is missing (make build/tern)"; exit 1; }

stop_ternd() {
    [ -n "$TD_PID" ] || return 0
    kill -TERM "$TD_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$TD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$TD_PID" 2>/dev/null
    wait "$TD_PID" 2>/dev/null
    TD_PID=
}
trap 'stop_ternd; cleanup' EXIT

# run ARGS...: tern's exit status in $RC, stdout in $TMP/out, stderr in $TMP/err.
run() { "$TERN" "$@" >"$TMP/out" 2>"$TMP/err"; RC=$?; }
one_line_err() { [ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -q '^tern: ' "$TMP/err"; }

# --- help: tern --help lists every command, and each has its own --help
run --help
check "tern --help exits 0" [ "$RC" -eq 0 ]
mapfile -t COMMANDS < <(sed -n '/^commands:/,/^common options:/p' "$TMP/out" |
                        grep -E '^  [a-z]+ [a-z-]+ ' | awk '{print $1, $2}')
check "tern --help lists 41 commands (${#COMMANDS[@]})" [ "${#COMMANDS[@]}" -eq 41 ]
bad_help=()
for c in "${COMMANDS[@]}"; do
    # shellcheck disable=SC2086
    run $c --help
    if [ "$RC" -ne 0 ] || ! grep -q "^usage: tern $c" "$TMP/out" ||
       ! grep -q '^examples:' "$TMP/out" || [ -s "$TMP/err" ]; then
        bad_help+=("$c")
    fi
done
check "every command's --help exits 0 with usage and examples${bad_help:+ (not: ${bad_help[*]})}" \
    [ "${#bad_help[@]}" -eq 0 ]
long_help=$(for c in "${COMMANDS[@]}"; do "$TERN" $c --help; done; "$TERN" --help)
check "no help or usage line is longer than 79 characters (none is cut)" \
    bash -c "! awk 'length > 79' <<<\"\$0\" | grep -q ." "$long_help"
check "vm migrate's usage names every option, none cut" \
    bash -c "$TERN vm migrate --help | sed -n '1,/^[a-z]/p' | tr -s ' \n' ' ' |
             grep -q -- '--online.*--bwlimit.*--migration-type.*--migration-network.*--downtime.*--dry-run.*--no-follow'"
run --version
check "tern --version: 'tern X.Y.Z', the same as ternd's and tern-vmm's" \
    bash -c "[ $RC -eq 0 ] && v=\$(cut -d' ' -f2 '$TMP/out') && [ \"\$(cat '$TMP/out')\" = \"tern \$v\" ] &&
             [ \"\$($BUILD/ternd --version)\" = \"ternd \$v\" ] && [ \"\$($BUILD/tern-vmm --version)\" = \"tern-vmm \$v\" ]"
run vm --help
check "tern vm --help lists the vm commands" \
    bash -c "[ $RC -eq 0 ] && grep -q '^  vm migrate ' '$TMP/out' && ! grep -q '^  task ' '$TMP/out'"
run --api 127.0.0.1:1 vm migrate 100 n2 --bwlimit x --help
check "--help wins over a bad value later on the line" \
    bash -c "[ $RC -eq 2 ] || grep -q '^usage: tern vm migrate' '$TMP/out'"

# --- usage errors: exit 2, one line on stderr naming the culprit, no output.
# The --api is unreachable: a usage error must come before any request.
usage_case() {   # culprit-regex ARGS...
    local re=$1; shift
    run --api 127.0.0.1:1 --token-file /dev/null "$@"
    if [ "$RC" -eq 2 ] && one_line_err && grep -Eq -- "$re" "$TMP/err" && [ ! -s "$TMP/out" ]; then
        ok "usage: tern $* -> exit 2, $(cat "$TMP/err")"
    else
        not_ok "usage: tern $* -> exit $RC, want 2 and one line matching '$re': $(head -c 300 "$TMP/err")"
    fi
}
KERNEL=(--memory 64 --cpus 1 --kernel /boot/x)
usage_case "no command given"
usage_case "unknown command 'frobnicate'" frobnicate
usage_case "unknown command 'vm launch'" vm launch
usage_case "missing command after 'vm'" vm
usage_case "unknown option '--colour'" node list --colour
usage_case "unknown option '--start'" vm list --start
usage_case "'--output' needs a value" node list --output
usage_case "--output .*'yaml'" node list --output yaml
usage_case "--output .*'xml'" --output=xml vm list
usage_case "missing argument ID" vm start
usage_case "unexpected argument '101'" vm start 100 101
usage_case "bad vm id 'abc'" vm start abc
usage_case "bad vm id '99'" vm stop 99
usage_case "bad vm id '1000000000'" vm show 1000000000
usage_case "bad vm id '-5'" vm destroy -- -5
usage_case "bad vm id '0x64'" vm console 0x64
usage_case "missing option --memory" vm create 100 --cpus 1 --kernel /boot/x
usage_case "--memory '8'.*range" vm create 100 --memory 8 --cpus 1 --kernel /boot/x
usage_case "--cpus '0'" vm create 100 --memory 64 --cpus 0 --kernel /boot/x
usage_case "bad --disk 'local'" vm create 100 "${KERNEL[@]}" --disk local
usage_case "bad --disk size '12T'" vm create 100 "${KERNEL[@]}" --disk local:12T
usage_case "bad --disk size '0'" vm create 100 "${KERNEL[@]}" --disk local:0
usage_case "bad storage name 'a/b'" vm create 100 "${KERNEL[@]}" --disk a/b:64
usage_case "'--start' takes no value" vm create 100 "${KERNEL[@]}" --start=yes
usage_case "--kernel 'no-such-kernel'" vm create 100 --memory 64 --cpus 1 --kernel no-such-kernel
usage_case "missing argument TARGET" vm migrate 100
usage_case "bad target node 'n 2'" vm migrate 100 "n 2"
usage_case "--bwlimit .*'fast'" vm migrate 100 n2 --bwlimit fast
usage_case "--migration-type .*'tls'" vm migrate 100 n2 --migration-type tls
usage_case "--migration-network '10.0.0.1'" vm migrate 100 n2 --migration-network 10.0.0.1
usage_case "--downtime '0'" vm migrate 100 n2 --downtime 0
usage_case "type .*'fast'" cluster set migration type=fast
usage_case "network '10.0.0.0/33'" cluster set migration type=secure,network=10.0.0.0/33
usage_case "unknown migration option 'speed'" cluster set migration speed=1
usage_case "bad migration option 'secure'" cluster set migration secure
usage_case "bad migration options ''" cluster set migration ""
usage_case "unknown cluster option 'ha'" cluster set ha type=secure
usage_case "missing option --fingerprint" cluster join 10.0.0.1:8006 --token-file /dev/null
usage_case "bad --fingerprint 'md5:x'" cluster join 10.0.0.1:8006 --fingerprint md5:x --token-file /dev/null
FP=sha256//m4CZVuUifFpTXwiNE5Q5Sa+1SQeHQ3kncj0XLZ1Uuzw=
usage_case "bad --fingerprint 'sha256//abc'" cluster join 10.0.0.1:8006 --fingerprint sha256//abc --token-file /dev/null
usage_case "bad address '10.0.0.1'" cluster join 10.0.0.1 --fingerprint $FP --token-file /dev/null
usage_case "port of the address '0'" cluster join 10.0.0.1:0 --fingerprint $FP --token-file /dev/null
usage_case "--token-file FILE and --token TOKEN" cluster join 10.0.0.1:8006 --fingerprint $FP
usage_case "bad --token" cluster join 10.0.0.1:8006 --fingerprint $FP --token 1234
usage_case "bad cluster name 'my cluster'" cluster create "my cluster"
usage_case "--path 'rel/dir' is not absolute" storage add s1 --path rel/dir
usage_case "missing option --path" storage add s1
usage_case "bad task id '42'" task log 42
usage_case "bad vm id 'x'" task list --vmid x
usage_case "--limit '0'" task list --limit 0
usage_case "'10.0.1.5/24' has host bits set" vm migrate 100 n2 --migration-network 10.0.1.5/24
usage_case "'--cpus' '33' out of range 1..32|--cpus '33' out of range 1..32" vm create 100 --memory 64 --cpus 33 --kernel /boot/x
usage_case "--limit '1001' out of range 1..1000" task list --limit 1001
usage_case "bad task id 'x'" task show x
usage_case "nothing to set" vm set 100
usage_case "--cpus '33' out of range 1..32" vm set 100 --cpus 33
usage_case "--net none takes no other --net" vm set 100 --net none --net bridge=vmbr0
usage_case "--net 'nope': unknown key or no value at 'nope'" vm set 100 --net nope
usage_case "bad --disk 'local'" vm set 100 --disk local
usage_case "--timeout '0'" vm shutdown 100 --timeout 0

# --- no server: exit 1 and one line
echo 0000 >"$TMP/token"
run --api 127.0.0.1:1 --token-file "$TMP/token" node list
check "unreachable --api: exit 1 with one line ($(cat "$TMP/err"))" \
    bash -c "[ $RC -eq 1 ] && [ \$(wc -l <'$TMP/err') -eq 1 ] && grep -q '^tern: cannot reach ternd at https://127.0.0.1:1' '$TMP/err'"
run --api 127.0.0.1:1 --token-file "$TMP/token" vm migrate 100 n2 --online
check "unreachable --api for a change: exit 1 with one line" \
    bash -c "[ $RC -eq 1 ] && [ \$(wc -l <'$TMP/err') -eq 1 ]"
run --api 127.0.0.1:1 --token-file "$TMP/token" --output json node list
check "--output json: an error is JSON on stdout too (status null without an answer), exit 1" \
    bash -c "[ $RC -eq 1 ] && jq -e '(.error | test(\"cannot reach ternd\")) and .status == null' '$TMP/out' >/dev/null"
run --config "$TMP/none.conf" vm list
check "missing config: exit 1 naming it" \
    bash -c "[ $RC -eq 1 ] && [ \$(wc -l <'$TMP/err') -eq 1 ] && grep -q '$TMP/none.conf' '$TMP/err'"

# --- a real single-node ternd, for the endpoints it serves today
if [ ! -x "$TERND" ] || [ ! -x "${TERN_ETCD:-/usr/bin/etcd}" ]; then
    note "skipped: no ternd or etcd, the CLI against a real ternd is not tried"
    exit 0
fi

D=$TMP/t1
mkdir -p "$D/img"
{
    echo "name = t1"
    echo "cluster_address = https://127.0.0.21:25791"
    echo "peer_address = https://127.0.0.21:25801"
    echo "migration_address = 127.0.0.21:25100"
    echo "data_dir = $D/data"
    echo "api_address = 127.0.0.21:18206"
    echo "heartbeat_ttl_s = 3"
    echo "etcd_election_ms = 500"
} >"$TMP/t1.conf"
"$TERND" --config "$TMP/t1.conf" 2>>"$TMP/t1.log" &
TD_PID=$!
t() { run --config "$TMP/t1.conf" "$@"; }

# served: true unless ternd said "no such endpoint" (not there yet: noted)
served() {
    grep -q 'no such endpoint' "$TMP/err" || return 0
    note "skipped: tern $* ($(cat "$TMP/err"))"
    return 1
}
# expect RC ARGS...: tern ARGS exits RC (when ternd serves the endpoint)
expect() {
    local want=$1; shift
    t "$@"
    served "$@" || return 0
    if [ "$RC" -eq "$want" ]; then
        ok "ternd: tern $* -> exit $RC"
    else
        not_ok "ternd: tern $* -> exit $RC, want $want: $(head -c 300 "$TMP/err")"
    fi
}
# until_rc SECONDS RC ARGS...: until tern ARGS exits RC
until_rc() {
    local deadline=$(( $(now_ms) + $1 * 1000 )) want=$2; shift 2
    until t "$@"; [ "$RC" -eq "$want" ]; do
        [ "$(now_ms)" -ge $deadline ] && return 1
        sleep 0.2
    done
}

# a node in no cluster yet answers, but is not quorate
until_rc 20 3 cluster status
check "cluster status before create: exit 3 ($(head -1 "$TMP/out"))" [ "$RC" -eq 3 ]
expect 0 cluster create clitest
until_rc 20 0 cluster status
check "cluster status: quorate yes, cluster clitest, a sha256// fingerprint" \
    bash -c "[ $RC -eq 0 ] && grep -q '^quorate:  yes' '$TMP/out' &&
             grep -q '^cluster:  clitest' '$TMP/out' && grep -q '^fingerprint: sha256//' '$TMP/out'"
expect 1 cluster create again
deadline=$(( $(now_ms) + 10000 ))
until t node list; grep -q '^t1 .* online ' "$TMP/out" || [ "$(now_ms)" -ge $deadline ]; do
    sleep 0.2
done
check "node list: t1 online, with a VMS column" \
    bash -c "[ $RC -eq 0 ] && grep -q '^NAME  *STATUS  *VMS ' '$TMP/out' && grep -Eq '^t1 +online +(0|-) ' '$TMP/out'"
grep -Eq '^t1 +online +- ' "$TMP/out" && note "ternd's node list has no 'vms' yet: VMS shows '-'"
t node list --output json
check "node list --output json is the API's JSON" \
    bash -c "[ $RC -eq 0 ] && jq -e '.nodes[0].name == \"t1\"' '$TMP/out' >/dev/null"
run --config "$TMP/t1.conf" --output json vm show 555
check "--output json: a 404 is {\"error\", \"status\": 404} on stdout, exit 1" \
    bash -c "[ $RC -eq 1 ] && jq -e '.error == \"vm 555 does not exist\" and .status == 404' '$TMP/out' >/dev/null"
run --api 127.0.0.21:18206 --token-file "$D/data/admin.token" node list
check "--api without --ca-file on ternd's self-signed certificate: the hint, one line" \
    bash -c "[ $RC -eq 1 ] && [ \$(wc -l <'$TMP/err') -eq 1 ] && grep -q -- '--ca-file FILE or TERN_CA_FILE' '$TMP/err'"
run --api 127.0.0.21:18206 --token-file "$D/data/admin.token" --ca-file "$D/data/tls/cert.pem" node list
check "  and with --ca-file it works" [ "$RC" -eq 0 ]
run --config "$TMP/t1.conf" --token-file "$TMP/token" node list
check "wrong token: exit 1, one line 'unauthorized'" \
    bash -c "[ $RC -eq 1 ] && [ \$(wc -l <'$TMP/err') -eq 1 ] && grep -q unauthorized '$TMP/err'"

expect 0 cluster set migration type=insecure,network=10.0.1.0/24
t cluster options
served cluster options &&
    check "cluster options shows what was set" \
        grep -q '^migration: type=insecure,network=10.0.1.0/24$' "$TMP/out"
expect 0 cluster set migration network=none,type=secure
expect 0 storage add local --path "$D/img"
expect 1 storage add local --path "$D/img"
t storage list
served storage list && check "storage list shows it" grep -q "^local  *no  *$D/img\$" "$TMP/out"
expect 0 vm create 100 --memory 64 --cpus 1 --kernel "$GUEST" --disk local:16 --name web
t vm list
served vm list && check "vm list shows vm 100 stopped" grep -Eq '^100 +web +t1 +stopped +64 MiB' "$TMP/out"
t vm set 100 --memory 96 --name web2 --cmdline "tern.hb=100"
check "vm set on a stopped vm: memory, name, cmdline ($(cat "$TMP/out"))" \
    bash -c "[ $RC -eq 0 ] && $TERN --config $TMP/t1.conf vm show 100 --output json |
             jq -e '.memory_mib == 96 and .name == \"web2\" and .config.cmdline == \"tern.hb=100\"' >/dev/null"
t vm set 100 --disk local:8
check "vm set --disk: a second disk, its file made sparse ($(cat "$TMP/out"))" \
    bash -c "[ $RC -eq 0 ] && grep -q ', 2 disk(s)' '$TMP/out' &&
             [ \$(stat -c %s '$D/img/vm-100-disk-1.raw') = 8388608 ] &&
             $TERN --config $TMP/t1.conf vm show 100 --output json |
             jq -e '.config.disks[1].storage == \"local\" and .config.disks[1].size_mib == 8' >/dev/null"
t vm set 100 --disk nosuch:8
check "vm set --disk on a missing storage: refused naming it, no file, config kept ($(cat "$TMP/err"))" \
    bash -c "[ $RC -eq 1 ] && grep -q \"storage 'nosuch' does not exist\" '$TMP/err' &&
             [ ! -e '$D/img/vm-100-disk-2.raw' ] &&
             [ \$($TERN --config $TMP/t1.conf vm show 100 --output json | jq '.config.disks | length') = 2 ]"
t vm status 100
check "vm status 100: one line, stopped on t1" \
    bash -c "[ $RC -eq 0 ] && [ \$(wc -l <'$TMP/out') -eq 1 ] && grep -q '^status: stopped (node t1)' '$TMP/out'"
t node show t1
check "node show t1: online, version, addresses" \
    bash -c "[ $RC -eq 0 ] && grep -q '^status:    online' '$TMP/out' && grep -q '^api:       127.0.0.21:18206' '$TMP/out'"
expect 1 node show t9
t vm show 100 --output json
served vm show && check "vm show --output json has the disk" grep -q '"size_mib": 16' "$TMP/out"
expect 1 storage remove local
expect 1 vm show 101
expect 1 vm migrate 100 t1 --online

# start, console, stop: only with a guest and /dev/kvm
if [ -x "$GUEST" ] && [ -w /dev/kvm ]; then
    expect 0 vm start 100
    t vm console 100 --no-follow
    served vm console && check "vm console --no-follow: exit 0" [ "$RC" -eq 0 ]
    expect 1 vm destroy 100
    t task list --vmid 100
    served task list &&
        check "task list --vmid 100: the start task, OK" grep -Eq ' t1 +start +100 .* OK$' "$TMP/out"
    UPID=$(grep -o 'UPID:[^ ]*' "$TMP/out" | head -1)
    [ -n "$UPID" ] && expect 0 task log "$UPID"
    [ -n "$UPID" ] && check "task log ends in TASK OK" bash -c "tail -1 '$TMP/out' | grep -q '^TASK OK'"
    expect 1 task cancel "${UPID:-UPID:t1:0:0:start:100:}"
    # the lifecycle: pause, resume, the interactive console, reboot, shutdown
    t vm set 100 --memory 128
    check "vm set on a running vm: refused, exit 1 ($(cat "$TMP/err"))" \
        bash -c "[ $RC -eq 1 ] && grep -q 'stop it first' '$TMP/err'"
    expect 0 vm pause 100
    check "vm pause: status paused (once in etcd)" \
        wait_rc 5 0 bash -c "$TERN --config $TMP/t1.conf vm status 100 | grep -q '^status: paused '"
    expect 0 vm resume 100
    check "vm resume: status running" \
        wait_rc 5 0 bash -c "$TERN --config $TMP/t1.conf vm status 100 | grep -q '^status: running '"
    (sleep 1; printf 'hello tern\r'; sleep 2; printf '\035') | "$TERN" --config "$TMP/t1.conf" vm console 100 \
        >"$TMP/con.out" 2>"$TMP/con.err"; RC=$?
    check "vm console: keys reach the guest, it echoes the line; Ctrl-] leaves (exit $RC)" \
        bash -c "[ $RC -eq 0 ] && grep -q '^ECHO hello tern' '$TMP/con.out'"
    (sleep 1; printf 'not sent\r'; sleep 1.5) | timeout 5 "$TERN" --config "$TMP/t1.conf" vm console 100 \
        --read-only >"$TMP/con2.out" 2>&1
    check "vm console --read-only: keys are not sent" bash -c "! grep -q 'ECHO not sent' '$TMP/con2.out'"
    pid1=$("$TERN" --config "$TMP/t1.conf" vm show 100 --output json | jq .pid)
    t vm reboot 100 --timeout 20
    check "vm reboot: powered off by the guest, started again ($(cat "$TMP/out"))" \
        bash -c "[ $RC -eq 0 ] && grep -q '^vm 100 rebooted (task UPID:' '$TMP/out'"
    new_pid() {
        local p
        p=$("$TERN" --config "$TMP/t1.conf" vm show 100 --output json | jq .pid)
        [ "$p" != "$pid1" ] && [ "$p" != null ] && [ "$p" -gt 0 ] &&
            "$TERN" --config "$TMP/t1.conf" vm status 100 | grep -q '^status: running'
    }
    check "  a new tern-vmm (not $pid1), running" wait_rc 30 0 new_pid
    t vm shutdown 100 --timeout 20
    check "vm shutdown: the guest powers off ($(cat "$TMP/out"))" \
        bash -c "[ $RC -eq 0 ] && grep -q '^vm 100 shut down (task' '$TMP/out'"
    wait_rc 10 0 bash -c "$TERN --config $TMP/t1.conf vm status 100 | grep -q '^status: stopped'"
    check "  stopped, last exit: powered off" \
        bash -c "$TERN --config $TMP/t1.conf vm show 100 | grep -q '^last exit: .*powered off'"
    expect 0 vm start 100
    expect 0 vm pause 100
    t vm shutdown 100 --timeout 1
    check "vm shutdown of a guest that does not answer (paused): hard after 1 s, and says so" \
        bash -c "[ $RC -eq 0 ] && grep -q '^vm 100 did not power off in 1 s: stopped hard' '$TMP/out'"
    expect 1 vm pause 100
    expect 0 vm start 100
    # a VM whose start fails (its kernel is no ELF) can be destroyed
    echo "not a kernel" >"$D/bad.elf"
    expect 0 vm create 101 --memory 64 --cpus 1 --kernel "$D/bad.elf"
    expect 1 vm start 101
    t vm destroy 101
    check "vm destroy of a vm whose start failed: exit 0 ($(cat "$TMP/err"))" [ "$RC" -eq 0 ]
    expect 0 vm stop 100
    # the stopped state reaches etcd from ternd's main loop a moment later
    until_rc 10 0 vm destroy 100
    check "vm destroy after the stop: exit 0 ($(cat "$TMP/err"))" [ "$RC" -eq 0 ]
else
    note "skipped: vm start and console (no guest or /dev/kvm)"
    expect 0 vm destroy 100
fi
expect 0 storage remove local

stop_ternd
check "ternd stopped, no etcd of this test left" \
    bash -c "! pgrep -f -- '--data-dir $D/[d]ata' >/dev/null"
