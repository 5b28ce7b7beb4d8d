#include "node/vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "node/vmm_watch.h"
#include "node/vmmctl.h"
#include "node/vmnet.h"

#define START_WAIT_MS 10000
#define ARGS_MAX (24 + 2 * VMCONF_DISKS_MAX + 2 * VMCONF_NETS_MAX)

void vmm_table_init(struct vmm_table *v)
{
    memset(v, 0, sizeof(*v));
    pthread_mutex_init(&v->lock, NULL);
    pthread_cond_init(&v->changed, NULL);
}

int vmm_table_setup(struct vmm_table *v, const char *data_dir, const char *binary,
                    const char *node, struct err *e)
{
    snprintf(v->node, sizeof(v->node), "%s", node);
    if (!v->tap_prefix[0])
        snprintf(v->tap_prefix, sizeof(v->tap_prefix), "tern");
    if (snprintf(v->run_dir, sizeof(v->run_dir), "%s/run", data_dir) >=
        (int)sizeof(v->run_dir))
        return err_set(e, ENAMETOOLONG, "data dir '%s' is too long", data_dir);
    if (mkdir(v->run_dir, 0700) < 0 && errno != EEXIST)
        return err_set(e, errno, "%s: %s", v->run_dir, strerror(errno));
    if (binary && *binary) {
        snprintf(v->binary, sizeof(v->binary), "%s", binary);
    } else {
        /* beside ternd: build/ in a tree, /usr/bin installed */
        ssize_t n = readlink("/proc/self/exe", v->binary, sizeof(v->binary) - 16);
        if (n <= 0)
            return err_set(e, errno, "/proc/self/exe: %s", strerror(errno));
        v->binary[n] = '\0';
        char *slash = strrchr(v->binary, '/');
        strcpy(slash + 1, "tern-vmm");
    }
    if (access(v->binary, X_OK) < 0)
        return err_set(e, errno, "tern-vmm '%s': %s", v->binary, strerror(errno));
    return 0;
}

void vmm_table_release(struct vmm_table *v)
{
    for (unsigned i = 0; i < VMM_MAX; i++) {
        struct vmm_proc *p = v->procs[i];
        if (!p)
            continue;
        /* the VMs keep running: only stop following them */
        if (p->watch_started) {
            pthread_cancel(p->watch);
            pthread_join(p->watch, NULL);
        }
        free(p);
        v->procs[i] = NULL;
    }
}

/* With v->lock held. */
static struct vmm_proc *vmm_find(struct vmm_table *v, uint32_t id)
{
    for (unsigned i = 0; i < VMM_MAX; i++)
        if (v->procs[i] && v->procs[i]->spec.conf.id == id)
            return v->procs[i];
    return NULL;
}

static int proc_paths(struct vmm_table *v, struct vmm_proc *p, struct err *e)
{
    if (snprintf(p->dir, sizeof(p->dir), "%s/%u", v->run_dir, p->spec.conf.id) >=
        (int)sizeof(p->dir))
        return err_set(e, ENAMETOOLONG, "run dir of vm %u too long", p->spec.conf.id);
    snprintf(p->sock, sizeof(p->sock), "%s/control.sock", p->dir);
    snprintf(p->console, sizeof(p->console), "%s/console.log", p->dir);
    snprintf(p->log, sizeof(p->log), "%s/vmm.log", p->dir);
    if (mkdir(p->dir, 0700) < 0 && errno != EEXIST)
        return err_set(e, errno, "%s: %s", p->dir, strerror(errno));
    return 0;
}

/* ",repl=<image>.repl-<target>" after a local disk of a started VM with a
 * replication; left out when it would not fit (the first sync attaches it) */
static void disk_repl(const struct vmm_proc *p, const char *uri, unsigned i, char *arg)
{
    size_t len = strlen(arg), size = VMM_PATH_MAX + 64;
    if (uri || p->spec.shared[i] || !p->spec.repl_target[0])
        return;
    if (snprintf(arg + len, size - len, ",repl=%s.repl-%s", p->spec.disk[i],
                 p->spec.repl_target) >= (int)(size - len))
        arg[len] = '\0';
}

static void build_args(struct vmm_table *v, struct vmm_proc *p, const char *uri,
                       const char *tls_dir, char bufs[][VMM_PATH_MAX + 64], char **argv)
{
    const struct vmconf *c = &p->spec.conf;
    int n = 0, b = 0;
#define ARG(...) (snprintf(bufs[b], sizeof(bufs[b]), __VA_ARGS__), argv[n++] = bufs[b++])
    ARG("%s", v->binary);
    ARG("--name");
    ARG("%u", c->id);
    ARG("--memory");
    ARG("%lluM", (unsigned long long)c->memory_mib);
    ARG("--cpus");
    ARG("%u", c->cpus);
    ARG("--control");
    ARG("%s", p->sock);
    ARG("--console");
    ARG("file:%s", p->console);
    for (unsigned i = 0; i < c->ndisks; i++) {
        ARG("--disk");
        ARG("path=%s%s", p->spec.disk[i], p->spec.shared[i] ? ",shared=on" : "");
        disk_repl(p, uri, i, bufs[b - 1]);
    }
    for (unsigned i = 0; i < c->nnets; i++) {
        char tap[VMCONF_IFNAME_MAX];
        vmnet_tap_name(v->tap_prefix, c->id, i, tap); /* vmnet_prepare checked it */
        ARG("--net");
        ARG("tap=%s,mac=%s", tap, c->nets[i].mac);
    }
    if (uri) {
        ARG("--incoming");
        ARG("%s", uri);
        ARG("--commit");
        ARG("external");
        if (tls_dir) {
            ARG("--tls-dir");
            ARG("%s", tls_dir);
        }
        if (p->spec.nbd_listen[0]) {
            ARG("--nbd-listen");
            ARG("%s", p->spec.nbd_listen);
        }
    } else {
        ARG("--kernel");
        ARG("%s", c->kernel);
        if (p->spec.paused)
            ARG("--paused");
        argv[n++] = "--cmdline";
        argv[n++] = (char *)c->cmdline;
    }
    if (p->fence_ms) {
        ARG("--fence-ms");
        ARG("%u", p->fence_ms);
    }
#undef ARG
    argv[n] = NULL;
}

/* What build_args gives a VM: COM1 for its console, a virtio-blk for
 * each disk, a virtio-net for each NIC. */
#define DEV_SERIAL "serial"
#define DEV_DISK "virtio-blk"
#define DEV_NET "virtio-net"

json_t *vmm_devices_supported(void)
{
    return json_pack("{s:i, s:i, s:i}", DEV_SERIAL, 1, DEV_DISK, VMCONF_DISKS_MAX, DEV_NET,
                     VMCONF_NETS_MAX);
}

json_t *vmm_devices_used(const struct vmm_spec *spec)
{
    json_t *d = json_pack("{s:i, s:i}", DEV_SERIAL, 1, DEV_DISK, (int)spec->conf.ndisks);
    if (d && spec->conf.nnets) /* an older target that lists none refuses */
        json_object_set_new(d, DEV_NET, json_integer(spec->conf.nnets));
    return d;
}

void vmm_exec_detached(const char *log_path, int out_fd, char **argv)
{
    setsid();
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int in = open("/dev/null", O_RDONLY);
    int err = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (in < 0 || err < 0)
        _exit(127);
    dup2(in, 0);
    dup2(out_fd >= 0 ? out_fd : err, 1);
    dup2(err, 2);
    close_range(3, ~0u, 0);
    execv(argv[0], argv);
    dprintf(2, "ternd: exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

static int spawn(struct vmm_table *v, struct vmm_proc *p, const char *uri,
                 const char *tls_dir, struct err *e)
{
    static char bufs[ARGS_MAX][VMM_PATH_MAX + 64]; /* under v->lock */
    char *argv[ARGS_MAX + 4];
    /* the TAPs first: tern-vmm opens them by name */
    int rc = vmnet_prepare(v->tap_prefix, &p->spec.conf, v->node, e);
    if (rc)
        return rc;
    build_args(v, p, uri, tls_dir, bufs, argv);
    unlink(p->sock);
    int fd = open(p->console, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0)
        close(fd);
    pid_t pid = fork();
    if (pid < 0)
        return err_set(e, errno, "fork: %s", strerror(errno));
    if (pid == 0)
        vmm_exec_detached(p->log, -1, argv);
    p->pid = pid;
    p->child = true;
    char path[VMM_PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/pid", p->dir);
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "%d %d\n", (int)pid, (int)p->role);
        fclose(f);
    }
    return 0;
}

/* An HA VM runs only under a self-fence deadline (node/ha.h): from the
 * start, so that no instant is left in which it runs unfenced. */
static int fence_budget(struct vmm_table *v, struct vmm_proc *p, struct err *e)
{
    if (!p->spec.ha || p->role != VMM_RUN)
        return 0;
    int ms = v->fence_ms ? v->fence_ms(v->fence_ctx, p->spec.ha_lease) : 0;
    if (ms <= 0)
        return err_set(e, ETCD_NOT_QUORATE,
                       "vm %u is HA and this node's lease was not renewed recently: "
                       "not started (it could not fence itself)",
                       p->spec.conf.id);
    p->fence_ms = (unsigned)ms;
    return 0;
}

/* Adds p to the table and starts its process and watch thread. */
static int launch(struct vmm_table *v, struct vmm_proc *p, const char *uri,
                  const char *tls_dir, struct err *e)
{
    pthread_mutex_lock(&v->lock);
    int slot = -1, rc = 0;
    struct vmm_proc *old = vmm_find(v, p->spec.conf.id);
    for (int i = 0; i < VMM_MAX && slot < 0; i++)
        if (!v->procs[i])
            slot = i;
    if (old && !old->exited)
        rc = err_set(e, EBUSY, "vm %u already runs here (pid %d)", p->spec.conf.id,
                     (int)old->pid);
    else if (old || slot < 0)
        rc = err_set(e, EBUSY, "vm %u: the last process is still being cleaned up",
                     p->spec.conf.id);
    if (!rc)
        rc = proc_paths(v, p, e);
    if (!rc)
        rc = fence_budget(v, p, e);
    if (!rc)
        rc = spawn(v, p, uri, tls_dir, e);
    if (!rc) {
        p->since = p->started = time(NULL);
        p->dirty = p->role == VMM_RUN;
        v->procs[slot] = p;
        rc = vmm_watch_start(v, p, e);
        if (rc) {
            kill(p->pid, SIGKILL);
            v->procs[slot] = NULL;
        }
    }
    pthread_mutex_unlock(&v->lock);
    return rc;
}

static int wait_answering(struct vmm_table *v, struct vmm_proc *p, struct err *e)
{
    uint64_t deadline = clock_mono_ns() + (uint64_t)START_WAIT_MS * 1000000;
    json_t *req = json_pack("{s:s}", "cmd", "status"), *reply = NULL;
    int rc = -ETIMEDOUT;
    while (clock_mono_ns() < deadline) {
        rc = vmmctl_request(p->sock, req, &reply, 1000, e);
        if (!rc || vmm_wait_exit(v, p->spec.conf.id, 50) == 0)
            break;
    }
    json_decref(req);
    json_decref(reply);
    if (!rc)
        return 0;
    pthread_mutex_lock(&v->lock);
    bool gone = p->exited;
    char why[256];
    snprintf(why, sizeof(why), "%s", p->last_exit);
    pthread_mutex_unlock(&v->lock);
    return gone ? err_set(e, EIO, "tern-vmm of vm %u %s (see %s)", p->spec.conf.id, why,
                          p->log)
                : err_set(e, ETIMEDOUT, "tern-vmm of vm %u did not answer in %d ms",
                          p->spec.conf.id, START_WAIT_MS);
}

static struct vmm_proc *proc_new(const struct vmm_spec *spec, enum vmm_role role)
{
    struct vmm_proc *p = calloc(1, sizeof(*p));
    if (p) {
        p->spec = *spec;
        p->role = role;
        snprintf(p->status, sizeof(p->status), "%s",
                 role == VMM_RUN ? "starting" : "incoming");
    }
    return p;
}

/* A process for spec in role: booted (uri NULL) or a destination waiting
 * on uri; returns once its control socket answers. */
static int start_proc(struct vmm_table *v, const struct vmm_spec *spec, enum vmm_role role,
                      const char *uri, const char *tls_dir, struct err *e)
{
    struct vmm_proc *p = proc_new(spec, role);
    if (!p)
        return err_set(e, ENOMEM, "out of memory");
    int rc = launch(v, p, uri, tls_dir, e);
    if (rc) {
        free(p);
        return rc;
    }
    if (uri)
        log_info("vmm", "vm %u: tern-vmm waits for a migration on %s (pid %d)",
                 spec->conf.id, uri, (int)p->pid);
    else
        log_info("vmm", "vm %u: tern-vmm started (pid %d)", spec->conf.id, (int)p->pid);
    return wait_answering(v, p, e);
}

int vmm_start(struct vmm_table *v, const struct vmm_spec *spec, struct err *e)
{
    return start_proc(v, spec, VMM_RUN, NULL, NULL, e);
}

int vmm_start_incoming(struct vmm_table *v, const struct vmm_spec *spec, const char *uri,
                       const char *tls_dir, struct err *e)
{
    return start_proc(v, spec, VMM_INCOMING, uri, tls_dir, e);
}

static void deadline(struct timespec *until, int timeout_ms)
{
    clock_gettime(CLOCK_REALTIME, until);
    until->tv_sec += timeout_ms / 1000;
    until->tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (until->tv_nsec >= 1000000000) {
        until->tv_sec++;
        until->tv_nsec -= 1000000000;
    }
}

int vmm_wait_settled(struct vmm_table *v, uint32_t id, int timeout_ms)
{
    struct timespec until;
    deadline(&until, timeout_ms);
    pthread_mutex_lock(&v->lock);
    int rc = 0;
    while (vmm_find(v, id) && !rc)
        rc = pthread_cond_timedwait(&v->changed, &v->lock, &until);
    pthread_mutex_unlock(&v->lock);
    return rc ? -ETIMEDOUT : 0;
}

int vmm_wait_exit(struct vmm_table *v, uint32_t id, int timeout_ms)
{
    struct timespec until;
    deadline(&until, timeout_ms);
    pthread_mutex_lock(&v->lock);
    int rc = 0;
    struct vmm_proc *p;
    while ((p = vmm_find(v, id)) && !p->exited && !rc)
        rc = timeout_ms < 0 ? pthread_cond_wait(&v->changed, &v->lock)
                            : pthread_cond_timedwait(&v->changed, &v->lock, &until);
    pthread_mutex_unlock(&v->lock);
    return rc ? -ETIMEDOUT : 0;
}

/* The socket path of a live process, copied under the lock. */
static int live_sock(struct vmm_table *v, uint32_t id, char *sock, size_t size,
                     struct err *e)
{
    pthread_mutex_lock(&v->lock);
    struct vmm_proc *p = vmm_find(v, id);
    bool live = p && !p->exited;
    if (live)
        snprintf(sock, size, "%s", p->sock);
    pthread_mutex_unlock(&v->lock);
    return live ? 0 : err_set(e, ENOENT, "vm %u does not run on this node", id);
}

int vmm_command(struct vmm_table *v, uint32_t id, json_t *req, json_t **reply,
                struct err *e)
{
    char sock[VMM_PATH_MAX + 32];
    int rc = live_sock(v, id, sock, sizeof(sock), e);
    return rc ? rc : vmmctl_request(sock, req, reply, 5000, e);
}

int vmm_stop(struct vmm_table *v, uint32_t id, int timeout_ms, struct err *e)
{
    pthread_mutex_lock(&v->lock);
    struct vmm_proc *p = vmm_find(v, id);
    bool live = p && !p->exited;
    pid_t pid = live ? p->pid : 0;
    if (live)
        p->stop_requested = true;
    pthread_mutex_unlock(&v->lock);
    if (!live)
        return err_set(e, ENOENT, "vm %u does not run on this node", id);
    json_t *req = json_pack("{s:s}", "cmd", "quit"), *reply = NULL;
    struct err ignored;
    vmm_command(v, id, req, &reply, &ignored);
    json_decref(req);
    json_decref(reply);
    if (vmm_wait_exit(v, id, timeout_ms) == 0)
        return 0;
    log_warn("vmm", "vm %u: no exit %d ms after quit; killing pid %d", id, timeout_ms,
             (int)pid);
    kill(pid, SIGKILL);
    return vmm_wait_exit(v, id, 5000) == 0
               ? 0
               : err_set(e, ETIMEDOUT, "vm %u: pid %d does not end", id, (int)pid);
}

unsigned vmm_list(struct vmm_table *v, uint32_t ids[VMM_MAX])
{
    unsigned n = 0;
    pthread_mutex_lock(&v->lock);
    for (unsigned i = 0; i < VMM_MAX; i++)
        if (v->procs[i])
            ids[n++] = v->procs[i]->spec.conf.id;
    pthread_mutex_unlock(&v->lock);
    return n;
}

void vmm_info(struct vmm_table *v, uint32_t id, struct vmm_info *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&v->lock);
    struct vmm_proc *p = vmm_find(v, id);
    if (p && !p->exited) {
        out->present = true;
        out->role = p->role;
        out->pid = p->pid;
        out->started = p->started;
        snprintf(out->status, sizeof(out->status), "%s", p->status);
    }
    if (p)
        snprintf(out->console, sizeof(out->console), "%s", p->console);
    else
        snprintf(out->console, sizeof(out->console), "%s/%u/console.log", v->run_dir, id);
    for (unsigned i = 0; i < VMM_MAX; i++)
        if (v->exits[i].id == id)
            snprintf(out->last_exit, sizeof(out->last_exit), "%s", v->exits[i].why);
    pthread_mutex_unlock(&v->lock);
}

void vmm_set_listener(struct vmm_table *v, uint32_t id, void (*fn)(void *ctx, json_t *ev),
                      void *ctx)
{
    pthread_mutex_lock(&v->lock);
    struct vmm_proc *p = vmm_find(v, id);
    if (p) {
        p->listener = fn;
        p->listener_ctx = ctx;
    }
    pthread_mutex_unlock(&v->lock);
}

void vmm_set_status(struct vmm_table *v, uint32_t id, const char *status)
{
    pthread_mutex_lock(&v->lock);
    struct vmm_proc *p = vmm_find(v, id);
    if (p && !p->exited) {
        snprintf(p->status, sizeof(p->status), "%s", status);
        p->since = time(NULL);
        p->dirty = true;
    }
    pthread_mutex_unlock(&v->lock);
}

void vmm_set_disk(struct vmm_table *v, uint32_t id, unsigned i, const char *path,
                  bool shared)
{
    pthread_mutex_lock(&v->lock);
    struct vmm_proc *p = vmm_find(v, id);
    if (p && i < p->spec.conf.ndisks) {
        snprintf(p->spec.disk[i], sizeof(p->spec.disk[i]), "%s", path);
        p->spec.shared[i] = shared;
    }
    pthread_mutex_unlock(&v->lock);
}

void vmm_set_started(struct vmm_table *v, uint32_t id, time_t started)
{
    pthread_mutex_lock(&v->lock);
    struct vmm_proc *p = vmm_find(v, id);
    if (p)
        p->started = started;
    pthread_mutex_unlock(&v->lock);
}
