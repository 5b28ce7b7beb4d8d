/* Membership with leases, VM ownership (created with the VM, moved by the
 * handover's commit and fence, as ternd does), task locks, and quorum lost
 * and regained, against the running three-member cluster. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster/handover.h"
#include "cluster/node.h"
#include "cluster/owner.h"
#include "cluster/quorum.h"
#include "cluster/vmconf.h"
#include "harness.h"

/* Starts this program again as a node that registers and takes a lock. */
static pid_t spawn_crasher(const char *name)
{
    int fds[2];
    if (pipe(fds) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        execl("/proc/self/exe", "cluster-etcd-test", "--child", endpoints, name,
              (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char line[16] = "";
    ssize_t n = pid > 0 ? read(fds[0], line, sizeof(line) - 1) : -1;
    close(fds[0]);
    if (n <= 0 || strncmp(line, "ready", 5) != 0) {
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
        return -1;
    }
    return pid;
}

static void test_membership(struct etcd_client *c, struct node *n1)
{
    struct err e;
    int rc = node_register(n1, c, "n1", "{\"addr\":\"127.0.0.1\"}", 3, &e);
    check(!rc && node_online(n1) && node_lease(n1) != 0 && node_state(c, "n1") == 1,
          "node n1 registers with a 3 s lease and is listed online");
    struct node dup;
    node_init(&dup);
    rc = node_register(&dup, c, "n1", "{}", 3, &e);
    check(rc == -EEXIST, "a second node named n1 is refused: %s", e.msg);
    node_release(&dup);
    check(node_state(c, "n1") == 1, "n1 is still online after the refused duplicate");
}

/* A node whose process dies goes offline by itself, and its locks go too. */
static void test_crash(struct etcd_client *c, struct node *n1)
{
    struct err e;
    int rc;
    pid_t pid = spawn_crasher("n2");
    check(pid > 0 && node_state(c, "n2") == 1,
          "node n2 (another process, ttl 2 s) is online");
    char holder[VMLOCK_HOLDER_MAX + 1] = "";
    rc = vmlock_acquire(c, "200", "n1 task 1", node_lease(n1), holder, &e);
    check(rc == -EBUSY && strcmp(holder, "crasher task 1") == 0,
          "n2 holds the lock of vm 200: %s", e.msg);
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    long long t0 = now_ms();
    while (node_state(c, "n2") == 1 && now_ms() - t0 < 10000)
        sleep_ms(100);
    long long ms = now_ms() - t0;
    check(node_state(c, "n2") == 0 && ms <= 4500,
          "n2 killed with SIGKILL: offline when its lease ends (%lld ms, ttl 2 s)", ms);
    rc = vmlock_acquire(c, "200", "n1 task 1", node_lease(n1), NULL, &e);
    check(!rc && vmlock_release(c, "200", "n1 task 1", &e) == 0,
          "the lock of the dead node went with its lease");
}

static void test_leave(struct etcd_client *c)
{
    struct err e;
    struct node n3, bad;
    int rc;
    node_init(&n3);
    rc = node_register(&n3, c, "n3", "{}", 10, &e);
    node_release(&n3);
    check(!rc && node_state(c, "n3") == 0, "a node that stops cleanly is offline at once");
    struct node_entries l;
    rc = node_list(c, ETCD_SERIALIZABLE, &l, &e);
    check(!rc && l.count == 3 && strcmp(l.items[0].name, "n1") == 0 &&
              strstr(l.items[0].info, "127.0.0.1"),
          "node_list: n1 n2 n3 in order, with n1's info");
    node_entries_release(&l);
    node_init(&bad);
    rc = node_register(&bad, c, "bad/name", "{}", 3, &e);
    node_release(&bad);
    check(rc == -EINVAL, "a node name with '/' is refused: %s", e.msg);
}

/* One side of a race at the owner key: a commit to target, or with fence
 * set the source's fence against that target. */
struct racer {
    struct etcd_client client;
    const char *source, *target;
    bool fence;
    int64_t rev;
    pthread_barrier_t *start;
    int rc;
    bool won;
};

static void *racer_run(void *arg)
{
    struct racer *r = arg;
    struct err e;
    pthread_barrier_wait(r->start);
    if (r->fence) {
        bool fenced = false;
        r->rc = handover_fence(&r->client, 100, r->source, r->target, r->rev, &fenced, &e);
        r->won = !r->rc && fenced;
    } else {
        enum handover_result res = HANDOVER_RESULT_UNKNOWN;
        r->rc = handover_commit(&r->client, 100, r->target, r->rev, &res, &e);
        r->won = !r->rc && res == HANDOVER_RESULT_COMMITTED;
    }
    return NULL;
}

static void race(struct etcd_client *c, struct racer r[2])
{
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    pthread_t t[2];
    struct err e;
    for (int i = 0; i < 2; i++) {
        r[i].start = &start;
        etcd_client_init_copy(&r[i].client, c, &e);
        pthread_create(&t[i], NULL, racer_run, &r[i]);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        etcd_client_release(&r[i].client);
    }
    pthread_barrier_destroy(&start);
}

/* The revision of vm 100's owner now, -1 when it cannot be read. */
static int64_t owner_rev(struct etcd_client *c)
{
    struct err e;
    char owner[TERN_NAME_MAX + 1];
    int64_t rev = -1;
    return handover_read(c, 100, owner, &rev, &e) ? -1 : rev;
}

/* Two commits from the same revision to two targets at once: exactly one
 * wins, the other is refused, and the key names the winner. */
static int commit_round(struct etcd_client *c, const char *source, const char *a,
                        const char *b, const char **winner)
{
    struct err e;
    char owner[TERN_NAME_MAX + 1] = "";
    int64_t rev = owner_rev(c);
    if (rev < 0)
        return 0;
    struct racer r[2] = {{.source = source, .target = a, .rev = rev},
                         {.source = source, .target = b, .rev = rev}};
    race(c, r);
    int w = r[0].won ? 0 : 1;
    *winner = r[w].target;
    int rc = handover_read(c, 100, owner, &rev, &e);
    return r[w].won && !r[1 - w].won && r[1 - w].rc == -ESTALE && !rc &&
           strcmp(owner, r[w].target) == 0;
}

/* The race of a migration: the commit against the fence of its source,
 * from the same revision. Exactly one wins, and handover_state says which. */
static int fence_round(struct etcd_client *c, const char *source, const char *target,
                       const char **owner_after)
{
    struct err e;
    int64_t rev = owner_rev(c);
    if (rev < 0)
        return 0;
    struct racer r[2] = {{.source = source, .target = target, .rev = rev},
                         {.source = source, .target = target, .rev = rev, .fence = true}};
    race(c, r);
    enum handover_state st;
    int rc = handover_state(c, 100, source, target, rev, &st, &e);
    bool committed = r[0].won;
    *owner_after = committed ? target : source;
    return committed != r[1].won && !rc && r[1].rc == 0 &&
           (committed ? st == HANDOVER_COMMITTED
                      : r[0].rc == -ESTALE && st == HANDOVER_FENCED);
}

static void test_create_owner(struct etcd_client *c)
{
    struct err e, e2;
    char owner[TERN_NAME_MAX + 1] = "";
    int rc = vmowner_get(c, 100, 0, owner, NULL, &e);
    check(rc == -ENOENT, "vm 100 has no owner yet: %s", e.msg);
    struct vmconf conf = {.id = 100, .memory_mib = 64, .cpus = 1, .kernel = "/k"};
    rc = vmconf_create(c, &conf, "n1", &e);
    int rc2 = vmconf_create(c, &conf, "n2", &e);
    int rc3 = vmowner_get(c, 100, 0, owner, NULL, &e2);
    check(!rc && rc2 == -EEXIST && !rc3 && strcmp(owner, "n1") == 0,
          "n1 creates vm 100 and owns it; n2's create is refused: %s", e.msg);
    rc = vmowner_get(c, 99, 0, owner, NULL, &e);
    check(rc == -EINVAL, "a vm id out of range is refused: %s", e.msg);
}

/* The handover one step after the other: a commit, a commit from a
 * revision that moved on, a fence before the commit, a fence after it. */
static void test_handover(struct etcd_client *c)
{
    struct err e;
    char owner[TERN_NAME_MAX + 1] = "";
    int64_t rev = 0;
    enum handover_result res;
    enum handover_state st;
    int rc = handover_read(c, 100, owner, &rev, &e);
    int rc2 = handover_commit(c, 100, "n2", rev, &res, &e);
    int rc3 = handover_state(c, 100, "n1", "n2", rev, &st, &e);
    check(!rc && strcmp(owner, "n1") == 0 && !rc2 && res == HANDOVER_RESULT_COMMITTED &&
              !rc3 && st == HANDOVER_COMMITTED,
          "handover n1 -> n2 commits");
    rc = handover_commit(c, 100, "n3", rev, &res, &e);
    rc2 = handover_read(c, 100, owner, NULL, &e);
    rc3 = handover_state(c, 100, "n1", "n3", rev, &st, &e);
    check(rc == -ESTALE && res == HANDOVER_RESULT_REFUSED && !rc2 &&
              strcmp(owner, "n2") == 0 && !rc3 && st == HANDOVER_OTHER,
          "a second commit from n1's revision is refused, the owner is n2");
    bool fenced = false;
    rc = handover_read(c, 100, owner, &rev, &e);
    rc2 = handover_fence(c, 100, "n2", "n3", rev, &fenced, &e);
    rc3 = handover_commit(c, 100, "n3", rev, &res, &e);
    check(!rc && !rc2 && fenced && rc3 == -ESTALE && res == HANDOVER_RESULT_REFUSED &&
              !handover_state(c, 100, "n2", "n3", rev, &st, &e) && st == HANDOVER_FENCED,
          "fenced by its source first, the commit n2 -> n3 is refused");
    rc = handover_read(c, 100, owner, &rev, &e);
    rc2 = handover_commit(c, 100, "n3", rev, &res, &e);
    rc3 = handover_fence(c, 100, "n2", "n3", rev, &fenced, &e);
    check(!rc && !rc2 && !rc3 && !fenced,
          "after the commit n2 -> n3 a fence says committed");
}

static void test_races(struct etcd_client *c)
{
    int won = 0;
    const char *cur = "n3", *names[] = {"n1", "n2", "n3"};
    for (int i = 0; i < 10; i++) {
        const char *to[2], *w = cur;
        for (int k = 0, j = 0; k < 3; k++) /* the two nodes that are not cur */
            if (strcmp(names[k], cur) != 0)
                to[j++] = names[k];
        won += commit_round(c, cur, to[i % 2], to[1 - i % 2], &w);
        cur = w;
    }
    check(won == 10, "10 rounds of two concurrent commits: exactly one wins each (%d/10)",
          won);
    won = 0;
    for (int i = 0; i < 10; i++) {
        const char *target = strcmp(cur, "n1") != 0 ? "n1" : "n2", *w = cur;
        won += fence_round(c, cur, target, &w);
        cur = w;
    }
    check(won == 10,
          "10 rounds of a commit against its source's fence: exactly one "
          "wins each (%d/10)",
          won);
}

static void test_locks(struct etcd_client *c, struct node *n1)
{
    struct err e;
    char holder[VMLOCK_HOLDER_MAX + 1];
    int64_t lease = node_lease(n1);
    int rc = vmlock_acquire(c, "../100", "n1 task 7", lease, holder, &e);
    check(rc == -EINVAL, "a vm id with '/' is refused: %s", e.msg);
    rc = vmlock_acquire(c, "100", "n1 task 7", lease, holder, &e);
    int rc2 = vmlock_acquire(c, "100", "n1 task 8", lease, holder, &e);
    check(!rc && rc2 == -EBUSY && strcmp(holder, "n1 task 7") == 0,
          "task lock on vm 100: the second task is refused: %s", e.msg);
    rc = vmlock_release(c, "100", "n1 task 8", &e);
    rc2 = vmlock_release(c, "100", "n1 task 7", &e);
    check(rc == -EPERM && !rc2, "only the holder releases the lock");
}

void run_cluster_tests(struct etcd_client *c, struct etcd_client *other)
{
    (void)other;
    struct node n1;
    node_init(&n1);
    test_membership(c, &n1);
    test_crash(c, &n1);
    test_leave(c);
    test_create_owner(c);
    test_handover(c);
    test_races(c);
    test_locks(c, &n1);
    test_quorum_frozen(c, &n1);
    test_quorum_stopped(c, &n1);
    struct err e;
    node_release(&n1);
    check(node_state(c, "n1") == 0, "n1 goes offline when it stops");
    int rc = node_forget(c, "n1", &e);
    check(!rc && node_state(c, "n1") == -1, "node_forget removes n1 from the list");
}
