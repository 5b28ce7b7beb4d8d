/* Replica volumes and tern-replica processes on a replication's target
 * (node/replica_host.h). The replica paths come from the VM's config and
 * this node's expansion of each local storage's path, never from the
 * caller: a peer names a VM, not a file. */
#include "node/replica_host.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cluster/vmconf.h"
#include "common/clock.h"
#include "common/log.h"
#include "node/config.h"
#include "node/ctx.h"
#include "node/vmm.h"
#include "node/vmops.h"

#define REPLICA_PROCS 16
#define REPLICA_READY_MS 30000
/* an orphan (its owner's task gone) ends by itself after this */
#define REPLICA_TIMEOUT_MS "300000"

struct replica_proc {
    uint32_t vmid; /* 0: free slot */
    pid_t pid;
    int out; /* its stdout */
};

static pthread_mutex_t procs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct replica_proc procs[REPLICA_PROCS];

struct replica_set {
    unsigned n;
    unsigned disk[VMCONF_DISKS_MAX];
    char path[VMCONF_DISKS_MAX][VMCONF_PATH_MAX];
    uint64_t size[VMCONF_DISKS_MAX];
};

/* The replica of each disk of vmid on a storage that is not shared. */
static int replica_paths(struct node_ctx *x, struct etcd_client *c, uint32_t vmid,
                         struct replica_set *set, struct err *e)
{
    struct vmconf vm;
    int rc = vmconf_get(c, vmid, 0, &vm, e);
    set->n = 0;
    for (unsigned i = 0; !rc && i < vm.ndisks; i++) {
        struct storage_conf s;
        char vol[VMCONF_PATH_MAX];
        rc = storage_get(c, vm.disks[i].storage, 0, &s, e);
        if (rc || s.shared)
            continue;
        rc = storage_volume_path(&s, x->cfg->name, vm.disks[i].volume, vol, e);
        if (!rc && snprintf(set->path[set->n], VMCONF_PATH_MAX, "%s.replica", vol) >=
                       VMCONF_PATH_MAX)
            rc = err_set(e, ENAMETOOLONG, "vm %u: replica of '%s': path too long", vmid,
                         vol);
        if (!rc) {
            set->disk[set->n] = i;
            set->size[set->n++] = vm.disks[i].size_mib << 20;
        }
    }
    if (!rc && set->n == 0)
        rc = err_set(e, EINVAL, "vm %u has no disk on a storage that is not shared", vmid);
    return rc;
}

/* host of host:port, and a port the kernel says is free on it now (a
 * short race with another binder is possible: tern-replica then fails to
 * listen and the sync fails with its message). */
static int listen_address(const struct ternd_config *cfg, char host[64], unsigned *port,
                          struct err *e)
{
    const char *colon = strrchr(cfg->migration_address, ':');
    size_t len = colon ? (size_t)(colon - cfg->migration_address) : 0;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    if (!len || len >= 64)
        return err_set(e, EINVAL, "migration address '%s' is not host:port",
                       cfg->migration_address);
    memcpy(host, cfg->migration_address, len);
    host[len] = '\0';
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return err_set(e, EINVAL, "migration address '%s': an ipv4 address is needed",
                       cfg->migration_address);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    socklen_t sl = sizeof(sa);
    int rc = fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
                     getsockname(fd, (struct sockaddr *)&sa, &sl) < 0
                 ? err_set(e, errno, "no free port on %s: %s", host, strerror(errno))
                 : 0;
    if (fd >= 0)
        close(fd);
    *port = ntohs(sa.sin_port);
    return rc;
}

/* One line of the child's stdout within ms; -ETIMEDOUT, or -EPIPE at its end. */
static int read_line(int fd, char *line, size_t size, int ms)
{
    size_t n = 0;
    double until = clock_mono_ms() + ms;
    while (n + 1 < size) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = (int)(until - clock_mono_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0)
            return -ETIMEDOUT;
        ssize_t r = read(fd, line + n, 1);
        if (r <= 0)
            return -EPIPE;
        if (line[n] == '\n')
            break;
        n++;
    }
    line[n] = '\0';
    return 0;
}

static int spawn(struct node_ctx *x, const struct replica_set *set, uint32_t vmid,
                 bool fresh, const char *uri, pid_t *pid, int *out, struct err *e)
{
    char bin[512], log_path[600], exports[VMCONF_DISKS_MAX][VMCONF_PATH_MAX + 64];
    char *argv[8 + 2 * VMCONF_DISKS_MAX];
    ssize_t n = readlink("/proc/self/exe", bin, sizeof(bin) - 16);
    if (n <= 0)
        return err_set(e, errno, "/proc/self/exe: %s", strerror(errno));
    bin[n] = '\0';
    strcpy(strrchr(bin, '/') + 1, "tern-replica");
    snprintf(log_path, sizeof(log_path), "%s/run/replica-%u.log", x->cfg->data_dir, vmid);
    unsigned a = 0;
    argv[a++] = bin;
    argv[a++] = "--listen";
    argv[a++] = (char *)uri;
    for (unsigned i = 0; i < set->n; i++) {
        snprintf(exports[i], sizeof(exports[i]), "disk%u=%s,size=%llu", set->disk[i],
                 set->path[i], (unsigned long long)set->size[i]);
        argv[a++] = "--export";
        argv[a++] = exports[i];
    }
    argv[a++] = "--timeout-ms";
    argv[a++] = REPLICA_TIMEOUT_MS;
    if (fresh)
        argv[a++] = "--fresh";
    argv[a] = NULL;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return err_set(e, errno, "pipe: %s", strerror(errno));
    *pid = fork();
    if (*pid == 0)
        vmm_exec_detached(log_path, fds[1], argv);
    close(fds[1]);
    if (*pid < 0) {
        close(fds[0]);
        return err_set(e, errno, "fork: %s", strerror(errno));
    }
    *out = fds[0];
    return 0;
}

/* slot of vmid (or a free one with vmid 0), under procs_lock */
static struct replica_proc *find(uint32_t vmid)
{
    for (unsigned i = 0; i < REPLICA_PROCS; i++)
        if (procs[i].vmid == vmid)
            return &procs[i];
    return NULL;
}

static void reap(pid_t pid, int out, int *status)
{
    kill(pid, SIGTERM);
    waitpid(pid, status, 0);
    if (out >= 0)
        close(out);
}

/* An earlier sync's tern-replica whose owner never asked for its end (its
 * task or ternd died): only the VM's lock holder starts a sync, so a new
 * one supersedes it. SIGTERM: it removes its side files. */
static void end_stale(uint32_t vmid)
{
    pthread_mutex_lock(&procs_lock);
    struct replica_proc *p = find(vmid), old = p ? *p : (struct replica_proc){0};
    if (p)
        p->vmid = 0;
    pthread_mutex_unlock(&procs_lock);
    int st;
    if (!p)
        return;
    reap(old.pid, old.out, &st);
    log_info("replica",
             "vm %u: an earlier tern-replica (pid %d) ended: a new sync supersedes it",
             vmid, (int)old.pid);
}

int replica_start(struct node_ctx *x, struct etcd_client *c, uint32_t vmid, bool fresh,
                  char uri[128], struct err *e)
{
    struct replica_set set;
    char host[64], line[128];
    unsigned port = 0;
    pid_t pid = -1;
    int out = -1, st;
    int rc = replica_paths(x, c, vmid, &set, e);
    for (unsigned i = 0; !rc && i < set.n; i++) {
        char dir[VMCONF_PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", set.path[i]);
        *strrchr(dir, '/') = '\0';
        rc = vmops_make_dirs(dir, e);
    }
    if (!rc)
        rc = listen_address(x->cfg, host, &port, e);
    if (rc)
        return rc;
    snprintf(uri, 128, "tcp:%s:%u", host, port);
    end_stale(vmid);
    pthread_mutex_lock(&procs_lock);
    struct replica_proc *p = find(vmid) ? NULL : find(0);
    if (find(vmid))
        rc = err_set(e, EBUSY, "vm %u: a replication sync into node '%s' runs already",
                     vmid, x->cfg->name);
    else if (!p)
        rc = err_set(e, EBUSY, "node '%s': %d replication syncs run already", x->cfg->name,
                     REPLICA_PROCS);
    if (!rc)
        rc = spawn(x, &set, vmid, fresh, uri, &pid, &out, e);
    if (!rc)
        *p = (struct replica_proc){.vmid = vmid, .pid = pid, .out = out};
    pthread_mutex_unlock(&procs_lock);
    if (rc)
        return rc;
    int lr = read_line(out, line, sizeof(line), REPLICA_READY_MS);
    if (!lr && strcmp(line, "ready") == 0) {
        log_info("replica", "vm %u: tern-replica (pid %d) receives on %s%s", vmid, (int)pid,
                 uri, fresh ? " (full sync)" : "");
        return 0;
    }
    pthread_mutex_lock(&procs_lock);
    p->vmid = 0;
    pthread_mutex_unlock(&procs_lock);
    reap(pid, out, &st);
    return err_set(
        e, EIO,
        "vm %u: tern-replica did not start on node '%s' (see %s/run/replica-%u.log)", vmid,
        x->cfg->name, x->cfg->data_dir, vmid);
}

int replica_end(struct node_ctx *x, uint32_t vmid, int timeout_ms, bool *committed,
                uint64_t *bytes, struct err *e)
{
    pthread_mutex_lock(&procs_lock);
    struct replica_proc *p = find(vmid), me = p ? *p : (struct replica_proc){0};
    if (p)
        p->vmid = 0;
    pthread_mutex_unlock(&procs_lock);
    *committed = false;
    *bytes = 0;
    if (!p)
        return err_set(e, ENOENT, "vm %u: no replication sync runs into node '%s'", vmid,
                       x->cfg->name);
    int status = 0;
    double until = clock_mono_ms() + timeout_ms;
    pid_t r;
    while ((r = waitpid(me.pid, &status, WNOHANG)) == 0 && clock_mono_ms() < until)
        usleep(20000);
    if (r == 0)
        reap(me.pid, -1, &status);
    char line[128] = "";
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
              read_line(me.out, line, sizeof(line), 1000) == 0 &&
              sscanf(line, "committed %" SCNu64, bytes) == 1;
    close(me.out);
    *committed = ok;
    if (!ok)
        err_set(e, EIO,
                "tern-replica on node '%s' did not commit%s (see %s/run/replica-%u.log)",
                x->cfg->name, r == 0 ? " in time" : "", x->cfg->data_dir, vmid);
    return 0;
}

int replica_remove(struct node_ctx *x, struct etcd_client *c, uint32_t vmid,
                   unsigned *removed, struct err *e)
{
    pthread_mutex_lock(&procs_lock);
    struct replica_proc *p = find(vmid), me = p ? *p : (struct replica_proc){0};
    if (p)
        p->vmid = 0;
    pthread_mutex_unlock(&procs_lock);
    int st;
    if (p)
        reap(me.pid, me.out, &st);
    struct replica_set set;
    *removed = 0;
    int rc = replica_paths(x, c, vmid, &set, e);
    for (unsigned i = 0; !rc && i < set.n; i++) {
        char side[VMCONF_PATH_MAX + 8];
        snprintf(side, sizeof(side), "%s.sync", set.path[i]);
        unlink(side);
        if (unlink(set.path[i]) == 0)
            (*removed)++;
        else if (errno != ENOENT)
            rc = err_set(e, errno, "cannot remove replica '%s': %s", set.path[i],
                         strerror(errno));
    }
    return rc;
}

/* [off, end) of in into out at the same offsets */
static int copy_range(int in, int out, off_t off, off_t end)
{
    while (off < end) {
        off_t at = off;
        ssize_t n = copy_file_range(in, &at, out, &(off_t){off}, (size_t)(end - off), 0);
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        off += n;
    }
    return 0;
}

int replica_fill(const char *volume, struct err *e)
{
    char rep[VMCONF_PATH_MAX + 16];
    snprintf(rep, sizeof(rep), "%s.replica", volume);
    int in = open(rep, O_RDONLY | O_CLOEXEC), out = open(volume, O_WRONLY | O_CLOEXEC);
    int rc = in < 0    ? err_set(e, errno == ENOENT ? ENOENT : errno,
                                 "no replica '%s' on this node to start from: %s", rep,
                                 strerror(errno))
             : out < 0 ? err_set(e, errno, "'%s': %s", volume, strerror(errno))
                       : 0;
    for (off_t off = 0; !rc;) {
        off_t data = lseek(in, off, SEEK_DATA), hole;
        if (data < 0 && errno == ENXIO)
            break;
        hole = data < 0 ? -1 : lseek(in, data, SEEK_HOLE);
        int cr = data < 0 || hole < 0 ? -errno : copy_range(in, out, data, hole);
        if (cr)
            rc = err_set(e, -cr, "copy of replica '%s': %s", rep, strerror(-cr));
        off = hole;
    }
    if (!rc && fdatasync(out) < 0)
        rc = err_set(e, errno, "'%s': flush: %s", volume, strerror(errno));
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return rc;
}
