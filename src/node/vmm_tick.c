/* The supervisor's main-loop side: run state into etcd, the end of
 * processes, the restart policy, and adopting the processes a previous
 * ternd left running. Only the main thread runs this, with its own etcd
 * client. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/owner.h"
#include "common/log.h"
#include "node/events.h"
#include "node/vmm.h"
#include "node/vmm_watch.h"
#include "node/vmnet.h"

#define CRASH_WINDOW_S 600
#define CRASHES_MAX 3

struct snapshot {
    uint32_t id;
    bool exited, dirty, pub_lost, incoming, failing;
    char value[512];
    char published[512];
};

static void take_snapshot(struct vmm_table *v, struct vmm_proc *p, struct snapshot *s)
{
    s->id = p->spec.conf.id;
    s->exited = p->exited;
    s->dirty = p->dirty;
    s->pub_lost = p->pub_lost;
    s->failing = p->pub_failing;
    s->incoming = p->role == VMM_INCOMING;
    snprintf(s->published, sizeof(s->published), "%s", p->published);
    struct vmrec_state st = {.pid = (int)p->pid, .since = p->since, .started = p->started};
    snprintf(st.node, sizeof(st.node), "%s", v->node);
    snprintf(st.status, sizeof(st.status), "%s", p->status);
    json_t *j = vmrec_state_to_json(&st);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    snprintf(s->value, sizeof(s->value), "%s", text ? text : "");
    free(text);
    json_decref(j);
}

/* Someone else's value is there: overwrite it only if etcd names this node
 * the owner (a destination taking over after the commit). */
static bool may_take_over(struct vmm_table *v, struct etcd_client *c, uint32_t id)
{
    char owner[TERN_NAME_MAX + 1];
    struct err e;
    return vmowner_get(c, id, 0, owner, NULL, &e) == 0 && strcmp(owner, v->node) == 0;
}

/* 0 when written (or deleted) or, with *lost, when another node publishes
 * the state now; -errno: try again later. A delete only removes our own
 * value: after a migration the destination's is there. */
static int write_state(struct vmm_table *v, struct etcd_client *c, struct snapshot *s,
                       int64_t lease, bool *lost)
{
    char key[TERN_KEY_MAX];
    snprintf(key, sizeof(key), TERN_PREFIX_VMSTATE "%u", s->id);
    *lost = false;
    if (s->exited && !s->published[0])
        return 0;
    struct etcd_cas op = {.key = key,
                          .cmp = s->published[0] ? ETCD_CMP_VALUE : ETCD_CMP_ABSENT,
                          .expect_value = s->published,
                          .new_value = s->exited ? NULL : s->value,
                          .lease = lease};
    bool swapped;
    struct err e;
    int rc = etcd_cas(c, &op, &swapped, NULL, &e);
    if (!rc && !swapped && !s->exited) {
        *lost = !may_take_over(v, c, s->id);
        rc = *lost ? 0 : etcd_put(c, key, s->value, lease, &e);
    }
    if (rc && !s->failing)
        log_warn("vmm", "vm %u: its run state does not reach etcd: %s (trying again)",
                 s->id, e.msg);
    return rc;
}

static void publish(struct vmm_table *v, struct etcd_client *c, struct vmm_proc *p,
                    int64_t lease)
{
    struct snapshot s;
    pthread_mutex_lock(&v->lock);
    take_snapshot(v, p, &s);
    pthread_mutex_unlock(&v->lock);
    if (s.dirty && s.pub_lost && s.exited) {
        /* another node publishes this VM: nothing of ours to remove */
        pthread_mutex_lock(&v->lock);
        p->dirty = false;
        pthread_mutex_unlock(&v->lock);
        return;
    }
    if (!s.dirty || s.pub_lost || (s.incoming && !s.exited) || !lease)
        return;
    bool lost;
    int rc = write_state(v, c, &s, lease, &lost);
    pthread_mutex_lock(&v->lock);
    p->pub_failing = rc < 0;
    if (rc < 0) {
        pthread_mutex_unlock(&v->lock);
        return;
    }
    if (lost) {
        p->pub_lost = true;
        log_info("vmm", "vm %u: another node publishes its state now", s.id);
    } else {
        snprintf(p->published, sizeof(p->published), "%s", s.exited ? "" : s.value);
        events_publish_vm(s.id, s.exited ? NULL : s.value);
    }
    /* the watch thread may have changed the state while we wrote: only
     * what etcd has now is clean (comparing the snapshot we just wrote
     * would always match, and lost that change until the next one) */
    struct snapshot now;
    take_snapshot(v, p, &now);
    if (lost || s.exited || strcmp(now.value, p->published) == 0)
        p->dirty = false;
    pthread_mutex_unlock(&v->lock);
}

/* With v->lock held: may the VM come back after this crash? */
static bool crash_allowed(struct vmm_table *v, uint32_t id, unsigned *count)
{
    time_t now = time(NULL);
    int slot = -1;
    for (int i = 0; i < VMM_MAX && slot < 0; i++)
        if (v->crashes[i].id == id)
            slot = i;
    for (int i = 0; i < VMM_MAX && slot < 0; i++)
        if (!v->crashes[i].id || now - v->crashes[i].first > CRASH_WINDOW_S)
            slot = i;
    if (slot < 0)
        return false;
    if (v->crashes[slot].id != id || now - v->crashes[slot].first > CRASH_WINDOW_S) {
        v->crashes[slot].id = id;
        v->crashes[slot].count = 0;
        v->crashes[slot].first = now;
    }
    *count = ++v->crashes[slot].count;
    return *count <= CRASHES_MAX;
}

static void restart(struct vmm_table *v, struct etcd_client *c, struct vmm_spec *spec)
{
    uint32_t id = spec->conf.id;
    if (spec->ha) { /* it must claim the owner key first (node/ha.h) */
        log_info("vmm", "vm %u: HA: the HA manager starts it again", id);
        return;
    }
    if (!may_take_over(v, c, id)) {
        log_warn("vmm", "vm %u: not restarted: this node is not its owner (or no quorum)",
                 id);
        return;
    }
    unsigned count = 0;
    pthread_mutex_lock(&v->lock);
    bool ok = crash_allowed(v, id, &count);
    pthread_mutex_unlock(&v->lock);
    if (!ok) {
        log_error("vmm", "vm %u: crashed %u times in %d s; not restarted", id, count,
                  CRASH_WINDOW_S);
        return;
    }
    log_warn("vmm", "vm %u: restarting after a crash (%u of %d in %d s)", id, count,
             CRASHES_MAX, CRASH_WINDOW_S);
    struct err e;
    if (vmm_start(v, spec, &e) < 0)
        log_error("vmm", "vm %u: restart failed: %s", id, e.msg);
}

/* An ended process whose state is settled leaves the table: false when
 * there is none; *restart when the restart policy wants it back (its
 * spec in *again). */
static bool reap_one(struct vmm_table *v, struct vmm_spec *again, bool *restart)
{
    pthread_mutex_lock(&v->lock);
    struct vmm_proc *done = NULL;
    for (unsigned i = 0; i < VMM_MAX && !done; i++) {
        struct vmm_proc *p = v->procs[i];
        if (p && p->exited && !p->dirty) {
            done = p;
            v->procs[i] = NULL;
            pthread_cond_broadcast(&v->changed);
        }
    }
    pthread_mutex_unlock(&v->lock);
    if (!done)
        return false;
    pthread_join(done->watch, NULL);
    vmnet_remove(v->tap_prefix, &done->spec.conf); /* a restart makes them again */
    *restart = done->restart_due;
    if (*restart)
        *again = done->spec;
    free(done);
    return true;
}

/* A new lease (the node registered again after losing its old one): the
 * states written under the old one went with it. */
static void lease_changed(struct vmm_table *v, int64_t lease)
{
    pthread_mutex_lock(&v->lock);
    if (lease != v->lease) {
        v->lease = lease;
        for (unsigned i = 0; i < VMM_MAX; i++)
            if (v->procs[i]) {
                v->procs[i]->published[0] = '\0';
                v->procs[i]->dirty = true;
            }
    }
    pthread_mutex_unlock(&v->lock);
}

void vmm_tick(struct vmm_table *v, struct etcd_client *c, int64_t lease)
{
    lease_changed(v, lease);
    for (unsigned i = 0; i < VMM_MAX; i++) {
        pthread_mutex_lock(&v->lock);
        struct vmm_proc *p = v->procs[i];
        pthread_mutex_unlock(&v->lock);
        if (p) /* only this thread frees procs: p stays valid */
            publish(v, c, p, lease);
    }
    struct vmm_spec again;
    bool due;
    while (reap_one(v, &again, &due))
        if (due)
            restart(v, c, &again);
}

/* When process pid started (epoch seconds), from /proc; now if unknown. */
static time_t process_start(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    /* field 22, counted after the ")" that ends the command name */
    char *p = strrchr(buf, ')');
    unsigned long long ticks = 0;
    for (int field = 2; p && *p && field < 22; p++)
        field += *p == ' ';
    FILE *st = fopen("/proc/stat", "r");
    char line[256];
    long long btime = 0;
    while (st && fgets(line, sizeof(line), st))
        if (sscanf(line, "btime %lld", &btime) == 1)
            break;
    if (st)
        fclose(st);
    if (!p || sscanf(p, "%llu", &ticks) != 1 || !btime)
        return time(NULL);
    return (time_t)(btime + (long long)(ticks / (unsigned long long)sysconf(_SC_CLK_TCK)));
}

/* The record of a process found running; its config from the local etcd
 * member (for a restart after a later crash). */
static struct vmm_proc *adopted_proc(struct vmm_table *v, struct etcd_client *c,
                                     uint32_t id, int pid, int role)
{
    struct vmm_proc *p = calloc(1, sizeof(*p));
    struct err e;
    if (!p)
        return NULL;
    vmconf_get(c, id, ETCD_SERIALIZABLE, &p->spec.conf, &e);
    p->spec.conf.id = id;
    p->pid = pid;
    p->role = role == VMM_INCOMING ? VMM_INCOMING : VMM_RUN;
    p->since = time(NULL);
    p->started = process_start(pid); /* after a migration: its own start */
    snprintf(p->status, sizeof(p->status), "%s",
             p->role == VMM_RUN ? "running" : "incoming");
    snprintf(p->dir, sizeof(p->dir), "%s/%u", v->run_dir, id);
    snprintf(p->sock, sizeof(p->sock), "%s/control.sock", p->dir);
    snprintf(p->console, sizeof(p->console), "%s/console.log", p->dir);
    snprintf(p->log, sizeof(p->log), "%s/vmm.log", p->dir);
    p->dirty = true;
    return p;
}

/* DATA_DIR/run/<id>/pid names a live tern-vmm: follow it again. */
static void adopt_one(struct vmm_table *v, struct etcd_client *c, uint32_t id)
{
    char path[VMM_PATH_MAX + 32], exe[VMM_PATH_MAX];
    snprintf(path, sizeof(path), "%s/%u/pid", v->run_dir, id);
    FILE *f = fopen(path, "r");
    int pid = 0, role = 0;
    bool ok = f && fscanf(f, "%d %d", &pid, &role) == 2 && pid > 0;
    if (f)
        fclose(f);
    snprintf(path, sizeof(path), "/proc/%d/exe", pid);
    ssize_t n = ok ? readlink(path, exe, sizeof(exe) - 1) : -1;
    if (n <= 0)
        return; /* gone, or the pid is someone else's now */
    exe[n] = '\0';
    if (!strstr(exe, "tern-vmm"))
        return;
    struct err e;
    struct vmm_proc *p = adopted_proc(v, c, id, pid, role);
    if (!p)
        return;
    pthread_mutex_lock(&v->lock);
    int slot = -1;
    for (int i = 0; i < VMM_MAX && slot < 0; i++)
        if (!v->procs[i])
            slot = i;
    if (slot >= 0 && vmm_watch_start(v, p, &e) == 0) {
        v->procs[slot] = p;
        p = NULL;
    }
    pthread_mutex_unlock(&v->lock);
    if (!p)
        log_info("vmm", "vm %u: adopted tern-vmm pid %d left by an earlier ternd", id, pid);
    free(p);
}

void vmm_adopt(struct vmm_table *v, struct etcd_client *c)
{
    DIR *d = opendir(v->run_dir);
    struct dirent *ent;
    while (d && (ent = readdir(d))) {
        char *end;
        unsigned long id = strtoul(ent->d_name, &end, 10);
        if (*end || id < TERN_VMID_MIN || id > TERN_VMID_MAX)
            continue;
        adopt_one(v, c, (uint32_t)id);
    }
    if (d)
        closedir(d);
}
