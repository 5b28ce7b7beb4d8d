/* One thread per tern-vmm: follows the control socket's events (status
 * changes, migration progress for the task that listens) and, when the
 * process is gone, says how it ended. A destination reopens its control
 * socket once the source connected, so a closed connection is only an end
 * when the process is gone too. */
#include "node/vmm_watch.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "node/vmmctl.h"

#define RETRY_US 50000

struct watch_arg {
    struct vmm_table *v;
    struct vmm_proc *p;
};

static bool alive(struct vmm_table *v, struct vmm_proc *p)
{
    if (!p->child)
        return kill(p->pid, 0) == 0;
    int status;
    pid_t r = waitpid(p->pid, &status, WNOHANG);
    if (r == 0)
        return true;
    pthread_mutex_lock(&v->lock);
    p->reaped = r == p->pid;
    p->wait_status = status;
    pthread_mutex_unlock(&v->lock);
    return false;
}

static void set_status(struct vmm_proc *p, const char *status)
{
    if (strcmp(p->status, status) == 0)
        return;
    log_info("vmm", "vm %u: status %s -> %s", p->spec.conf.id, p->status, status);
    snprintf(p->status, sizeof(p->status), "%s", status);
    p->since = time(NULL);
    p->dirty = true;
}

/* A destination whose migration completed: the VM is this node's now (and
 * so for a ternd that adopts the process later), running or paused as it
 * was on the source. */
static void become_owner(struct vmm_proc *p, const char *state)
{
    p->role = VMM_RUN;
    set_status(p, state && strcmp(state, "paused") == 0 ? "paused" : "running");
    char path[VMM_PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/pid", p->dir);
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "%d %d\n", (int)p->pid, (int)VMM_RUN);
        fclose(f);
    }
}

/* A status reply of a destination that no migration holds any more: its
 * migration completed, perhaps between two connections of this thread (it
 * reopens its control socket when the source connects, and a paused VM's
 * migration can end before this thread is back), so the event was missed. */
static bool arrived(json_t *ev, const char *state)
{
    json_t *held = json_object_get(ev, "handed_over");
    if (json_object_get(ev, "event") || !state || json_is_true(held))
        return false;
    /* without the field (an older tern-vmm) only a running VM tells */
    return strcmp(state, "running") == 0 || (held && strcmp(state, "paused") == 0);
}

/* With v->lock held: what an event (or a status reply) says of the VM. */
static void apply(struct vmm_proc *p, json_t *ev)
{
    const char *name = json_string_value(json_object_get(ev, "event"));
    const char *state = json_string_value(json_object_get(ev, "state"));
    const char *mig = json_string_value(json_object_get(ev, "status"));
    bool migrating = strcmp(p->status, "migrating") == 0;
    if (p->role == VMM_INCOMING && arrived(ev, state))
        become_owner(p, state);
    else if (!name && state && p->role == VMM_RUN && !migrating &&
             (strcmp(state, "running") == 0 || strcmp(state, "paused") == 0))
        set_status(p, state);
    else if (name && strcmp(name, "resumed") == 0 && p->role == VMM_RUN && !migrating)
        set_status(p, "running");
    else if (name && strcmp(name, "paused") == 0 && p->role == VMM_RUN && !migrating)
        set_status(p, "paused");
    else if (name && strcmp(name, "shutdown") == 0)
        snprintf(p->shutdown_reason, sizeof(p->shutdown_reason), "%s",
                 json_string_value(json_object_get(ev, "reason")) ?: "");
    else if (name && strcmp(name, "migration") == 0 && p->role == VMM_INCOMING && mig &&
             strcmp(mig, "completed") == 0) {
        become_owner(p, state);
    }
}

static void deliver(struct vmm_table *v, struct vmm_proc *p, json_t *ev)
{
    pthread_mutex_lock(&v->lock);
    apply(p, ev);
    void (*fn)(void *, json_t *) = p->listener;
    void *ctx = p->listener_ctx;
    pthread_cond_broadcast(&v->changed);
    pthread_mutex_unlock(&v->lock);
    if (fn)
        fn(ctx, ev);
}

static bool reconnect(struct vmm_table *v, struct vmm_proc *p, struct vmmctl_conn *c)
{
    struct err e;
    while (vmmctl_open(c, p->sock, &e) < 0) {
        if (!alive(v, p))
            return false;
        usleep(RETRY_US);
    }
    /* the current state first: events only say what changes */
    json_t *req = json_pack("{s:s}", "cmd", "status");
    vmmctl_send(c, req, &e);
    json_decref(req);
    return true;
}

static void follow(struct vmm_table *v, struct vmm_proc *p)
{
    struct vmmctl_conn c;
    if (!reconnect(v, p, &c))
        return;
    for (;;) {
        json_t *ev = NULL;
        struct err e;
        int rc = vmmctl_read(&c, 1000, &ev, &e);
        if (!rc) {
            deliver(v, p, ev);
            json_decref(ev);
        } else if (rc != -ETIMEDOUT) {
            vmmctl_close(&c);
            if (!reconnect(v, p, &c))
                return;
        } else if (!alive(v, p)) {
            break;
        }
    }
    vmmctl_close(&c);
}

static void last_log_line(const char *path, char *out, size_t size)
{
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    char line[512];
    while (f && fgets(line, sizeof(line), f))
        if (line[0] != '\n') {
            line[strcspn(line, "\n")] = '\0';
            snprintf(out, size, "%.190s", line);
        }
    if (f)
        fclose(f);
}

/* With v->lock held. true when the restart policy applies (a crash or a
 * kill nobody here asked for; not a power-off, quit or migration). */
static bool describe_exit(struct vmm_proc *p, char *out, size_t size)
{
    char last[200];
    last_log_line(p->log, last, sizeof(last));
    int st = p->wait_status;
    if (!p->reaped) {
        snprintf(out, size, "ended (%s)",
                 p->shutdown_reason[0] ? p->shutdown_reason
                                       : "adopted process, status unknown");
        return false;
    }
    if (WIFSIGNALED(st)) {
        snprintf(out, size, "killed by signal %d (%s)", WTERMSIG(st),
                 strsignal(WTERMSIG(st)));
        return !p->stop_requested;
    }
    if (WEXITSTATUS(st) == 0) {
        snprintf(out, size, "%s",
                 strcmp(p->shutdown_reason, "poweroff") == 0   ? "powered off"
                 : strcmp(p->shutdown_reason, "migrated") == 0 ? "migrated away"
                 : p->shutdown_reason[0]                       ? p->shutdown_reason
                                                               : "exited");
        return false;
    }
    snprintf(out, size, "%s (exit %d): %.180s", WEXITSTATUS(st) == 3 ? "crashed" : "failed",
             WEXITSTATUS(st), last);
    return WEXITSTATUS(st) == 3 && !p->stop_requested;
}

static void record_exit(struct vmm_table *v, uint32_t id, const char *why)
{
    int slot = -1;
    for (int i = 0; i < VMM_MAX && slot < 0; i++)
        if (v->exits[i].id == id)
            slot = i;
    for (int i = 0; i < VMM_MAX && slot < 0; i++)
        if (!v->exits[i].id)
            slot = i;
    if (slot < 0)
        slot = (int)(id % VMM_MAX);
    v->exits[slot].id = id;
    snprintf(v->exits[slot].why, sizeof(v->exits[slot].why), "%s", why);
}

static void finish(struct vmm_table *v, struct vmm_proc *p)
{
    if (p->child && !p->reaped) {
        int status;
        if (waitpid(p->pid, &status, 0) == p->pid) {
            p->wait_status = status;
            p->reaped = true;
        }
    }
    pthread_mutex_lock(&v->lock);
    char why[256];
    bool restart = describe_exit(p, why, sizeof(why));
    p->exited = true;
    /* a source that dies mid-migration is not restarted: the handover may
     * have committed (the destination asks etcd and resumes then) */
    p->restart_due = restart && p->role == VMM_RUN && strcmp(p->status, "migrating") != 0;
    set_status(p, "stopped");
    snprintf(p->last_exit, sizeof(p->last_exit), "%s", why);
    record_exit(v, p->spec.conf.id, why);
    void (*fn)(void *, json_t *) = p->listener;
    void *ctx = p->listener_ctx;
    bool migrated = strcmp(p->shutdown_reason, "migrated") == 0;
    pthread_cond_broadcast(&v->changed);
    pthread_mutex_unlock(&v->lock);
    log_info("vmm", "vm %u: tern-vmm (pid %d) %s", p->spec.conf.id, (int)p->pid, why);
    if (fn) {
        json_t *ev = json_pack("{s:s, s:s, s:b}", "event", "exit", "reason", why,
                               "migrated", migrated);
        fn(ctx, ev);
        json_decref(ev);
    }
}

static void *watch_main(void *arg)
{
    struct watch_arg a = *(struct watch_arg *)arg;
    free(arg);
    follow(a.v, a.p);
    finish(a.v, a.p);
    return NULL;
}

int vmm_watch_start(struct vmm_table *v, struct vmm_proc *p, struct err *e)
{
    struct watch_arg *a = malloc(sizeof(*a));
    if (!a)
        return err_set(e, ENOMEM, "out of memory");
    a->v = v;
    a->p = p;
    int rc = pthread_create(&p->watch, NULL, watch_main, a);
    if (rc) {
        free(a);
        return err_set(e, rc, "watch thread: %s", strerror(rc));
    }
    p->watch_started = true;
    return 0;
}
