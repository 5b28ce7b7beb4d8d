# Several channels (migrate "channels", feature CHANNELS): RAM over N
# connections, each with TLS when asked; one connection over unix:; a
# stranger on the port instead of the source's extra connection. Each
# migration moves a dirtying guest that verifies its pages after it.
source "$(dirname "$0")/lib.sh"

scripts/make-certs "$TMP/pki" node1 node2 >/dev/null
start_vm a --kernel "$GUEST" --memory 512M \
    --cmdline "tern.hb=50 tern.ws=128 tern.rate=50 tern.verify=1"
wait_for "$TMP/a.console" '^VERIFY ok' 10

port=$(rand_port)
start_dst b "tcp:127.0.0.1:$port"
migrate a "tcp:127.0.0.1:$port" ',"channels":2'
check "2 channels: completed" [ "$MIG" = completed ]
check "2 channels: the destination took 2" grep -q "2 channels" "$TMP/b.log"
check "2 channels: destination VERIFY ok" verify_ok_after b
check "2 channels: heartbeat continues" hb_consecutive_across a b
wait_vm a

port=$(rand_port)
start_dst c "tcp:127.0.0.1:$port" --tls-dir "$TMP/pki/node2"
migrate b "tcp:127.0.0.1:$port" ",\"channels\":4,\"tls\":true,\"tls_dir\":\"$TMP/pki/node1\""
check "4 channels with tls: completed" [ "$MIG" = completed ]
check "4 channels with tls: the destination took 4" grep -q "4 channels" "$TMP/c.log"
check "4 channels with tls: destination VERIFY ok" verify_ok_after c
wait_vm b

start_dst d "unix:$TMP/d.mig"
migrate c "unix:$TMP/d.mig" ',"channels":3'
check "unix: one connection (extra ones need tcp:), completed" [ "$MIG" = completed ]
check "unix: the destination took no extra channel" bash -c "! grep -q 'channels' '$TMP/d.log'"
check "unix: destination VERIFY ok" verify_ok_after d
wait_vm c

check "channels 9 refused" \
    grep -q "'channels'" <<<"$(ctl d '{"cmd":"migrate","uri":"tcp:127.0.0.1:1","channels":9}')"
check "channels 0 refused" \
    grep -q "'channels'" <<<"$(ctl d '{"cmd":"migrate","uri":"tcp:127.0.0.1:1","channels":0}')"

ctl d '{"cmd":"quit"}' >/dev/null; wait_vm d

# a stranger connects where the source's second connection belongs
TERN_TEST_HOLD=channels TERN_TEST_HOLD_MS=1500 start_vm s --kernel "$GUEST" --memory 256M \
    --cmdline "tern.hb=50 tern.ws=32 tern.rate=20 tern.verify=1"
wait_for "$TMP/s.console" '^VERIFY ok' 10
port=$(rand_port)
start_dst e "tcp:127.0.0.1:$port"
( wait_for "$TMP/s.log" "test hold at 'channels'" 20 &&
    exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'not a tern stream, not at all' >&3 &&
    sleep 2 ) &
stranger=$!
migrate s "tcp:127.0.0.1:$port" ',"channels":2'
wait $stranger
wait_vm e
check "stranger on the port: migration failed" [ "$MIG" = failed ]
check "stranger on the port: the destination exits 1 naming it" \
    eval "[ \$RC = 1 ] && grep -q 'bad message magic' '$TMP/e.log'"
check "stranger on the port: the guest never ran there" [ ! -s "$TMP/e.console" ]
check "stranger on the port: the source keeps running and verifies" verify_ok_after s 5
ctl s '{"cmd":"quit"}' >/dev/null; wait_vm s

