# The browser's side of the API against a real three-node cluster: the UI's
# files and their cache headers, session login with the admin token (the
# cookie's flags, expiry, logout), the CSRF token on every change, and the
# event stream GET /api/v1/events: events of the whole cluster on any node
# (a start and a migration on n2 seen on n1, with progress and figures), resuming with Last-Event-ID, resync
# for an unknown id, node-down and quorum changes.
NET=127.0.0.17   # 127.0.0.171-173 (test_ha has 127.0.0.7x)
CONF_EXTRA="session_ttl_s = 8"   # short, so that the expiry is seen
. tests/integration/cluster_lib.sh

api() { echo "https://$(node_ip "$1"):18406"; }
token() { cat "$TMP/$1/data/admin.token"; }
# hcurl NODE ARGS...: curl trusting NODE's certificate
hcurl() { local n=$1; shift; curl -s --noproxy '*' --cacert "$TMP/$n/data/tls/cert.pem" "$@"; }
# status NODE OUTFILE ARGS... -> the http code
status() { local n=$1 o=$2; shift 2; hcurl "$n" -o "$o" -w '%{http_code}' "$@"; }
one_line_error() { [ "$(wc -l <"$1")" -le 1 ] && jq -e '.error | type == "string"' "$1" >/dev/null; }
login() {   # NODE: cookie in $TMP/NODE.jar, csrf token in $CSRF
    local code
    code=$(status "$1" "$TMP/login.json" -D "$TMP/login.hdr" -c "$TMP/$1.jar" -X POST \
        -d "{\"token\": \"$(token "$1")\"}" "$(api "$1")/api/v1/session")
    CSRF=$(jq -r .csrf "$TMP/login.json")
    [ "$code" = 201 ]
}
events() { grep '^data: ' "$1" | cut -c7-; }
has_event() {   # FILE JQ-FILTER [SECONDS]
    local deadline=$(( $(now_ms) + ${3:-10} * 1000 ))
    while [ "$(now_ms)" -lt $deadline ]; do
        events "$1" | jq -e "select($2)" 2>/dev/null | grep -q . && return 0
        sleep 0.2
    done
    return 1
}
first_event_is() { [ "$(events "$1" | head -1 | jq -r .type)" = "$2" ]; }
export -f api token hcurl status one_line_error login events has_event first_event_is tern_on \
    now_ms node_ip
export TMP TERN NET

check "cluster created on n1, n2 and n3 joined, all online" cluster_up web
mkdir -p "$TMP/shared"
hcurl n3 -N --max-time 20 -H "Authorization: Bearer $(token n3)" "$(api n3)/api/v1/events" >"$TMP/ev3" &
sleep 1
check "storage add shared" tern_on n1 storage add shared --path "$TMP/shared" --shared
check "n3 streams n1's storage-added" has_event "$TMP/ev3" '.type == "storage-added" and .name == "shared" and .node == "n1"'
# the dirtier writes 20 MiB/s over 16 MiB: the forecast's measured rate
check "vm create 100 on n2 (64 MiB, dirtying 20 MiB/s)" \
    tern_on n2 vm create 100 --memory 64 --cpus 1 --kernel "$GUEST" \
    --cmdline "tern.hb=50 tern.ws=16 tern.rate=20"
check "n3 streams n2's vm-created 100" has_event "$TMP/ev3" '.type == "vm-created" and .vmid == 100 and .node == "n2"'

# ---- the UI's files: public, with cache headers
CODE=$(status n1 "$TMP/index.html" -D "$TMP/index.hdr" "$(api n1)/")
check "GET / without a token: 200, the app's page" \
    bash -c "[ $CODE = 200 ] && grep -qi '<!doctype html>' '$TMP/index.html'"
ETAG=$(grep -i '^etag:' "$TMP/index.hdr" | cut -d' ' -f2- | tr -d '\r')
check "the page has an ETag, Cache-Control no-cache and a CSP" \
    bash -c "[ -n '$ETAG' ] && grep -qi '^cache-control: no-cache' '$TMP/index.hdr' &&
             grep -qi \"^content-security-policy: default-src 'self'\" '$TMP/index.hdr'"
CODE=$(status n1 /dev/null -H "If-None-Match: $ETAG" "$(api n1)/")
check "If-None-Match with the ETag: 304" [ "$CODE" = 304 ]
CODE=$(status n1 /dev/null "$(api n1)/ui/app.js")
check "GET /ui/app.js: 200" [ "$CODE" = 200 ]
CODE=$(status n1 "$TMP/nofile.json" "$(api n1)/ui/nope.js")
check "a file the UI does not have: 404 with a json error" \
    bash -c "[ $CODE = 404 ] && one_line_error '$TMP/nofile.json'" 

# ---- login
CODE=$(status n1 "$TMP/bad.json" -D "$TMP/bad.hdr" -X POST -d "{\"token\": \"$(printf '0%.0s' $(seq 64))\"}" "$(api n1)/api/v1/session")
check "login with a wrong token: the api's 401, one line, no cookie" \
    bash -c "[ $CODE = 401 ] && one_line_error '$TMP/bad.json' && ! grep -qi '^set-cookie' '$TMP/bad.hdr'"
note "$(cat "$TMP/bad.json")"
CODE=$(status n1 "$TMP/nobody.json" -X POST "$(api n1)/api/v1/session")
check "login without a body: 400 naming what is missing" \
    bash -c "[ $CODE = 400 ] && grep -q 'token' '$TMP/nobody.json'"
check "login with the admin token: 201" login n1
check "the cookie: HttpOnly, Secure, SameSite=Strict, with an expiry" \
    grep -Eqi '^set-cookie: tern_session=[0-9a-f]{64}; Path=/; Max-Age=8; HttpOnly; Secure; SameSite=Strict' "$TMP/login.hdr"
check "the answer has a csrf token and the expiry" \
    jq -e '(.csrf | test("^[0-9a-f]{64}$")) and .expires > 0 and .node == "n1"' "$TMP/login.json" >/dev/null
CODE=$(status n1 "$TMP/nodes.json" -b "$TMP/n1.jar" "$(api n1)/api/v1/nodes")
check "GET /nodes with the cookie alone: 200, three nodes" \
    bash -c "[ $CODE = 200 ] && jq -e '.nodes | length == 3' '$TMP/nodes.json' >/dev/null"
CODE=$(status n1 "$TMP/sess.json" -b "$TMP/n1.jar" "$(api n1)/api/v1/session")
check "GET /session gives the page its csrf token again" \
    bash -c "[ $CODE = 200 ] && [ \"\$(jq -r .csrf '$TMP/sess.json')\" = '$CSRF' ]"

# ---- CSRF: every change carries the session's token
CODE=$(status n1 "$TMP/csrf.json" -b "$TMP/n1.jar" -X POST "$(api n1)/api/v1/vms/100/pause")
check "a change with the cookie but no csrf token: 403, one line" \
    bash -c "[ $CODE = 403 ] && one_line_error '$TMP/csrf.json' && grep -q csrf '$TMP/csrf.json'"
# another token: its last hex digit changed (to 1 when it was 0)
BAD=${CSRF%?}0; [ "$BAD" = "$CSRF" ] && BAD=${CSRF%?}1
CODE=$(status n1 "$TMP/csrf2.json" -b "$TMP/n1.jar" -H "X-CSRF-Token: $BAD" \
    -X POST -d '{}' "$(api n1)/api/v1/vms/100/start")
check "a wrong csrf token: 403, nothing started" \
    bash -c "[ $CODE = 403 ] && [ \"\$(tern_on n1 vm show 100 --output json | jq -r .status)\" = stopped ]"

# ---- the event stream of the whole cluster, read on n1
hcurl n1 -N -H "Authorization: Bearer $(token n1)" "$(api n1)/api/v1/events" >"$TMP/ev1" &
EV1=$!
sleep 1
CODE=$(status n1 "$TMP/start.json" -b "$TMP/n1.jar" -H "X-CSRF-Token: $CSRF" -X POST \
    "$(api n1)/api/v1/vms/100/start")
check "start with cookie and csrf token (forwarded to n2): 200, a task" \
    bash -c "[ $CODE = 200 ] && jq -e '.task | startswith(\"UPID:n2:\")' '$TMP/start.json' >/dev/null"
check "vm 100 runs on n2" vm_on 100 n2
check "n1 streams n2's task-started for vm 100" \
    has_event "$TMP/ev1" '.type == "task-started" and .node == "n2" and .task.vmid == 100 and .task.type == "start"'
check "... and task-ended with status OK" \
    has_event "$TMP/ev1" '.type == "task-ended" and .node == "n2" and .task.vmid == 100 and .task.status == "OK"'
check "... and vm-state running on n2" \
    has_event "$TMP/ev1" '.type == "vm-state" and .vmid == 100 and .status == "running" and .node == "n2"'

# ---- the console, streamed: from any node, resumed by offset, across a migration
hcurl n1 -N -D "$TMP/con.hdr" -H "Authorization: Bearer $(token n1)" \
    "$(api n1)/api/v1/vms/100/console/stream" >"$TMP/con1" &
CON1=$!
check "console stream on n1 of vm 100 on n2: the guest's heartbeats, node n2" \
    has_event "$TMP/con1" '.node == "n2" and .running and (.data | test("HB [0-9]+"))'
check "... as text/event-stream, each event's id NODE:OFFSET" \
    bash -c "grep -qi '^content-type: text/event-stream' '$TMP/con.hdr' &&
             [ \$(grep -c '^id: n2:[0-9]*$' '$TMP/con1') = \$(grep -c '^data: ' '$TMP/con1') ]"
ID=$(grep -m1 '^id: n2:' "$TMP/con1" | cut -c5-)
hcurl n1 -N --max-time 2 -H "Authorization: Bearer $(token n1)" -H "Last-Event-ID: $ID" \
    "$(api n1)/api/v1/vms/100/console/stream" >"$TMP/con2"
check "resumed with Last-Event-ID $ID: the output from that byte on, nothing twice" \
    bash -c "events '$TMP/con2' | head -1 | jq -e '.offset - (.data | length) == ${ID#n2:}' >/dev/null"
CODE=$(status n1 "$TMP/conbad.json" -H "Authorization: Bearer $(token n1)" \
    "$(api n1)/api/v1/vms/100/console/stream?offset=x")
check "a bad offset: 400 naming it" bash -c "[ $CODE = 400 ] && grep -q offset '$TMP/conbad.json'"
CODE=$(status n1 "$TMP/con404.json" -H "Authorization: Bearer $(token n1)" \
    "$(api n1)/api/v1/vms/555/console/stream")
check "the console stream of a vm that does not exist: 404" [ "$CODE" = 404 ]

# ---- the dry run: the forecast before the migration, the figures after
CODE=$(status n1 "$TMP/fc.json" -H "Authorization: Bearer $(token n1)" -X POST \
    -d '{"target": "n3", "online": true, "dry_run": true}' "$(api n1)/api/v1/vms/100/migrate")
note "forecast: $(jq -c .forecast "$TMP/fc.json")"
check "dry run n2 -> n3: 200, every check ok, a forecast (no migration there yet: the default link)" \
    bash -c "[ $CODE = 200 ] && jq -e '(.checks | all(.ok)) and .forecast.basis == \"default\" and
        .forecast.link_mib_s > 100 and .forecast.converges' '$TMP/fc.json' >/dev/null"
check "the measured dirty rate is near the guest's 20 MiB/s (8..40)" \
    jq -e '.forecast.dirty_rate_mib_s >= 8 and .forecast.dirty_rate_mib_s <= 40' "$TMP/fc.json"
check "plausible: 1..50 passes, 10 ms..30 s in total, downtime 5..110 ms" \
    jq -e '.forecast | .passes >= 1 and .passes <= 50 and .total_ms >= 10 and .total_ms <= 30000 and
        .downtime_ms >= 5 and .downtime_ms <= 110' "$TMP/fc.json"
PIDS=()
for t in n1 n3 auto; do   # as the migrate dialog asks: every node at once
    hcurl n1 -o "$TMP/fc-$t.json" -H "Authorization: Bearer $(token n1)" -X POST \
        -d "{\"target\": \"$t\", \"online\": true, \"dry_run\": true}" \
        "$(api n1)/api/v1/vms/100/migrate" &
    PIDS+=($!)
done
wait "${PIDS[@]}"
check "three dry runs at once: one measurement serves them (the same dirty rate)" \
    bash -c "[ \$(jq -s 'map(.forecast.dirty_rate_mib_s) | unique | length' '$TMP'/fc-{n1,n3,auto}.json) = 1 ] &&
             jq -se 'all(.forecast.window_ms >= 250)' '$TMP'/fc-{n1,n3,auto}.json >/dev/null"
OUT=$(tern_on n1 vm migrate 100 n3 --online --bwlimit 10 --dry-run 2>&1)
note "$(grep '^forecast:' <<<"$OUT")"
check "the cli's dry run prints the forecast with the bandwidth limit as its link" \
    grep -Eq '^forecast: [0-9.]+ s in total, downtime [0-9.]+ ms, [0-9]+ pass\(es\).*the guest dirties [0-9.]+ MiB/s, the link 10.0 MiB/s \(the bandwidth limit\)' <<<"$OUT"
check_out "vm migrate 100 n2 -> n3 (live)" tern_on n1 vm migrate 100 n3 --online
ACTUAL=$(tern_on n1 task list --vmid 100 --output json | jq -c '[.tasks[] | select(.type == "migrate" and .figures)] | max_by(.start) | .figures')
note "forecast $(jq -c '.forecast | {passes, total_ms, downtime_ms, link_mib_s, dirty_rate_mib_s}' "$TMP/fc.json")"
note "actual   $(jq -c '{passes, total_ms, downtime_ms, bandwidth_mib_s: (.bandwidth / 1048576)}' <<<"$ACTUAL")"
check "the migration's figures name its target and the link rate it measured" \
    jq -e '.target == "n3" and .bandwidth > 0' <<<"$ACTUAL"
check "the console stream goes on from n3's console after the migration (a reset)" \
    has_event "$TMP/con1" '.reset == true and .node == "n3"' 15
check "... with the guest's heartbeats there" \
    has_event "$TMP/con1" '.node == "n3" and (.data | test("HB [0-9]+"))' 15
kill $CON1 2>/dev/null
check "n1 streams n2's task-progress of the migration: percent, rate, pass" \
    has_event "$TMP/ev1" '.type == "task-progress" and .task.type == "migrate" and .task.node == "n2" and
        (.task.progress | has("percent") and has("rate") and has("pass") and has("expected_downtime_ms"))'
check "... and its task-ended with the figures and the downtime split" \
    has_event "$TMP/ev1" '.type == "task-ended" and .task.type == "migrate" and .task.status == "OK" and
        .task.figures.downtime_ms > 0 and (.task.figures.downtime | has("pause_ms"))'
check "... and vm-state running on n3" \
    has_event "$TMP/ev1" '.type == "vm-state" and .vmid == 100 and .status == "running" and .node == "n3"'
check_out "vm migrate 100 back to n2" tern_on n1 vm migrate 100 n2 --online
CODE=$(status n1 "$TMP/fc2.json" -H "Authorization: Bearer $(token n1)" -X POST \
    -d '{"target": "n3", "online": true, "dry_run": true}' "$(api n1)/api/v1/vms/100/migrate")
note "forecast after a migration to n3: $(jq -c .forecast "$TMP/fc2.json")"
check "dry run n2 -> n3 again: the link is what the migration to n3 measured" \
    bash -c "[ $CODE = 200 ] && jq -e --argjson a '$ACTUAL' '.forecast.basis == \"last-migration\" and
        (.forecast.basis_task | startswith(\"UPID:n2:\")) and
        ((.forecast.link_mib_s - \$a.bandwidth / 1048576) | fabs) < 0.1' '$TMP/fc2.json' >/dev/null"
check_out "vm migrate 100 n2 -> n3 again" tern_on n1 vm migrate 100 n3 --online
ACTUAL2=$(tern_on n1 task list --vmid 100 --output json | jq -c '[.tasks[] | select(.type == "migrate" and .figures)] | max_by(.start) | .figures')
note "forecast (measured link) $(jq -c '.forecast | {passes, total_ms, downtime_ms, link_mib_s, dirty_rate_mib_s}' "$TMP/fc2.json")"
note "actual                   $(jq -c '{passes, total_ms, downtime_ms, bandwidth_mib_s: (.bandwidth / 1048576)}' <<<"$ACTUAL2")"
check "every event has an id line before its data" \
    bash -c "[ \$(grep -c '^id: [0-9a-f]\{16\}-[0-9]*$' '$TMP/ev1') = \$(grep -c '^data: ' '$TMP/ev1') ]"

# ---- every pre-check of every node, also after a refusal
check "storage add local (not shared); vm create 102 on n1 with a disk there" bash -c \
    "tern_on n1 storage add local --path '$TMP/{node}/images' >/dev/null &&
     tern_on n1 vm create 102 --memory 48 --cpus 1 --kernel '$GUEST' --disk local:8 \
        --cmdline 'tern.hb=200 tern.disk=2' >/dev/null"
CODE=$(status n1 "$TMP/all.json" -H "Authorization: Bearer $(token n1)" -X POST \
    -d "{\"target\": \"n3\", \"dry_run\": true, \"migration_network\": \"$(node_ip n2)/32\"}" \
    "$(api n1)/api/v1/vms/102/migrate")
note "$(jq -c '[.checks[] | select(.ok | not) | .check]' "$TMP/all.json")"
check "dry run to n3 (no local disks, no address in the network): 409 with the first refusal" \
    bash -c "[ $CODE = 409 ] && jq -e '.error | test(\"disk0 is on storage .local., which is not shared\")' '$TMP/all.json' >/dev/null"
check "... and every check's outcome: disks and network refused, the ten others ok" \
    jq -e '[.checks[].check] == ["quorum","lock","vm","target","maintenance","memory","cpu","version","disks","devices","bridges","network"] and
        ([.checks[] | select(.ok | not) | .check] == ["disks","network"])' "$TMP/all.json"
OUT=$(tern_on n1 vm migrate 102 n3 --migration-network "$(node_ip n2)/32" --dry-run 2>&1); RC=$?
check "the cli's dry run prints them all, then the refusal (exit 1)" \
    bash -c "[ $RC = 1 ] && [ \$(grep -c '^FAIL' <<<\"\$0\") = 2 ] && [ \$(grep -c '^ok ' <<<\"\$0\") = 10 ] &&
             grep -q '^tern: .*disk0 is on storage' <<<\"\$0\"" "$OUT"
OUT=$(tern_on n1 vm migrate 102 n3 --migration-network "$(node_ip n2)/32" 2>&1); RC=$?
check "the real migration is refused at the first failed check, the same line" \
    bash -c "[ $RC = 1 ] && grep -q \"disk0 is on storage 'local', which is not shared\" <<<\"\$0\" &&
             ! grep -q 'migration network' <<<\"\$0\"" "$OUT"
check_out "vm start 102" tern_on n1 vm start 102
check_out "vm migrate 102 n2 with its local disk" \
    tern_on n1 vm migrate 102 n2 --online --with-local-disks --migration-type insecure
check "n1 streams its per-disk progress: disk0 with done, total, rate, in sync" \
    has_event "$TMP/ev1" '.type == "task-progress" and .task.vmid == 102 and
        (.task.progress.disks[0] | .name == "disk0" and .synced and .done == .total and .total > 0 and
         .percent == 100 and has("rate") and has("copied") and has("active"))'

# ---- Last-Event-ID: a client that comes back gets what it missed
FIRST=$(grep -m1 '^id: ' "$TMP/ev1" | cut -c5-)
NFIRST=$(grep -c '^data: ' "$TMP/ev1")
hcurl n1 -N --max-time 2 -H "Authorization: Bearer $(token n1)" -H "Last-Event-ID: $FIRST" \
    "$(api n1)/api/v1/events" >"$TMP/resume"
check "resume with Last-Event-ID: every later event again, in order, no resync" \
    bash -c "[ \"\$(grep '^id: ' '$TMP/resume')\" = \"\$(grep '^id: ' '$TMP/ev1' | tail -n +2 | head -n \$(grep -c '^id: ' '$TMP/resume'))\" ] &&
             [ \$(grep -c '^id: ' '$TMP/resume') -ge $(( NFIRST - 1 )) ] && ! grep -q resync '$TMP/resume'"
hcurl n1 -N --max-time 2 -H "Authorization: Bearer $(token n1)" -H "Last-Event-ID: 0123456789abcdef-3" \
    "$(api n1)/api/v1/events" >"$TMP/stale"
check "an id of another run of ternd: a resync event first" first_event_is "$TMP/stale" resync
hcurl n3 -N --max-time 2 -H "Authorization: Bearer $(token n3)" -H "Last-Event-ID: $FIRST" \
    "$(api n3)/api/v1/events" >"$TMP/other"
check "n1's id on n3 (ids are per node): resync" first_event_is "$TMP/other" resync
CODE=$(status n1 "$TMP/scope.json" -H "Authorization: Bearer $(token n1)" "$(api n1)/api/v1/events?scope=x")
check "a bad scope: 400 naming it" bash -c "[ $CODE = 400 ] && grep -q \"scope 'x'\" '$TMP/scope.json'"
CODE=$(status n1 "$TMP/ev401.json" "$(api n1)/api/v1/events")
check "events without token or cookie: 401" [ "$CODE" = 401 ]

# ---- the cookie works for the stream, and logout ends it
login n1
hcurl n1 -N -b "$TMP/n1.jar" "$(api n1)/api/v1/events" >"$TMP/evc" &
EVC=$!
sleep 0.5
CODE=$(status n1 "$TMP/pause.json" -b "$TMP/n1.jar" -H "X-CSRF-Token: $CSRF" -X POST "$(api n1)/api/v1/vms/100/pause")
check "pause with the cookie: 200; the cookie's stream shows vm-state paused" \
    bash -c "[ $CODE = 200 ] && has_event '$TMP/evc' '.type == \"vm-state\" and .status == \"paused\"'"
hcurl n1 -b "$TMP/n1.jar" -H "X-CSRF-Token: $CSRF" -X POST "$(api n1)/api/v1/vms/100/resume" >/dev/null
CODE=$(status n1 /dev/null -b "$TMP/n1.jar" -X DELETE "$(api n1)/api/v1/session")
check "logout without the csrf token: 403" [ "$CODE" = 403 ]
CODE=$(status n1 "$TMP/out.json" -D "$TMP/out.hdr" -b "$TMP/n1.jar" -H "X-CSRF-Token: $CSRF" -X DELETE "$(api n1)/api/v1/session")
check "logout: 200, the cookie cleared (Max-Age=0)" \
    bash -c "[ $CODE = 200 ] && grep -Eqi '^set-cookie: tern_session=; Path=/; Max-Age=0' '$TMP/out.hdr'"
CODE=$(status n1 /dev/null -b "$TMP/n1.jar" "$(api n1)/api/v1/nodes")
check "the old cookie after logout: 401" [ "$CODE" = 401 ]
ended() { ! kill -0 "$1" 2>/dev/null; }
check "the session's event stream ended with the logout (within 12 s)" \
    wait_rc 12 0 ended $EVC

# ---- expiry (session_ttl_s = 6)
login n1
T0=$(now_ms)
check "a fresh session works" [ "$(status n1 /dev/null -b "$TMP/n1.jar" "$(api n1)/api/v1/version")" = 200 ]
sleep $(( 9 - ( $(now_ms) - T0 ) / 1000 ))
CODE=$(status n1 "$TMP/exp.json" -b "$TMP/n1.jar" "$(api n1)/api/v1/version")
check "after its expiry: 401" bash -c "[ $CODE = 401 ] && one_line_error '$TMP/exp.json'"
check "a session of n1 is not one of n2" \
    bash -c "login n1 && [ \"\$(status n2 /dev/null -b '$TMP/n1.jar' '$(api n2)/api/v1/version')\" = 401 ]"

# ---- nodes down and the quorum, seen on n1's stream
kill_node n3
check "n3 killed: node-down n3 on n1's stream (heartbeat ttl 3 s)" \
    has_event "$TMP/ev1" '.type == "node-down" and .name == "n3"' 15
pkill -9 -f -- "--data-dir $TMP/n2/data/etcd" 2>/dev/null
kill_node n2
check "n2 and its etcd gone: quorum false on n1's stream" \
    has_event "$TMP/ev1" '.type == "quorum" and .quorate == false' 20
kill $EV1 2>/dev/null
stop_all
