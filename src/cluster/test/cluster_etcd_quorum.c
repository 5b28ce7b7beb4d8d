/* Quorum lost and regained: two of the three members frozen (SIGSTOP: they
 * accept connections and never answer, as behind a partition), then
 * stopped (connections refused), then started again on their data. */
#include <errno.h>
#include <string.h>

#include "cluster/owner.h"
#include "cluster/quorum.h"
#include "harness.h"

static int not_quorate(int rc, const struct err *e)
{
    return rc == -ETCD_NOT_QUORATE && strcmp(e->msg, "cluster not quorate") == 0;
}

/* Writes, linearizable reads and the quorum check fail fast and clearly. */
static void check_refused(struct etcd_client *c, const char *how)
{
    struct err e;
    long long t0 = now_ms();
    int rc = etcd_put(c, "/test/q", "x", 0, &e);
    long long ms = now_ms() - t0;
    check(not_quorate(rc, &e) && ms < FAST_MS, "%s: put fails in %lld ms: %s", how, ms, e.msg);
    note("%s: %s", how, etcd_client_detail(c));
    struct etcd_kv kv;
    etcd_kv_init(&kv);
    t0 = now_ms();
    rc = etcd_get(c, "/test/kv/empty", 0, &kv, &e);
    ms = now_ms() - t0;
    check(not_quorate(rc, &e) && ms < FAST_MS,
          "%s: linearizable get fails in %lld ms: %s", how, ms, e.msg);
    t0 = now_ms();
    rc = etcd_get(c, "/test/kv/empty", ETCD_SERIALIZABLE, &kv, &e);
    ms = now_ms() - t0;
    check(rc == 0 && ms < FAST_MS, "%s: serializable get (stale local view) works (%lld ms)",
          how, ms);
    etcd_kv_release(&kv);
    struct cluster_info info;
    t0 = now_ms();
    rc = cluster_quorate(c, &info, &e);
    ms = now_ms() - t0;
    check(rc == 0 && !info.quorate && info.members_reachable == 1 &&
          strcmp(e.msg, "cluster not quorate") == 0 && ms < 2 * FAST_MS,
          "%s: cluster_quorate says no in %lld ms (%zu of %zu members reachable)",
          how, ms, info.members_reachable, info.member_count);
}

static void check_back(struct etcd_client *c, const char *how)
{
    struct err e;
    long long ms = wait_quorate(c, 30000);
    check(ms >= 0, "%s: quorate again after %lld ms", how, ms);
    struct cluster_info info;
    int rc = cluster_quorate(c, &info, &e);
    check(rc == 1 && info.members_reachable == 3 && info.leader_id != 0,
          "%s: cluster_quorate says yes, 3 reachable, leader %s", how, info.leader_name);
    check(etcd_put(c, "/test/q", "after", 0, &e) == 0, "%s: writes work again", how);
}

static void wait_online(struct node *n, long long limit_ms)
{
    long long t0 = now_ms();
    while (!node_online(n) && now_ms() - t0 < limit_ms)
        sleep_ms(100);
}

void test_quorum_frozen(struct etcd_client *c, struct node *n1)
{
    struct err e;
    char from[TERN_NAME_MAX + 1] = "", owner[TERN_NAME_MAX + 1];
    vm_owner_get(c, "100", 0, from, &e);
    const char *to = strcmp(from, "n1") ? "n1" : "n2";
    etcd_server_freeze(&servers[1], true);
    etcd_server_freeze(&servers[2], true);
    check_refused(c, "2 of 3 frozen");
    enum vm_move_result res;
    long long t0 = now_ms();
    int rc = vm_owner_move(c, "100", from, to, &res, owner, &e);
    long long ms = now_ms() - t0;
    check(not_quorate(rc, &e) && res == VM_MOVE_UNKNOWN && ms < FAST_MS,
          "2 of 3 frozen: owner move %s -> %s fails in %lld ms as UNKNOWN (it reached a member)",
          from, to, ms);
    check(!node_online(n1), "2 of 3 frozen: n1's heartbeat reports it offline");
    etcd_server_freeze(&servers[1], false);
    etcd_server_freeze(&servers[2], false);
    check_back(c, "thawed");
    rc = vm_owner_get(c, "100", 0, owner, &e);
    note("owner after the unknown move: %s", rc == 0 ? owner : e.msg);
    int again = vm_owner_move(c, "100", from, to, &res, owner, &e);
    check(rc == 0 && (!strcmp(owner, from) || !strcmp(owner, to)) && again == 0 &&
          res == VM_MOVE_COMMITTED,
          "the unknown move resolves: retried, it commits (owner now %s)", owner);
    wait_online(n1, 10000);
    check(node_online(n1), "n1 online again (registrations: %u)", node_registrations(n1));
}

void test_quorum_stopped(struct etcd_client *c, struct node *n1)
{
    struct err e;
    for (int i = 1; i < 3; i++)
        etcd_server_stop(&servers[i], 10000);
    check_refused(c, "2 of 3 stopped");
    enum vm_move_result res;
    char owner[TERN_NAME_MAX + 1];
    int rc = vm_owner_move(c, "100", "n9", "n8", &res, owner, &e);
    check(not_quorate(rc, &e), "2 of 3 stopped: owner move refused: %s", e.msg);
    int started = 0;
    for (int i = 1; i < 3; i++)
        if (etcd_server_start(&servers[i], &e) == 0 &&
            etcd_server_wait_serving(&servers[i], 20000, &e) == 0)
            started++;
        else
            note("%s", e.msg);
    check(started == 2, "the 2 stopped members restart on their data");
    check_back(c, "restarted");
    wait_online(n1, 10000);
    check(node_online(n1) && node_state(c, "n1") == 1, "n1 online again (registrations: %u)",
          node_registrations(n1));
}
