/* Membership with leases, VM ownership and locks, and quorum lost and
 * regained, against the running three-member cluster. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster/node.h"
#include "cluster/owner.h"
#include "cluster/quorum.h"
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
        execl("/proc/self/exe", "cluster-etcd-test", "--child", endpoints, name, (char *)NULL);
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
    check(rc == 0 && node_online(n1) && node_lease(n1) != 0 && node_state(c, "n1") == 1,
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
    check(pid > 0 && node_state(c, "n2") == 1, "node n2 (another process, ttl 2 s) is online");
    char holder[VM_HOLDER_MAX + 1] = "";
    rc = vm_lock_acquire(c, "200", "n1 task 1", node_lease(n1), holder, &e);
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
    rc = vm_lock_acquire(c, "200", "n1 task 1", node_lease(n1), NULL, &e);
    check(rc == 0 && vm_lock_release(c, "200", "n1 task 1", &e) == 0,
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
    check(rc == 0 && node_state(c, "n3") == 0, "a node that stops cleanly is offline at once");
    struct node_entries l;
    rc = node_list(c, ETCD_SERIALIZABLE, &l, &e);
    check(rc == 0 && l.count == 3 && strcmp(l.items[0].name, "n1") == 0 &&
          strstr(l.items[0].info, "127.0.0.1"),
          "node_list: n1 n2 n3 in order, with n1's info");
    node_entries_release(&l);
    node_init(&bad);
    rc = node_register(&bad, c, "bad/name", "{}", 3, &e);
    node_release(&bad);
    check(rc == -EINVAL, "a node name with '/' is refused: %s", e.msg);
}

struct mover {
    struct etcd_client client;
    const char *from, *to;
    pthread_barrier_t *start;
    int rc;
    char owner_now[TERN_NAME_MAX + 1];
};

static void *mover_run(void *arg)
{
    struct mover *m = arg;
    enum vm_move_result res;
    struct err e;
    pthread_barrier_wait(m->start);
    m->rc = vm_owner_move(&m->client, "100", m->from, m->to, &res, m->owner_now, &e);
    return NULL;
}

/* Two movers from the same owner at once: exactly one must win. */
static int race_round(struct etcd_client *c, const char *from, const char *a,
                      const char *b, const char **winner)
{
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    struct mover m[2] = {{.from = from, .to = a, .start = &start},
                         {.from = from, .to = b, .start = &start}};
    pthread_t t[2];
    struct err e;
    for (int i = 0; i < 2; i++) {
        etcd_client_init_copy(&m[i].client, c, &e);
        pthread_create(&t[i], NULL, mover_run, &m[i]);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        etcd_client_release(&m[i].client);
    }
    pthread_barrier_destroy(&start);
    int w = m[0].rc == 0 ? 0 : 1;
    *winner = m[w].to;
    char owner[TERN_NAME_MAX + 1] = "";
    vm_owner_get(c, "100", 0, owner, &e);
    return m[w].rc == 0 && m[1 - w].rc == -ESTALE &&
           strcmp(m[1 - w].owner_now, m[w].to) == 0 && strcmp(owner, m[w].to) == 0;
}

static void test_ownership(struct etcd_client *c, struct node *n1)
{
    struct err e;
    char owner[TERN_NAME_MAX + 1] = "";
    int rc = vm_owner_get(c, "100", 0, owner, &e);
    check(rc == -ENOENT, "vm 100 has no owner yet: %s", e.msg);
    rc = vm_owner_claim(c, "100", "n1", owner, &e);
    int rc2 = vm_owner_claim(c, "100", "n2", owner, &e);
    check(rc == 0 && rc2 == -EEXIST && strcmp(owner, "n1") == 0,
          "n1 claims vm 100; n2's claim is refused: %s", e.msg);
    enum vm_move_result res;
    rc = vm_owner_move(c, "100", "n1", "n2", &res, owner, &e);
    check(rc == 0 && res == VM_MOVE_COMMITTED && strcmp(owner, "n2") == 0,
          "move n1 -> n2 commits");
    rc = vm_owner_move(c, "100", "n1", "n3", &res, owner, &e);
    check(rc == -ESTALE && res == VM_MOVE_REFUSED && strcmp(owner, "n2") == 0,
          "a second move from n1 is refused, owner reported: %s", e.msg);
    int won = 0;
    const char *cur = "n2", *names[] = {"n1", "n2", "n3"};
    for (int i = 0; i < 10; i++) {
        const char *to[2], *w = cur;
        for (int k = 0, j = 0; k < 3; k++)   /* the two nodes that are not cur */
            if (strcmp(names[k], cur) != 0)
                to[j++] = names[k];
        won += race_round(c, cur, to[i % 2], to[1 - i % 2], &w);
        cur = w;
    }
    check(won == 10, "10 rounds of two concurrent moves: exactly one wins each (%d/10)", won);
    rc = vm_owner_move(c, "../100", "n1", "n2", &res, owner, &e);
    check(rc == -EINVAL, "a vm id with '/' is refused: %s", e.msg);

    char holder[VM_HOLDER_MAX + 1];
    int64_t lease = node_lease(n1);
    rc = vm_lock_acquire(c, "100", "n1 task 7", lease, holder, &e);
    rc2 = vm_lock_acquire(c, "100", "n1 task 8", lease, holder, &e);
    check(rc == 0 && rc2 == -EBUSY && strcmp(holder, "n1 task 7") == 0,
          "task lock on vm 100: the second task is refused: %s", e.msg);
    rc = vm_lock_release(c, "100", "n1 task 8", &e);
    rc2 = vm_lock_release(c, "100", "n1 task 7", &e);
    check(rc == -EPERM && rc2 == 0, "only the holder releases the lock");
}

void run_cluster_tests(struct etcd_client *c, struct etcd_client *other)
{
    (void)other;
    struct node n1;
    node_init(&n1);
    test_membership(c, &n1);
    test_crash(c, &n1);
    test_leave(c);
    test_ownership(c, &n1);
    test_quorum_frozen(c, &n1);
    test_quorum_stopped(c, &n1);
    struct err e;
    node_release(&n1);
    check(node_state(c, "n1") == 0, "n1 goes offline when it stops");
    int rc = node_forget(c, "n1", &e);
    check(rc == 0 && node_state(c, "n1") == -1, "node_forget removes n1 from the list");
}
