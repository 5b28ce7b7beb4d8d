#!/bin/bash
# Records a golden migration stream: tests/golden/record.sh NAME SECONDS
# [source tern-vmm options...]. Boots tern-guest (64M unless options say
# otherwise) as a source, lets it run SECONDS, migrates it through
# tests/tools/tee-proxy to a destination, and writes tests/golden/NAME.stream
# (gzip'ed as NAME.stream.gz when over 1 MB) and NAME.expect (what
# streamcheck prints for it). Run from the top directory after
# `make all test-bins`. DST_OPTS: options for the destination (its --net).
set -euo pipefail
BUILD=${BUILD:-build}
name=$1 secs=$2; shift 2
dir=$(dirname "$0")
tmp=$(mktemp -d /tmp/tern-golden.XXXXXX)
pids=()
trap 'kill -9 "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
"$BUILD/tern-vmm" --incoming "unix:$tmp/D.sock" --control "$tmp/dst.sock" \
    --console "file:$tmp/dst.con" ${DST_OPTS:-} 2>"$tmp/dst.log" & pids+=($!)
sleep 0.3
"$BUILD/tests/tee-proxy" "$tmp/P.sock" "unix:$tmp/D.sock" "$tmp/out.stream" \
    2>"$tmp/proxy.log" & pids+=($!)
"$BUILD/tern-vmm" --memory 64M --kernel "$BUILD/guest/tern-guest" \
    --cmdline "tern.hb=100 tern.ws=8 tern.rate=5" --control "$tmp/src.sock" \
    --console "file:$tmp/src.con" "$@" 2>"$tmp/src.log" & pids+=($!)
sleep "$secs"
"$BUILD/tests/ctl" "$tmp/src.sock" '{"cmd":"migrate","uri":"unix:'"$tmp/P.sock"'"}'
for _ in $(seq 300); do grep -q recorded "$tmp/proxy.log" && break; sleep 0.1; done
cat "$tmp/proxy.log"
"$BUILD/tests/streamcheck" "$tmp/out.stream" >"$dir/$name.expect"
rm -f "$dir/$name.stream" "$dir/$name.stream.gz"
if [ "$(stat -c %s "$tmp/out.stream")" -gt $((1 << 20)) ]; then
    gzip -9n <"$tmp/out.stream" >"$dir/$name.stream.gz"
else
    cp "$tmp/out.stream" "$dir/$name.stream"
fi
cat "$dir/$name.expect"
"$BUILD/tests/ctl" "$tmp/dst.sock" '{"cmd":"quit"}' >/dev/null || true
