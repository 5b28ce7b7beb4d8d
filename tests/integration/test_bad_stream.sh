# Bad migration streams: a destination refuses every corrupt, truncated or
# inconsistent stream with one error line naming what was wrong, exits with
# status 1 (never a signal), and leaves nothing behind. A faithful replay of
# a recorded stream still makes the destination run.
#
# One good stream is recorded at the start (source -> tee-proxy -> real
# destination); every mutation is made from it with tests/tools/streamedit
# and fed to a fresh `tern-vmm --incoming` by tests/tools/replay. The
# mutation cases run under the ASan+UBSan tern-vmm ($BUILD/asan/tern-vmm)
# when it is built. Golden streams (tests/golden) are checked with
# streamcheck, no KVM needed.
source "$(dirname "$0")/lib.sh"

TOOLS=$BUILD/tests
SE=$TOOLS/streamedit
REPLAY=$TOOLS/replay
GOLDEN=$(dirname "$0")/../golden
BAD_VMM=$VMM
if [ -x "$BUILD/asan/tern-vmm" ] && [ -z "${NO_ASAN:-}" ]; then
    BAD_VMM=$BUILD/asan/tern-vmm
fi
# an ASan or UBSan report must never look like an ordinary refusal (status 1)
export ASAN_OPTIONS=detect_leaks=0:exitcode=86:abort_on_error=0
export UBSAN_OPTIONS=halt_on_error=1:exitcode=87:print_stacktrace=1

# ---- golden streams: checked without KVM ----
for g in "$GOLDEN"/v1-*.stream.gz "$GOLDEN"/v1-*.stream; do
    [ -e "$g" ] || continue
    name=$(basename "$g"); name=${name%.gz}; name=${name%.stream}
    want=$GOLDEN/$name.expect
    if [ "${g%.gz}" != "$g" ]; then gzip -dc "$g" >"$TMP/golden.stream"
    else cp "$g" "$TMP/golden.stream"; fi
    out=$("$TOOLS/streamcheck" "$TMP/golden.stream" 2>&1); rc=$?
    if [ $rc -eq 0 ] && [ -f "$want" ] && [ "$out" = "$(cat "$want")" ]; then
        ok "golden $name: streamcheck accepts it with the expected counts"
    else
        not_ok "golden $name: rc=$rc: $(diff <(echo "$out") "$want" | head -5 | tr '\n' ' ')"
    fi
done

if [ ! -e /dev/kvm ]; then
    ok "bad streams # SKIP no /dev/kvm"
    exit 0
fi
note "mutations run under $BAD_VMM"

# ---- record one good stream ----
STREAM=$TMP/good.stream
start_vm dst --incoming "unix:$TMP/D.sock"
for i in $(seq 100); do [ -S "$TMP/D.sock" ] && break; sleep 0.02; done
"$TOOLS/tee-proxy" "$TMP/P.sock" "unix:$TMP/D.sock" "$STREAM" 2>"$TMP/proxy.log" &
PROXY=$!
start_vm src --memory 64M --kernel "$GUEST" --cmdline "tern.hb=100 tern.ws=8 tern.rate=5"
wait_for "$TMP/src.console" '^HB [0-9]+' 20
for i in $(seq 100); do [ -S "$TMP/P.sock" ] && break; sleep 0.02; done
ctl src '{"cmd":"migrate","uri":"unix:'"$TMP/P.sock"'"}' >/dev/null
recorded=0
wait_for "$TMP/proxy.log" 'recorded [0-9]+ bytes' 60 && recorded=1
wait_vm src
ctl dst '{"cmd":"quit"}' >/dev/null 2>&1
wait_vm dst
kill "$PROXY" 2>/dev/null; wait "$PROXY" 2>/dev/null
if [ $recorded -eq 1 ] && [ -s "$STREAM" ] &&
   "$SE" list "$STREAM" | tail -1 | grep -q ' COMMIT '; then
    ok "recorded a stream of $(stat -c %s "$STREAM") bytes ending in COMMIT"
else
    not_ok "recording failed: $(cat "$TMP/proxy.log" "$TMP/src.log" | tail -3 | tr '\n' ' ')"
    exit 0
fi
"$SE" list "$STREAM" >"$TMP/list"
last_hb_recorded=$(last_hb src)

if [ -x "$TOOLS/streamcheck" ]; then
    out=$("$TOOLS/streamcheck" "$STREAM" 2>&1)
    check "streamcheck accepts the recorded stream: $(echo "$out" | tr '\n' ' ')" \
        test $? -eq 0
fi

# ---- the faithful replay: the destination runs and the guest goes on ----
VMM=$BAD_VMM start_vm rep --incoming "unix:$TMP/R.sock"
"$REPLAY" -t 30 "$TMP/R.sock" "$STREAM" >"$TMP/rep.out" 2>/dev/null
replay_rc=$?
if [ $replay_rc -eq 0 ] && wait_for "$TMP/rep.console" "^HB $((last_hb_recorded + 3)) " 15; then
    ok "faithful replay: destination runs, heartbeats go on after HB $last_hb_recorded"
else
    not_ok "faithful replay: rc=$replay_rc $(tr '\n' ' ' <"$TMP/rep.out") console: $(tail -2 "$TMP/rep.console" | tr '\n' ' ')"
fi
ctl rep '{"cmd":"quit"}' >/dev/null 2>&1
wait_vm rep
check "faithful replay: destination quits with status 0 (got $RC)" test "$RC" -eq 0

# ---- mutations ----
# bad_case NAME FILE REGEX [either]: a fresh destination must refuse FILE with
# status 1 and one error line matching REGEX (case-insensitive). With
# "either", running (the flip made no semantic difference) is accepted too.
# Unless told "either" or "host", streamcheck must refuse FILE as well.
N=0
bad_case() {
    local name=$1 file=$2 want=$3 either=${4:-}
    N=$((N + 1))
    local sock=$TMP/b$N.sock ctl=$TMP/b$N.ctl err=$TMP/b$N.err
    "$BAD_VMM" --incoming "unix:$sock" --control "$ctl" --console "file:$TMP/b$N.con" \
        2>"$err" &
    local pid=$!
    "$REPLAY" -t 40 "$sock" "$file" >"$TMP/b$N.rep" 2>/dev/null
    local replay_rc=$?
    if [ $replay_rc -eq 0 ]; then   # it runs: stop it
        "$CTL" "$ctl" '{"cmd":"quit"}' >/dev/null 2>&1
    fi
    local i
    for i in $(seq 400); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    local hung=0
    if kill -0 "$pid" 2>/dev/null; then hung=1; kill -9 "$pid"; fi
    local rc=0
    wait "$pid" || rc=$?
    # the offline checker must refuse it too (unless only the host can tell)
    local sc_rc=1 sc_out=""
    if [ -z "$either" ] && [ -x "$TOOLS/streamcheck" ]; then
        sc_out=$("$TOOLS/streamcheck" "$file" 2>&1 >/dev/null); sc_rc=$?
    fi
    local lines errline
    lines=$(grep -cE '^tern-vmm: | error ' "$err")
    errline=$(grep -E '^tern-vmm: | error ' "$err" | head -1 | sed -E 's/^[0-9TZ:.-]+ error [a-z]+ vm=[^ ]*: //')
    if grep -qE 'Sanitizer|runtime error' "$err"; then
        not_ok "$name: sanitizer report (rc=$rc): $(grep -m1 -E 'Sanitizer|runtime error' "$err")"
        cp "$err" "$BUILD/test-logs/bad_stream_$N.sanitizer" 2>/dev/null
    elif [ $hung -eq 1 ]; then
        not_ok "$name: destination still running after 20 s"
    elif [ "$either" = either ] && [ $replay_rc -eq 0 ] && [ $rc -eq 0 ]; then
        ok "$name: accepted (no semantic difference), ran and quit"
    elif [ $rc -eq 1 ] && [ "$lines" -eq 1 ] && grep -qiE -- "$want" <<<"$errline" &&
         [ ! -e "$sock" ]; then
        if [ $sc_rc -eq 1 ]; then ok "$name: $errline"
        else not_ok "$name: destination refused, streamcheck rc=$sc_rc: $sc_out"; fi
    else
        not_ok "$name: rc=$rc error lines=$lines: $(grep -vE ' info ' "$err" | head -3 | tr '\n' ' ')"
    fi
}

offset_of() { awk -v i="$1" '$1 == i { print $2 }' "$TMP/list"; }
index_of() { awk -v t="$1" '$3 == t { print $1; exit }' "$TMP/list"; }
section_index() { awk -v s="$1" '$3 == "SECTION" && $5 == s { print $1; exit }' "$TMP/list"; }
M=$TMP/mut.stream
SEED=${SEED:-$RANDOM}
note "bit flip seed $SEED (SEED=$SEED reproduces)"

# bit flips where the destination must notice
flips() {   # category count regex [either]
    local cat=$1 n=$2 re=$3 either=${4:-} k=0 off bit
    while read -r off bit; do
        k=$((k + 1))
        "$SE" flip "$STREAM" "$M" "$off" "$bit"
        bad_case "flip $cat #$k (byte $off bit $bit)" "$M" "$re" "$either"
    done < <("$SE" pick "$STREAM" "$cat" "$n" "$((SEED + ${#cat} * 7 + n))")
}
flips hdr 4 'magic|crc mismatch'
flips ramhead 2 'ram:'
flips ramentry 3 'ram:'
flips ramcrc 2 'ram: crc mismatch'
flips pagedata 4 'ram: crc mismatch on page'
flips sechdr 3 'section'
flips secdata 2 "section '[a-z-]+' instance [0-9]+: crc mismatch"
flips hello 1 '.' either
flips any 1 '.' either

# truncations: inside and between messages, before END, before COMMIT
ram1=$(index_of RAM)
sec1=$(index_of SECTION)
end=$(index_of END)
commit=$(index_of COMMIT)
for cut in 0 10 200 "$(offset_of "$ram1")" "$(( $(offset_of "$ram1") + 16 + 1000 ))" \
           "$(( $(offset_of "$ram1") + 16 + 8 + 12 * 1024 + 5000 ))" \
           "$(( $(offset_of "$sec1") ))" "$(( $(offset_of "$sec1") + 30 ))" \
           "$(offset_of "$end")" "$(offset_of "$commit")" "$(( $(offset_of "$commit") + 9 ))"; do
    head -c "$cut" "$STREAM" >"$M"
    bad_case "truncated at byte $cut" "$M" 'closed|truncated'
done

"$SE" hello-version "$STREAM" "$M" 2 2
bad_case "HELLO asks for protocol version 2" "$M" 'version'
"$SE" hello-version "$STREAM" "$M" 0 0
bad_case "HELLO asks for protocol version 0" "$M" 'version'
"$SE" settype "$STREAM" "$M" "$((ram1 + 1))" 42
bad_case "unknown message type 42" "$M" 'unknown message type 42'
"$SE" insert "$STREAM" "$M" "$sec1" 2
bad_case "HELLO_ACK in the middle of the stream" "$M" 'unexpected HELLO_ACK'
"$SE" setlen "$STREAM" "$M" "$ram1" 0x7fffffff
bad_case "RAM header length beyond the limit" "$M" 'exceeds the limit'
"$SE" setlen "$STREAM" "$M" 0 0x200000
bad_case "HELLO header length beyond the limit" "$M" 'exceeds the limit'
"$SE" seclen "$STREAM" "$M" serial 1000
bad_case "SECTION data length beyond its message" "$M" "section 'serial' length 1000"
"$SE" ramcount "$STREAM" "$M" "$ram1" 2000
bad_case "RAM batch of 2000 pages" "$M" 'batch of 2000 pages'
"$SE" secname "$STREAM" "$M" serial serial9
bad_case "unknown section 'serial9'" "$M" "section 'serial9'.*no such device"
"$SE" secver "$STREAM" "$M" serial 2
bad_case "section version above supported" "$M" "section 'serial' version 2 > supported 1"
"$SE" secver "$STREAM" "$M" pit 0
bad_case "section version 0" "$M" "section 'pit' version 0"
"$SE" dup "$STREAM" "$M" serial
bad_case "section sent twice" "$M" "section 'serial' instance 0 sent twice"
"$SE" drop "$STREAM" "$M" pit
bad_case "section missing" "$M" "without section 'pit'"
"$SE" secbyte "$STREAM" "$M" serial 10 200
bad_case "serial state with a fifo of 200 (crc valid)" "$M" "section 'serial'.*fifo 200"
"$SE" secbyte "$STREAM" "$M" cpu 457 0xff
bad_case "cpu state with a bad xsave length (crc valid)" "$M" "section 'cpu'" host
"$SE" hello-replace "$STREAM" "$M" '"memory":67108864' '"memory":68719476736'
bad_case "HELLO claims 64 GiB of memory" "$M" 'memory 65536M is more than the host has' host
"$SE" hello-replace "$STREAM" "$M" '"cpus":1' '"cpus":1,,'
bad_case "HELLO with malformed json" "$M" 'hello: config is not a json object'
"$SE" hello-replace "$STREAM" "$M" '"cpus":1' '"cpus":-5'
bad_case "HELLO with cpus -5" "$M" "hello: 'cpus'"
"$SE" insert "$STREAM" "$M" 0 3
bad_case "RAM before HELLO" "$M" 'expected HELLO, got RAM'

left=$(pgrep -f -- "--incoming unix:$TMP/" | wc -l)
check "no destination left behind ($left)" test "$left" -eq 0
