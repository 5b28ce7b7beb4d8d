# Boot, heartbeat, status, power-off, quit and signals on real tern-vmm.
source "$(dirname "$0")/lib.sh"

t0=$(now_ms)
start_vm hb --kernel "$GUEST" --cmdline "tern.hb=100 tern.bogus=1"
if wait_for "$TMP/hb.console" '^HB 1 ' 5; then
    first=$(( $(now_ms) - t0 ))
    note "first HB ${first} ms after tern-vmm started"
    check "first heartbeat within 3 s (measured ${first} ms)" [ "$first" -lt 3000 ]
else
    not_ok "first heartbeat within 3 s"
fi
check "banner names 1 cpu and 256 MiB" grep -Eq '^tern-guest .*cpus=1 mem=25[0-9]' "$TMP/hb.console"
check "unknown tern.* option reported by the guest" grep -q "unknown option 'tern.bogus'" "$TMP/hb.console"
check "heartbeats keep coming" wait_for "$TMP/hb.console" '^HB 10 ' 5
check "heartbeat numbers consecutive" hb_consecutive hb
status=$(ctl hb '{"cmd":"status","id":7}')
check "status: running" grep -q '"state":"running"' <<<"$status"
check "status: cpus, memory, cpu model, id echoed" \
    grep -q '"cpus":1.*"cpu_model":"host"' <<<"$(tr -d ' ' <<<"$status")"
check "status: memory in bytes" grep -q '"memory":268435456' <<<"$status"
check "status: id echoed" grep -q '"id":7' <<<"$status"
reply=$(ctl hb '{"cmd":"frobnicate"}')
check "unknown command refused by name" grep -q "unknown command 'frobnicate'" <<<"$reply"
reply=$(ctl hb 'not json')
check "malformed request refused" grep -q '"ok":false' <<<"$reply"
check "vm still running after bad requests" grep -q '"state":"running"' <<<"$(ctl hb '{"cmd":"status"}')"
events=$(timeout 10 "$CTL" --wait-event shutdown "$TMP/hb.sock" '{"cmd":"quit"}')
check "quit: shutdown event" grep -q '"reason":"quit"' <<<"$events"
check "quit: exit status 0" eval "wait_vm hb; [ \$RC = 0 ]"
check "quit: control socket removed" [ ! -e "$TMP/hb.sock" ]

start_vm off --kernel "$GUEST" --cmdline "tern.hb=100 tern.exit=1"
wait_vm off; rc=$RC
check "guest power-off: exit status 0 (got $rc)" [ "$rc" = 0 ]
check "guest power-off: POWEROFF on the console" grep -q '^POWEROFF' "$TMP/off.console"
check "guest power-off: logged" grep -q 'guest powered off' "$TMP/off.log"

start_vm term --kernel "$GUEST" --cmdline "tern.hb=100"
wait_for "$TMP/term.console" '^HB 2 ' 5
kill -TERM "${VM_PID[term]}"
check "SIGTERM: clean exit status 0" eval "wait_vm term; [ \$RC = 0 ]"

start_vm crash --kernel "$BUILD/tests/kernels/triple.elf"
wait_vm crash; rc=$RC
check "triple fault: exit status 3 (got $rc)" [ "$rc" = 3 ]
check "triple fault: message names vcpu, reason and rip" \
    grep -Eq 'vcpu 0: triple fault .*rip=0x2000' "$TMP/crash.log"

# time from starting tern-vmm to the first heartbeat, median of 10 boots
times=()
for i in $(seq 1 10); do
    t0=$(now_ms)
    start_vm fb$i --kernel "$GUEST" --cmdline "tern.hb=1000"
    wait_for "$TMP/fb$i.console" '^HB 1 ' 5 && times+=($(( $(now_ms) - t0 )))
    kill "${VM_PID[fb$i]}"; wait_vm fb$i
done
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 5p)
note "first HB after tern-vmm start: median ${median} ms of ${#times[@]} (all: ${times[*]})"
check "first heartbeat within 1 s of starting, median of 10 (${median} ms)" \
    eval '[ ${#times[@]} = 10 ] && [ "$median" -lt 1000 ]'

# the cost of one MMIO exit round trip, measured by the guest at CPL3
start_vm mmio --kernel "$GUEST" --cmdline "tern.mmio=20000 tern.hb=100"
wait_for "$TMP/mmio.console" '^MMIO ' 20
ns=$(grep -o 'reads [0-9]* ns/read' "$TMP/mmio.console" | cut -d' ' -f2)
note "MMIO exit round trip: ${ns:-?} ns (20000 reads of an unclaimed register from CPL3)"
check "MMIO exits reach tern-vmm and return (${ns:-?} ns each)" eval '[ -n "$ns" ] && [ "$ns" -gt 0 ] && [ "$ns" -lt 1000000 ]'
check "the guest runs on after the MMIO probe" wait_for "$TMP/mmio.console" '^HB 3 ' 5
kill "${VM_PID[mmio]}"; wait_vm mmio

# console on a unix socket: clients attach and read the guest's output
"$VMM" --kernel "$GUEST" --cmdline "tern.hb=50" --console "unix:$TMP/con.sock" \
    --control "$TMP/uc.sock" 2>"$TMP/uc.log" &
VM_PID[uc]=$!
for _ in $(seq 100); do [ -S "$TMP/con.sock" ] && break; sleep 0.02; done
timeout 3 socat -u "UNIX-CONNECT:$TMP/con.sock" - >"$TMP/uc.out" 2>/dev/null
check "unix console: a client reads heartbeats" grep -q '^HB [0-9]' "$TMP/uc.out"
ctl uc '{"cmd":"quit"}' >/dev/null; wait_vm uc
check "unix console: socket removed at exit" [ ! -e "$TMP/con.sock" ]

# console input: a line typed on the unix console reaches the guest's UART,
# and tern-guest answers it with ECHO (the check for an interactive console)
"$VMM" --kernel "$GUEST" --cmdline "tern.hb=50" --console "unix:$TMP/ci.sock" \
    --control "$TMP/ci.ctl" 2>"$TMP/ci.log" &
VM_PID[ci]=$!
for _ in $(seq 100); do [ -S "$TMP/ci.sock" ] && break; sleep 0.02; done
(sleep 0.5; printf 'hello tern\r'; sleep 0.3; printf 'ab\177c\n'; sleep 1) |
    timeout 4 socat "UNIX-CONNECT:$TMP/ci.sock" - >"$TMP/ci.out" 2>/dev/null
check "console input: the guest echoes a typed line" grep -q '^ECHO hello tern' "$TMP/ci.out"
check "console input: backspace edits the line" grep -q '^ECHO ac$' "$TMP/ci.out"
check "console input: heartbeats go on" grep -q '^HB [0-9]' "$TMP/ci.out"
"$CTL" "$TMP/ci.ctl" '{"cmd":"quit"}' >/dev/null; wait_vm ci

# powerdown: the serial ring indicator is tern-guest's power button
start_vm pb --kernel "$GUEST" --cmdline "tern.hb=50"
wait_for "$TMP/pb.console" '^HB 3 ' 5
wait_socket pb
events=$(timeout 10 "$CTL" --wait-event shutdown "$TMP/pb.sock" '{"cmd":"powerdown"}')
check "powerdown: the guest powers off on its own" grep -q '"reason":"poweroff"' <<<"$events"
check "powerdown: POWER BUTTON, then POWEROFF on the console" \
    eval "grep -A1 '^POWER BUTTON' '$TMP/pb.console' | grep -q '^POWEROFF'"
check "powerdown: exit status 0" eval "wait_vm pb; [ \$RC = 0 ]"
start_vm pp --kernel "$GUEST" --cmdline "tern.hb=50"
wait_for "$TMP/pp.console" '^HB 2 ' 5
wait_socket pp
ctl pp '{"cmd":"pause"}' >/dev/null
ctl pp '{"cmd":"powerdown"}' >/dev/null
sleep 0.3
check "powerdown while paused: nothing happens until resume" eval "! grep -q POWEROFF '$TMP/pp.console'"
ctl pp '{"cmd":"resume"}' >/dev/null
check "powerdown while paused: taken after resume" wait_for "$TMP/pp.console" '^POWEROFF' 5
wait_vm pp

# console_input: the same bytes through the control socket (a file console)
start_vm cin --kernel "$GUEST" --cmdline "tern.hb=50"
wait_for "$TMP/cin.console" '^HB 2 ' 5
wait_socket cin
reply=$(ctl cin '{"cmd":"console_input","data":"via control\r"}')
check "console_input: all bytes accepted" grep -q '"accepted":12' <<<"$reply"
check "console_input: the guest echoes the line" wait_for "$TMP/cin.console" '^ECHO via control$' 5
long=$(printf 'x%.0s' $(seq 100))
reply=$(ctl cin "{\"cmd\":\"console_input\",\"data\":\"$long\"}")
check "console_input: a full FIFO takes what fits (64 of 100)" grep -q '"accepted":64' <<<"$reply"
reply=$(ctl cin '{"cmd":"console_input","data":5}')
check "console_input: data must be a string" grep -q "'data' must be a string" <<<"$reply"
ctl cin '{"cmd":"quit"}' >/dev/null; wait_vm cin
