/* Quorum lost and regained: two of the three members frozen (SIGSTOP: they
 * accept connections and never answer, as behind a partition), then
 * stopped (connections refused), then started again on their data. */
#include <errno.h>
#include <string.h>

#include "cluster/handover.h"
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
    check(not_quorate(rc, &e) && ms < FAST_MS, "%s: put fails in %lld ms: %s", how, ms,
          e.msg);
    note("%s: %s", how, etcd_client_detail(c));
    struct etcd_kv kv;
    etcd_kv_init(&kv);
    t0 = now_ms();
    rc = etcd_get(c, "/test/kv/empty", 0, &kv, &e);
    ms = now_ms() - t0;
    check(not_quorate(rc, &e) && ms < FAST_MS, "%s: linearizable get fails in %lld ms: %s",
          how, ms, e.msg);
    t0 = now_ms();
    rc = etcd_get(c, "/test/kv/empty", ETCD_SERIALIZABLE, &kv, &e);
    ms = now_ms() - t0;
    check(!rc && ms < FAST_MS, "%s: serializable get (stale local view) works (%lld ms)",
          how, ms);
    etcd_kv_release(&kv);
    struct cluster_info info;
    t0 = now_ms();
    rc = cluster_quorate(c, &info, &e);
    ms = now_ms() - t0;
    check(rc == -ETCD_NOT_QUORATE && !info.quorate && info.members_reachable == 1 &&
              strcmp(e.msg, "cluster not quorate") == 0 && ms < 2 * FAST_MS,
          "%s: cluster_quorate says no in %lld ms (%zu of %zu members reachable)", how, ms,
          info.members_reachable, info.member_count);
}

static void check_back(struct etcd_client *c, const char *how)
{
    struct err e;
    long long ms = wait_quorate(c, 30000);
    check(ms >= 0, "%s: quorate again after %lld ms", how, ms);
    struct cluster_info info;
    int rc = cluster_quorate(c, &info, &e);
    check(!rc && info.quorate && info.members_reachable == 3 && info.leader_id != 0,
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
    char from[TERN_NAME_MAX + 1] = "", owner[TERN_NAME_MAX + 1] = "";
    int64_t rev = 0;
    handover_read(c, 100, from, &rev, &e);
    const char *to = strcmp(from, "n1") != 0 ? "n1" : "n2";
    etcd_server_freeze(&servers[1], true);
    etcd_server_freeze(&servers[2], true);
    check_refused(c, "2 of 3 frozen");
    enum handover_result res;
    long long t0 = now_ms();
    int rc = handover_commit(c, 100, to, rev, &res, &e);
    long long ms = now_ms() - t0;
    check(not_quorate(rc, &e) && res == HANDOVER_RESULT_UNKNOWN && ms < FAST_MS,
          "2 of 3 frozen: handover commit %s -> %s fails in %lld ms as UNKNOWN (it "
          "reached a member)",
          from, to, ms);
    check(!node_online(n1), "2 of 3 frozen: n1's heartbeat reports it offline");
    etcd_server_freeze(&servers[1], false);
    etcd_server_freeze(&servers[2], false);
    check_back(c, "thawed");
    /* as the source's ternd resolves it: open, commit again; committed, done */
    enum handover_state st = HANDOVER_OTHER;
    rc = handover_state(c, 100, from, to, rev, &st, &e);
    note("handover after the unknown commit: %s", rc                    ? e.msg
                                                  : st == HANDOVER_OPEN ? "still open"
                                                  : st == HANDOVER_COMMITTED
                                                      ? "committed"
                                                      : "fenced or other");
    int again = 0;
    if (!rc && st == HANDOVER_OPEN)
        again = handover_commit(c, 100, to, rev, &res, &e);
    else if (!rc && st == HANDOVER_COMMITTED)
        res = HANDOVER_RESULT_COMMITTED;
    int rc2 = handover_read(c, 100, owner, NULL, &e);
    check(!rc && (st == HANDOVER_OPEN || st == HANDOVER_COMMITTED) && again == 0 &&
              res == HANDOVER_RESULT_COMMITTED && !rc2 && strcmp(owner, to) == 0,
          "the unknown commit resolves: committed, or still open and committed again "
          "(owner now %s)",
          owner);
    wait_online(n1, 10000);
    check(node_online(n1), "n1 online again (registrations: %u)", node_registrations(n1));
}

void test_quorum_stopped(struct etcd_client *c, struct node *n1)
{
    struct err e;
    for (int i = 1; i < 3; i++)
        etcd_server_stop(&servers[i], 10000);
    check_refused(c, "2 of 3 stopped");
    enum handover_result res;
    bool fenced;
    int rc = handover_commit(c, 100, "n8", 1, &res, &e);
    check(not_quorate(rc, &e), "2 of 3 stopped: handover commit refused: %s", e.msg);
    rc = handover_fence(c, 100, "n9", "n8", 1, &fenced, &e);
    check(not_quorate(rc, &e), "2 of 3 stopped: handover fence refused: %s", e.msg);
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
    check(node_online(n1) && node_state(c, "n1") == 1,
          "n1 online again (registrations: %u)", node_registrations(n1));
}
