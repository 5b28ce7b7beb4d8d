# The web UI in real browsers (Debian's chromium, then firefox-esr, headless, driven by
# puppeteer-core from tests/browser/package.json) against a real
# three-node cluster with a real tern-vmm: login (a bad token refused),
# nodes and quorum, the VM and its console, the migrate dialog's per-node
# pre-check table with a refusal, a live migration to TASK OK, a slow one
# cancelled from the page, a VM's local disk migrated with its bar.
# Screenshots in build/test-logs/browser-shots/.
# Without chromium, node or the npm packages it says SKIPPED and why.
NET=127.0.0.16   # 127.0.0.161-163 (test_task_faults has 127.0.0.8x)
. tests/integration/cluster_lib.sh

DIR=tests/browser
skip() { echo "ok - browser tests # SKIP $*"; echo "# SKIPPED: $*"; exit 0; }
CHROMIUM=${CHROMIUM:-$(command -v chromium)}
[ -x "$CHROMIUM" ] || skip "chromium is not installed (scripts/install-deps installs it)"
export CHROMIUM
command -v node >/dev/null || skip "node is not installed (scripts/install-deps installs it)"
if [ ! -d "$DIR/node_modules/puppeteer-core" ]; then
    npm ci --prefix "$DIR" --no-audit --no-fund >"$TMP/npm.log" 2>&1 ||
        skip "npm ci in $DIR failed: $(tail -1 "$TMP/npm.log")"
fi

SHOTS=$BUILD/test-logs/browser-shots
rm -rf "$SHOTS"; mkdir -p "$SHOTS"
check "cluster created on n1, n2 and n3 joined, all online" cluster_up ui
mkdir -p "$TMP/shared"
check "storage add shared" tern_on n1 storage add shared --path "$TMP/shared" --shared
check "vm create 100 (96 MiB) and start it on n1" bash -c \
    "$TERN --config $TMP/n1.conf vm create 100 --memory 96 --cpus 1 --kernel $GUEST \
        --cmdline 'tern.hb=50 tern.ws=16 tern.rate=20 tern.verify=1' --disk shared:8 >/dev/null &&
     $TERN --config $TMP/n1.conf vm start 100 >/dev/null"
check "vm 100 runs on n1" vm_on 100 n1
check "storage local (not shared) and vm 102 with a disk there, running" bash -c \
    "$TERN --config $TMP/n1.conf storage add local --path '$TMP/{node}/images' >/dev/null &&
     $TERN --config $TMP/n1.conf vm create 102 --memory 64 --cpus 1 --kernel $GUEST \
        --cmdline 'tern.hb=200 tern.disk=2' --disk local:8 --start >/dev/null"

# run_steps BROWSER SOURCE TARGET SHOTS: ui.test.mjs's steps in that browser,
# vm 100 and 102 migrated from SOURCE to TARGET (n3 the far node)
run_steps() {
    local t0=$(now_ms) err="$TMP/node-$1.err"
    mkdir -p "$4"
    URL="https://$(node_ip n1):18406" TOKEN=$(cat "$TMP/n1/data/admin.token") VMID=100 \
        LOCALVM=102 SOURCE=$2 TARGET=$3 FAR=n3 NETWORK="$(node_ip "$3")/32" SHOTS="$4" \
        BROWSER=$1 timeout 150 node "$DIR/ui.test.mjs" 2>"$err"
    local rc=$?
    note "$1 part: $(( ($(now_ms) - t0) / 1000 )) s; screenshots in $4"
    [ $rc = 0 ] || while IFS= read -r l; do note "node: $l"; done < <(tail -5 "$err")
}
run_steps chromium n1 n2 "$SHOTS"
check "the vm verifies its pages on n2 after the page's migration and cancel" verify_on n2 100
check "exactly one tern-vmm runs vm 100" [ "$(vmm_count 100)" = 1 ]

# the same steps in firefox-esr, back the other way (n2 -> n1)
export FIREFOX=${FIREFOX:-$(command -v firefox-esr)}
if [ -x "$FIREFOX" ]; then
    run_steps firefox n2 n1 "$SHOTS/firefox"
    check "firefox: the vm verifies its pages on n1" verify_on n1 100
    check "firefox: exactly one tern-vmm runs vm 100" [ "$(vmm_count 100)" = 1 ]
else
    echo "ok - firefox steps # SKIP firefox-esr is not installed (scripts/install-deps installs it)"
fi
stop_all
