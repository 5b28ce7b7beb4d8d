# The storage, VM and cluster-option endpoints of one ternd (a static
# one-member cluster on 127.0.0.41, etcd ports 26791/26801, API 18306, apart
# from the other ternd tests): storage added and refused, VMs created with
# sparse disk files, listed and shown, every bad field refused with 400 and
# one line naming it, a duplicate id 409, a running VM kept, destroy removing
# the disks, storage in use kept, options read and changed.
BUILD=${BUILD:-build}
. tests/integration/lib.sh
TERND=$BUILD/ternd
IP=127.0.0.41
ETCD_URL=http://$IP:26791
API=https://$IP:18306/api/v1
DATA=$TMP/n1/data
TD_PID=

[ -x "$TERND" ] || { not_ok "$TERND is missing (make build/ternd)"; exit 1; }
[ -x "${TERN_ETCD:-/usr/bin/etcd}" ] || { not_ok "etcd is missing (scripts/install-deps)"; exit 1; }
command -v jq >/dev/null || { not_ok "jq is missing"; exit 1; }

stop_ternd() {
    [ -n "$TD_PID" ] || return 0
    kill -TERM "$TD_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$TD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$TD_PID" 2>/dev/null
    wait 2>/dev/null
    TD_PID=
}
trap 'stop_ternd; cleanup' EXIT

mkdir -p "$TMP/n1"
cat >"$TMP/n1.conf" <<EOF
name = n1
cluster_address = $ETCD_URL
peer_address = http://$IP:26801
initial_cluster = n1=http://$IP:26801
migration_address = $IP:7306
data_dir = $DATA
api_address = $IP:18306
heartbeat_ttl_s = 3
etcd_election_ms = 500
EOF
"$TERND" --config "$TMP/n1.conf" 2>>"$TMP/n1.log" &
TD_PID=$!

# api METHOD PATH [BODY]: the status in $CODE, the answer in $OUT.
api() {
    local args=(-s -o "$TMP/resp.json" -w '%{http_code}' --noproxy '*' -X "$1"
                --cacert "$DATA/tls/cert.pem"
                -H "Authorization: Bearer $(cat "$DATA/admin.token" 2>/dev/null)")
    [ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
    CODE=$(curl "${args[@]}" "$API$2" 2>/dev/null)
    OUT=$(cat "$TMP/resp.json" 2>/dev/null)
}
# is CODE JQ-CONDITION: the last answer had that status and matches.
is() { [ "$CODE" = "$1" ] && jq -e "$2" <<<"$OUT" >/dev/null 2>&1; }
# refused BODY-FIELD-REGEX: 400 with one line of error naming it.
refused() {
    [ "$CODE" = 400 ] && [ "$(jq -r '.error' <<<"$OUT" | wc -l)" -eq 1 ] &&
        jq -r '.error' <<<"$OUT" | grep -Eq -- "$1"
}
# etcd_put KEY VALUE: straight into etcd, as the owner's supervisor would.
etcd_put() {
    curl -s --noproxy '*' "$ETCD_URL/v3/kv/put" -d "{\"key\": \"$(printf %s "$1" | base64 -w0)\",
        \"value\": \"$(printf %s "$2" | base64 -w0)\"}" >/dev/null
}

deadline=$(( $(now_ms) + 30000 ))
until api GET /nodes && is 200 '.nodes[0].online == true'; do
    [ "$(now_ms)" -ge $deadline ] && break
    sleep 0.2
done
check "ternd up, n1 online" is 200 '.nodes[0].online == true'

# --- storage
LOCAL=$TMP/store/local   # made on the first disk, not here
SHARED=$TMP/shared
mkdir -p "$SHARED"
api POST /storage "{\"name\": \"local\", \"path\": \"$LOCAL/\"}"
check "storage 'local' added (201, trailing slash dropped)" \
    is 201 ".name == \"local\" and .path == \"$LOCAL\" and .shared == false"
api POST /storage "{\"name\": \"shared\", \"path\": \"$SHARED\", \"shared\": true}"
check "storage 'shared' added" is 201 '.shared == true'
api POST /storage "{\"name\": \"local\", \"path\": \"/elsewhere\"}"
check "the same name again: 409" is 409 '.error == "storage '"'local'"' exists"'
api POST /storage '{"name": "nfs", "path": "/no/such/dir", "shared": true}'
check "a shared path that does not exist here: 400 saying so" \
    refused "storage 'nfs': shared path '/no/such/dir' does not exist on node 'n1'"
echo x >"$TMP/afile"
api POST /storage "{\"name\": \"loc2\", \"path\": \"$TMP/afile/disks\"}"
check "a local path that cannot be made here: 400 naming the parent" \
    refused "storage 'loc2': local path '$TMP/afile/disks' cannot be made on node 'n1' \\('$TMP/afile' is not a writable directory\\)"
api POST /storage '{"name": "rel", "path": "srv/tern"}'
check "a relative path: 400 naming 'path'" refused "'path' must be an absolute path"
api POST /storage '{"name": "x", "path": "/srv", "kind": "nfs"}'
check "an unknown key: 400 naming it" refused "unknown key 'kind'"
api GET /storage
check "storage list: both, sorted, not stale" \
    is 200 '.stale == false and ([.storage[].name] == ["local", "shared"])'

# --- VMs
VM100='{"id": 100, "name": "web", "memory_mib": 256, "cpus": 1, "kernel": "/bin/sh",
        "cmdline": "tern.hb=1", "disks": [{"storage": "local", "size_mib": 64},
                                          {"storage": "shared", "size_mib": 8}]}'
api POST /vms "$VM100"
check "vm 100 created (201): stopped, on n1, config with volume names" \
    is 201 '.id == 100 and .status == "stopped" and .node == "n1" and .lock == null and
            .config.disks[0].volume == "vm-100-disk-0.raw" and
            .config.disks[1].volume == "vm-100-disk-1.raw"'
note "$OUT"
D0=$LOCAL/vm-100-disk-0.raw D1=$SHARED/vm-100-disk-1.raw
check "disk files: sized, sparse, mode 600" \
    bash -c "[ \$(stat -c %s '$D0') -eq $((64 << 20)) ] && [ \$(stat -c %s '$D1') -eq $((8 << 20)) ] &&
             [ \$(stat -c %b '$D0') -eq 0 ] && [ \$(stat -c %a '$D0') = 600 ]"
api POST /vms '{"id": 101, "memory_mib": 64, "cpus": 2, "kernel": "/bin/sh"}'
check "vm 101 without disks created" is 201 '.id == 101 and .name == null and .config.disks == []'
api PUT /vms/101/config '{"cpus": 64}'
check "set config: the create's checks ('cpus' 1..32)" refused "'cpus' must be 1..32"
api PUT /vms/101/config '{"disks": []}'
check "set config: only memory_mib, cpus, name, cmdline" refused "'disks' cannot be set"
api PUT /vms/101/config '{"memory_mib": 128, "name": "db"}'
check "set config of a stopped vm: 200, changed" is 200 '.config.memory_mib == 128 and .config.name == "db" and .config.cpus == 2'
api PUT /vms/101/config '{"memory_mib": 64, "name": null}'
check "set config: back, name removed with null" is 200 '.config.memory_mib == 64 and (.config | has("name") | not)'
api GET /vms
check "vm list: 100 and 101 in order, no config in entries" \
    is 200 '.stale == false and ([.vms[].id] == [100, 101]) and
            (.vms[0] | has("config") | not) and .vms[0].memory_mib == 256'
api GET /vms/100
check "vm 100 shown with its config" \
    is 200 '.name == "web" and .config.cmdline == "tern.hb=1" and .config.disks[0].size_mib == 64
            and .last_exit == null and .pid == null and .uptime_s == null'
api GET /vms/555
check "an unknown vm: 404" is 404 '.error == "vm 555 does not exist"'
api GET /vms/12x
check "a bad vm id in the path: 400" refused "vm id '12x'"

# --- bad input: each one field wrong, each 400 with one line naming it
bad() {   # FIELD-REGEX JSON
    api POST /vms "$2"
    check "refused: $1 ($(jq -r .error <<<"$OUT" 2>/dev/null))" refused "$1"
}
base='"memory_mib": 64, "cpus": 1, "kernel": "/bin/sh"'
bad "'memory_mib' must be 16..1048576, not 5" '{"id": 102, "memory_mib": 5, "cpus": 1, "kernel": "/bin/sh"}'
bad "'cpus' must be 1..32" '{"id": 102, "memory_mib": 64, "cpus": 0, "kernel": "/bin/sh"}'
bad "'cpus' must be 1..32, not 64" '{"id": 102, "memory_mib": 64, "cpus": 64, "kernel": "/bin/sh"}'
bad "'id' must be 100..999999999" '{"id": 5, "memory_mib": 64, "cpus": 1, "kernel": "/bin/sh"}'
bad "'kernel' must be an absolute path" '{"id": 102, "memory_mib": 64, "cpus": 1, "kernel": "k"}'
bad "'kernel' must not contain '..'" '{"id": 102, "memory_mib": 64, "cpus": 1, "kernel": "/a/../k"}'
bad "vm 102: kernel '/no/such/kernel' is not on node 'n1' \\(its owner\\): No such file" '{"id": 102, "memory_mib": 64, "cpus": 1, "kernel": "/no/such/kernel"}'
bad "vm 102: kernel '/tmp' on node 'n1' is not a readable file" '{"id": 102, "memory_mib": 64, "cpus": 1, "kernel": "/tmp"}'
bad "'kernel' is missing" '{"id": 102, "memory_mib": 64, "cpus": 1}'
bad "'cmdline' must not contain a newline" "{\"id\": 102, $base, \"cmdline\": \"a\\nb\"}"
bad "'cmdline' is longer than 1023" "{\"id\": 102, $base, \"cmdline\": \"$(printf 'x%.0s' $(seq 1100))\"}"
bad "unknown key 'color'" "{\"id\": 102, $base, \"color\": \"red\"}"
bad "'name' must be 1..63" "{\"id\": 102, $base, \"name\": \"my vm\"}"
bad "disks\\[0\\]: 'size_mib' must be 1..16777216" "{\"id\": 102, $base, \"disks\": [{\"storage\": \"local\", \"size_mib\": 0}]}"
bad "disks\\[0\\]: storage 'nope' does not exist" "{\"id\": 102, $base, \"disks\": [{\"storage\": \"nope\", \"size_mib\": 1}]}"
bad "disks\\[0\\]: 'volume' is chosen by ternd" "{\"id\": 102, $base, \"disks\": [{\"storage\": \"local\", \"size_mib\": 1, \"volume\": \"x.raw\"}]}"
bad "request body" ''
api POST /vms '[1]'
check "a body that is no object: 400" refused "not a json object"
check "no vm 102 and no file of it after all that" \
    bash -c "! ls '$LOCAL' '$SHARED' | grep -q vm-102 && curl -s -o /dev/null -w '%{http_code}' --noproxy '*' \
             --cacert '$DATA/tls/cert.pem' -H 'Authorization: Bearer $(cat "$DATA/admin.token")' \
             $API/vms/102 | grep -q 404"

# --- conflicts
api POST /vms "$VM100"
check "the same id again: 409 'vm 100 exists'" is 409 '.error == "vm 100 exists"'
check "and vm 100's disks are untouched" bash -c "[ -f '$D0' ] && [ -f '$D1' ]"
echo stray >"$LOCAL/vm-102-disk-1.raw"
api POST /vms "{\"id\": 102, $base, \"disks\": [{\"storage\": \"local\", \"size_mib\": 1},
                                               {\"storage\": \"local\", \"size_mib\": 1}]}"
check "a disk file that exists already: 409 naming it" \
    is 409 ".error == \"disk file '$LOCAL/vm-102-disk-1.raw' exists already\""
check "the stray file kept, the disk made before it removed, no vm 102" \
    bash -c "[ \"\$(cat '$LOCAL/vm-102-disk-1.raw')\" = stray ] && [ ! -e '$LOCAL/vm-102-disk-0.raw' ]"
rm -f "$LOCAL/vm-102-disk-1.raw"

api DELETE /storage/local
check "storage in use cannot be removed: 409 naming the vm" is 409 '.error | test("in use by vm 100")'

# etcd_count KEY: how many keys start with KEY.
etcd_count() {
    curl -s --noproxy '*' "$ETCD_URL/v3/kv/range" -d "{\"key\": \"$(printf %s "$1" | base64 -w0)\",
        \"range_end\": \"$(printf %s "$1~" | base64 -w0)\", \"count_only\": true}" |
        jq -r '.count // "0"'
}

# --- a locked VM (a task holds it) is not destroyed
etcd_put /tern/locks/vm/101 "n1 task 7"
api GET /vms/101
check "the lock shows" is 200 '.lock == "n1 task 7"'
api DELETE /vms/101
check "destroying a locked vm: 409 naming the holder" is 409 '.error == "vm 101 is locked by '"'n1 task 7'"'"'
curl -s --noproxy '*' "$ETCD_URL/v3/kv/deleterange" -d "{\"key\": \"$(printf %s /tern/locks/vm/101 | base64 -w0)\"}" >/dev/null

# --- a running VM keeps its disks
etcd_put /tern/vmstate/101 "{\"node\": \"n1\", \"status\": \"running\", \"pid\": 4242, \"since\": $(( $(date +%s) - 5 ))}"
api GET /vms/101
check "a published state shows: running, pid, uptime" \
    is 200 '.status == "running" and .pid == 4242 and .uptime_s >= 5'
api DELETE /vms/101
check "destroying a running vm: 409" is 409 '.error == "vm 101 is running on node '"'n1'"'; stop it first"'
etcd_put /tern/vmstate/101 '{"node": "n1", "status": "stopped", "pid": 0, "since": 1}'
api DELETE /vms/101
check "stopped: destroyed" is 200 '.id == 101 and .destroyed == true'
gone_101() {
    [ "$(etcd_count /tern/vms/101/)" = 0 ] && [ "$(etcd_count /tern/vmstate/101)" = 0 ] &&
        [ "$(etcd_count /tern/locks/vm/101)" = 0 ]
}
check "config, owner, state and destroy lock of vm 101 gone from etcd" gone_101

# --- destroy
api DELETE /vms/100
check "vm 100 destroyed" is 200 '.destroyed == true'
check "its disk files are gone" bash -c "[ ! -e '$D0' ] && [ ! -e '$D1' ]"
api GET /vms/100
check "and it is gone" is 404 '.error == "vm 100 does not exist"'
api DELETE /vms/100
check "destroying it again: 404" is 404 '.error == "vm 100 does not exist"'
api GET /vms
check "no vms left" is 200 '.vms == []'
api DELETE /storage/local
check "storage no longer in use: removed" is 200 '.name == "local" and .removed == true'
api DELETE /storage/local
check "removing it again: 404" is 404 '.error == "storage '"'local'"' does not exist"'

# --- cluster options
api GET /cluster/options
check "options: defaults secure, no network" \
    is 200 '.migration.type == "secure" and .migration.network == null and .stale == false'
api PUT /cluster/options '{"migration": {"network": "10.0.1.0/24"}}'
check "network set, type kept" is 200 '.migration.network == "10.0.1.0/24" and .migration.type == "secure"'
api PUT /cluster/options '{"migration": {"network": "10.0.1.0/33"}}'
check "a bad cidr: 400 naming 'network'" refused "'network': cidr '10.0.1.0/33': prefix length must be 0..32"
api PUT /cluster/options '{"migration": {"network": "10.0.1.9/24"}}'
check "host bits set: 400" refused "'network': cidr '10.0.1.9/24' has host bits set"
api PUT /cluster/options '{"migration": {"type": "fast"}}'
check "a bad type: 400" refused "'type' must be 'secure' or 'insecure', not 'fast'"
api PUT /cluster/options '{"migration": {"type": "insecure", "network": "fd00:1::/64"}, "bwlimit": 1}'
check "an unknown key: 400, nothing changed" refused "unknown key 'bwlimit'"
api GET /cluster/options
check "still the network set before" is 200 '.migration.network == "10.0.1.0/24" and .migration.type == "secure"'
api PUT /cluster/options '{"migration": {"type": "insecure", "network": "fd00:1::/64"}}'
check "ipv6 network and insecure" is 200 '.migration.network == "fd00:1::/64" and .migration.type == "insecure"'
api GET /cluster/options
OPTS=$OUT
api PUT /cluster/options "$OPTS"
check "what GET shows can be PUT back" is 200 '.migration.network == "fd00:1::/64"'
api PUT /cluster/options '{"migration": {"network": null}}'
check "network cleared with null" is 200 '.migration.network == null and .migration.type == "insecure"'

stop_ternd
check "no etcd of this test left running" bash -c "! pgrep -f -- '--data-dir $DATA/[e]tcd' >/dev/null"
