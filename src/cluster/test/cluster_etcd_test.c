/* src/cluster against a real three-member etcd cluster (etcd-server 3.4) on
 * 127.0.0.11-13: key-value, CAS, leases and membership, VM ownership (the
 * handover's commit and fence) and locks, then quorum lost (members frozen,
 * then stopped) and regained.
 * Prints TAP; run by tests/integration/test_cluster_etcd.sh. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster/etcd.h"
#include "cluster/keys.h"
#include "cluster/node.h"
#include "cluster/owner.h"
#include "cluster/quorum.h"
#include "cluster/server.h"
#include "common/log.h"

#include "harness.h"

static char tmpdir[] = "/tmp/tern-etcd.XXXXXX";
static bool tmpdir_made;

static void cluster_cleanup(void)
{
    for (int i = 0; i < MEMBERS; i++)
        etcd_server_release(&servers[i]);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (tmpdir_made && !getenv("TERN_KEEP_ETCD") && system(cmd) != 0)
        note("could not remove %s", tmpdir);
}

static int cluster_start(void)
{
    if (!mkdtemp(tmpdir))
        return -errno;
    tmpdir_made = true;
    char initial[512] = "";
    for (int i = 0; i < MEMBERS; i++)
        snprintf(initial + strlen(initial), sizeof(initial) - strlen(initial),
                 "%se%d=http://127.0.0.%d:2380", i ? "," : "", i + 1, 11 + i);
    struct err e;
    for (int i = 0; i < MEMBERS; i++) {
        struct etcd_server *s = &servers[i];
        char name[8], ip[16], dir[300];
        snprintf(name, sizeof(name), "e%d", i + 1);
        snprintf(ip, sizeof(ip), "127.0.0.%d", 11 + i);
        snprintf(dir, sizeof(dir), "%s/%s", tmpdir, name);
        etcd_server_init(s);
        s->die_with_parent = true;
        snprintf(s->log_path, sizeof(s->log_path), "%s/%s.log", tmpdir, name);
        if (etcd_server_configure(s, name, ip, 2379, 2380, dir, initial, &e) < 0 ||
            etcd_server_start(s, &e) < 0) {
            note("%s", e.msg);
            return -1;
        }
        snprintf(endpoints + strlen(endpoints), sizeof(endpoints) - strlen(endpoints),
                 "%s%s", i ? "," : "", s->client_url);
    }
    for (int i = 0; i < MEMBERS; i++)
        if (etcd_server_wait_serving(&servers[i], 20000, &e) < 0) {
            note("%s", e.msg);
            return -1;
        }
    return 0;
}

static void test_startup(struct etcd_client *c)
{
    long long ms = wait_quorate(c, 20000);
    check(ms >= 0, "three-member etcd cluster on 127.0.0.11-13 elects a leader (%lld ms)",
          ms);
    struct cluster_info info;
    struct err e;
    int q = cluster_quorate(c, &info, &e);
    check(!q && info.quorate && info.member_count == 3 && info.members_reachable == 3 &&
              info.leader_id != 0 && info.leader_name[0],
          "cluster_quorate: yes, 3 members, 3 reachable, leader %s, term %llu, etcd %s",
          info.leader_name, (unsigned long long)info.raft_term, info.version);
    check(cluster_layout_init(c, &e) == 0 && cluster_layout_init(c, &e) == 0,
          "layout version 1 written to /tern/version, and accepted again");
    etcd_put(c, TERN_KEY_VERSION, "2", 0, &e);
    int rc = cluster_layout_init(c, &e);
    check(rc == -EPROTO && strstr(e.msg, "is 2"), "a layout version 2 is refused: %s",
          e.msg);
    etcd_put(c, TERN_KEY_VERSION, TERN_LAYOUT_VERSION, 0, &e);
}

static void test_kv(struct etcd_client *c)
{
    struct err e;
    const char *odd = "{\"a\": \"quotes \\\" and\\nnewline\", \"u\": \"\xc3\xa9\"}";
    struct etcd_kv kv;
    etcd_kv_init(&kv);
    int rc = etcd_put(c, "/test/kv/one", odd, 0, &e);
    if (!rc)
        rc = etcd_get(c, "/test/kv/one", 0, &kv, &e);
    check(!rc && kv.value && strcmp(kv.value, odd) == 0 && kv.version == 1,
          "put then get returns the same bytes (json, quotes, newline, utf-8)");
    etcd_kv_release(&kv);
    rc = etcd_put(c, "/test/kv/empty", "", 0, &e);
    if (!rc)
        rc = etcd_get(c, "/test/kv/empty", ETCD_SERIALIZABLE, &kv, &e);
    check(!rc && kv.value && kv.value_len == 0, "an empty value reads back as empty");
    etcd_kv_release(&kv);
    int64_t deleted = 0;
    rc = etcd_delete(c, "/test/kv/one", &deleted, &e);
    int rc2 = etcd_get(c, "/test/kv/one", 0, &kv, &e);
    check(!rc && deleted == 1 && rc2 == -ENOENT,
          "delete removes the key, get then says -ENOENT");
    const char *names[] = {"/test/p/b", "/test/p/a", "/test/p/c", "/test/pz", "/test/q"};
    for (int i = 0; i < 5; i++)
        etcd_put(c, names[i], names[i] + 6, 0, &e);
    struct etcd_kvs kvs;
    rc = etcd_get_prefix(c, "/test/p/", 0, &kvs, &e);
    check(!rc && kvs.count == 3 && strcmp(kvs.items[0].key, "/test/p/a") == 0 &&
              strcmp(kvs.items[2].key, "/test/p/c") == 0 && kvs.revision > 0,
          "prefix /test/p/ finds its 3 keys in order, not /test/pz or /test/q");
    etcd_kvs_release(&kvs);
}

static void test_cas(struct etcd_client *c, struct etcd_client *other)
{
    struct err e;
    bool swapped;
    struct etcd_kv now;
    etcd_put(c, "/test/cas", "v1", 0, &e);
    struct etcd_cas op = {
        .key = "/test/cas", .cmp = ETCD_CMP_VALUE, .expect_value = "v1", .new_value = "v2"};
    int rc = etcd_cas(c, &op, &swapped, &now, &e);
    check(!rc && swapped, "cas v1 -> v2 succeeds");
    etcd_kv_release(&now);
    etcd_put(other, "/test/cas", "theirs", 0, &e); /* someone else changes it */
    op.expect_value = "v2";
    op.new_value = "v3";
    rc = etcd_cas(c, &op, &swapped, &now, &e);
    check(!rc && !swapped && now.value && strcmp(now.value, "theirs") == 0,
          "cas v2 -> v3 fails after another client wrote, reports current \"%s\"",
          now.value ? now.value : "(null)");
    int64_t rev = now.mod_revision;
    etcd_kv_release(&now);
    struct etcd_cas byrev = {.key = "/test/cas",
                             .cmp = ETCD_CMP_MOD_REVISION,
                             .expect_revision = rev,
                             .new_value = "v4"};
    rc = etcd_cas(c, &byrev, &swapped, &now, &e);
    bool first = !rc && swapped;
    etcd_kv_release(&now);
    rc = etcd_cas(c, &byrev, &swapped, &now, &e);
    check(first && !rc && !swapped && now.mod_revision > rev,
          "cas on mod_revision %lld succeeds once, then fails (now %lld)", (long long)rev,
          (long long)now.mod_revision);
    etcd_kv_release(&now);
    struct etcd_cas create = {
        .key = "/test/cas-new", .cmp = ETCD_CMP_ABSENT, .new_value = "x"};
    rc = etcd_cas(c, &create, &swapped, &now, &e);
    bool made = !rc && swapped;
    rc = etcd_cas(c, &create, &swapped, &now, &e);
    check(made && !rc && !swapped && now.value && strcmp(now.value, "x") == 0,
          "create-if-absent works once, the second finds the key");
    etcd_kv_release(&now);
}

/* Re-executed as a child: registers a node, takes a lock, then waits to be
 * killed (a host that crashes). */
static int child_main(const char *eps, const char *name)
{
    struct etcd_client c;
    struct node n;
    struct err e;
    node_init(&n);
    if (etcd_client_init(&c, eps, &e) < 0 || node_register(&n, &c, name, "{}", 2, &e) < 0 ||
        vmlock_acquire(&c, "200", "crasher task 1", node_lease(&n), NULL, &e) < 0) {
        fprintf(stderr, "child: %s\n", e.msg);
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    for (;;)
        pause();
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--child") == 0)
        return child_main(argv[2], argv[3]);
    log_set_level(getenv("TERN_DEBUG") ? LOG_DEBUG : LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    long long t0 = now_ms();
    if (cluster_start() < 0) {
        check(0, "etcd cluster starts (logs in %s)", tmpdir);
        cluster_cleanup();
        return 1;
    }
    struct etcd_client c, other;
    struct err e;
    if (etcd_client_init(&c, endpoints, &e) < 0 ||
        etcd_client_init(&other, endpoints, &e) < 0) {
        check(0, "etcd client: %s", e.msg);
        cluster_cleanup();
        return 1;
    }
    test_startup(&c);
    test_kv(&c);
    test_cas(&c, &other);
    run_cluster_tests(&c, &other);
    etcd_client_release(&other);
    etcd_client_release(&c);
    cluster_cleanup();
    note("total %lld ms", now_ms() - t0);
    return checks_failed() ? 1 : 0;
}
