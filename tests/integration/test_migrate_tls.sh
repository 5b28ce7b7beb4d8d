# TLS 1.3 with mutual certificates (refusals before anything is read) and
# the bandwidth limit.
source "$(dirname "$0")/lib.sh"

scripts/make-certs "$TMP/pki" node1 node2 >/dev/null
scripts/make-certs "$TMP/evil" rogue >/dev/null
start_vm src --kernel "$GUEST" --memory 512M --cmdline "tern.hb=50 tern.ws=64 tern.rate=50 tern.verify=1" \
    --tls-dir "$TMP/pki/node1"
wait_for "$TMP/src.console" '^VERIFY ok' 10

port=$(rand_port)
start_dst rogue-dst "tcp:127.0.0.1:$port" --tls-dir "$TMP/pki/node2"
migrate src "tcp:127.0.0.1:$port" ",\"tls\":true,\"tls_dir\":\"$TMP/evil/rogue\""
check "tls: a certificate from another CA is refused" [ "$MIG" = failed ]
wait_vm rogue-dst
check "tls: the destination exits 1 and names the certificate" \
    eval "[ \$RC = 1 ] && grep -q 'unknown ca\\|certificate' '$TMP/rogue-dst.log'"
check "tls: the destination read no migration data (built no VM)" \
    bash -c "! grep -q 'started:' '$TMP/rogue-dst.log'"

port=$(rand_port)
start_dst plain-dst "tcp:127.0.0.1:$port" --tls-dir "$TMP/pki/node2"
migrate src "tcp:127.0.0.1:$port"
check "tls: a source without tls (no certificate) is refused" [ "$MIG" = failed ]
wait_vm plain-dst
check "tls: ... the destination exits 1" [ "$RC" = 1 ]
check "tls: ... and never built a VM" bash -c "! grep -q 'started:' '$TMP/plain-dst.log'"

port=$(rand_port)
start_dst nocert-dst "tcp:127.0.0.1:$port" --tls-dir "$TMP/pki/node2"
mkdir -p "$TMP/nocert" && cp "$TMP/pki/node1/ca.pem" "$TMP/nocert/"
reply=$(ctl src "{\"cmd\":\"migrate\",\"uri\":\"tcp:127.0.0.1:$port\",\"tls\":true,\"tls_dir\":\"$TMP/nocert\"}")
check "tls: migrate without a client certificate refused up front" grep -q 'cert.pem' <<<"$reply"
kill "${VM_PID[nocert-dst]}"; wait_vm nocert-dst
check "tls: source unaffected by refusals" verify_ok_after src 5

port=$(rand_port)
start_dst tls-dst "tcp:127.0.0.1:$port" --tls-dir "$TMP/pki/node2"
migrate src "tcp:127.0.0.1:$port" ',"tls":true'
check "tls: migration with certificates of the cluster CA completes" [ "$MIG" = completed ]
check "tls: destination VERIFY ok" verify_ok_after tls-dst
check "tls: heartbeat continues" hb_consecutive_across src tls-dst
wait_vm src

port=$(rand_port)
start_dst plain2 "tcp:127.0.0.1:$port"
migrate tls-dst "tcp:127.0.0.1:$port"
check "insecure mode (plain tcp) works too" [ "$MIG" = completed ]
check "insecure: destination VERIFY ok" verify_ok_after plain2
ctl plain2 '{"cmd":"quit"}' >/dev/null; wait_vm plain2; wait_vm tls-dst

# bandwidth limit: 256 MiB written once, moved at 100 MB/s
start_vm bw --kernel "$GUEST" --memory 512M --cmdline "tern.hb=200 tern.ws=256 tern.rate=0 tern.verify=2"
wait_for "$TMP/bw.console" '^HB [0-9]+ 65536$' 30
start_dst bw-dst "unix:$TMP/bw.mig"
migrate bw "unix:$TMP/bw.mig" ',"max_bandwidth":100000000'
bytes=$(fig bw transferred); total=$(fig bw total_ms); setup=$(fig bw setup_ms); down=$(fig bw downtime_ms)
rate=$(awk -v b="$bytes" -v t="$total" -v s="$setup" -v d="$down" 'BEGIN { printf "%.1f", b / ((t - s - d) / 1000) / 1e6 }')
note "bandwidth limit 100 MB/s: measured $rate MB/s over $bytes bytes"
# the limit is a ceiling: never more than 10% above it (below it says
# nothing about the limit: suites run side by side on a loaded host)
check "bandwidth limit respected: at most 10% above (measured $rate MB/s)" \
    awk -v r="$rate" 'BEGIN { exit !(r > 0 && r <= 110) }'
n=$(grep '"event":"migration"' "$TMP/bw.events" | grep -c '"status":"active"')
check "bandwidth: progress events at least once a second during a long pass ($n)" [ "$n" -ge 2 ]
check "bandwidth: destination VERIFY ok" verify_ok_after bw-dst
ctl bw-dst '{"cmd":"quit"}' >/dev/null; wait_vm bw-dst; wait_vm bw
