#include "node/task.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster/keys.h"
#include "common/log.h"
#include "node/events.h"

#define LOG_LINES_MAX 500

void task_table_init(struct task_table *tt)
{
    memset(tt, 0, sizeof(*tt));
    pthread_mutex_init(&tt->lock, NULL);
    pthread_cond_init(&tt->changed, NULL);
}

int task_table_setup(struct task_table *tt, const char *data_dir, const char *node,
                     const char *etcd_url, unsigned keep, struct err *e)
{
    tt->keep = keep;
    snprintf(tt->node, sizeof(tt->node), "%s", node);
    snprintf(tt->etcd_url, sizeof(tt->etcd_url), "%s", etcd_url);
    if (snprintf(tt->dir, sizeof(tt->dir), "%s/tasks", data_dir) >= (int)sizeof(tt->dir))
        return err_set(e, ENAMETOOLONG, "data dir '%s' is too long", data_dir);
    if (mkdir(tt->dir, 0700) < 0 && errno != EEXIST)
        return err_set(e, errno, "%s: %s", tt->dir, strerror(errno));
    return 0;
}

static void task_free(struct task *k)
{
    if (k->log)
        fclose(k->log);
    json_decref(k->progress);
    json_decref(k->figures);
    free(k->arg);
    free(k);
}

void task_table_release(struct task_table *tt)
{
    for (unsigned i = 0; i < TASK_MAX; i++) {
        struct task *k = tt->tasks[i];
        if (!k)
            continue;
        pthread_join(k->thread, NULL);
        task_free(k);
        tt->tasks[i] = NULL;
    }
}

int task_id_node(const char *id, char node[TERN_NAME_MAX + 1], struct err *e)
{
    const char *p = strncmp(id, "UPID:", 5) == 0 ? id + 5 : NULL;
    size_t len = p ? strcspn(p, ":") : 0;
    if (!p || len == 0 || len > TERN_NAME_MAX || p[len] != ':' || strlen(id) >= TASK_ID_MAX)
        return err_set(e, EINVAL, "'%.80s' is not a task id (UPID:node:...)", id);
    memcpy(node, p, len);
    node[len] = '\0';
    return 0;
}

/* Every line but the last carries its time, as Proxmox's task logs do; the
 * last is the bare "TASK OK" or "TASK ERROR: ..." that scripts look for. */
static void log_line(struct task *k, const char *line, bool stamp)
{
    if (k->log) {
        char when[32] = "";
        time_t now = time(NULL);
        struct tm tm;
        if (stamp && localtime_r(&now, &tm))
            strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S ", &tm);
        fprintf(k->log, "%s%s\n", when, line);
        fflush(k->log);
    }
    struct task_table *tt = k->table;
    pthread_mutex_lock(&tt->lock);
    k->lines++;
    pthread_cond_broadcast(&tt->changed);
    pthread_mutex_unlock(&tt->lock);
    log_info("task", "vm %u %s: %s", k->vmid, k->type, line);
}

void task_log(struct task *k, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    line[strcspn(line, "\n")] = '\0';
    log_line(k, line, true);
}

void task_set_progress(struct task *k, json_t *progress)
{
    struct task_table *tt = k->table;
    pthread_mutex_lock(&tt->lock);
    json_decref(k->progress);
    k->progress = progress;
    pthread_mutex_unlock(&tt->lock);
    events_publish_progress(k->id, task_json(tt, k->id));
}

void task_set_figures(struct task *k, json_t *figures)
{
    struct task_table *tt = k->table;
    pthread_mutex_lock(&tt->lock);
    json_decref(k->figures);
    k->figures = figures;
    pthread_mutex_unlock(&tt->lock);
}

bool task_cancelled(struct task *k)
{
    return atomic_load(&k->cancel);
}

/* With tt->lock held. */
static json_t *record_json(struct task_table *tt, const struct task *k)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:s, s:I}", "id", k->id, "node", tt->node,
                          "type", k->type, "vmid", (json_int_t)k->vmid, "status", k->status,
                          "start", (json_int_t)k->start);
    if (o)
        json_object_set_new(o, "end", k->end ? json_integer(k->end) : json_null());
    if (o && k->figures)
        json_object_set(o, "figures", k->figures);
    return o;
}

/* With tt->lock held. */
static struct task *find(struct task_table *tt, const char *id)
{
    for (unsigned i = 0; i < TASK_MAX; i++)
        if (tt->tasks[i] && strcmp(tt->tasks[i]->id, id) == 0)
            return tt->tasks[i];
    return NULL;
}

static int put_record(struct task_table *tt, struct task *k, struct etcd_client *c)
{
    pthread_mutex_lock(&tt->lock);
    json_t *o = record_json(tt, k);
    bool done = k->done;
    pthread_mutex_unlock(&tt->lock);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    char key[TERN_KEY_MAX + TASK_ID_MAX];
    snprintf(key, sizeof(key), TERN_PREFIX_TASKS "%s", k->id);
    struct err e;
    int rc = text ? etcd_put(c, key, text, 0, &e) : -ENOMEM;
    free(text);
    if (!rc && done) {
        pthread_mutex_lock(&tt->lock);
        k->synced = true;
        pthread_mutex_unlock(&tt->lock);
    }
    return rc;
}

static void finish(struct task *k, int rc, const struct err *e)
{
    struct task_table *tt = k->table;
    char status[sizeof(k->status)];
    if (!rc)
        snprintf(status, sizeof(status), "OK");
    else
        snprintf(status, sizeof(status), "ERROR: %.380s", e->msg);
    char line[sizeof(status) + 8];
    snprintf(line, sizeof(line), "TASK %s", status);
    log_line(k, line, false);
    pthread_mutex_lock(&tt->lock);
    snprintf(k->status, sizeof(k->status), "%s", status);
    k->cancelled = k->cancelled && rc;
    k->end = time(NULL);
    k->done = true;
    tt->ended = true;
    json_decref(k->progress);
    k->progress = NULL;
    pthread_cond_broadcast(&tt->changed);
    pthread_mutex_unlock(&tt->lock);
}

static void *task_main(void *arg)
{
    struct task *k = arg;
    struct etcd_client c;
    struct err e = {""};
    bool have_client = etcd_client_init(&c, k->table->etcd_url, &e) == 0;
    if (have_client)
        put_record(k->table, k, &c);
    events_publish_task("task-started", task_json(k->table, k->id));
    if (k->adopted)
        task_log(k, "ternd restarted: the new ternd (pid %d) takes the task over",
                 (int)getpid());
    else
        task_log(k, "%s of vm %u started on node '%s'", k->type, k->vmid, k->table->node);
    int rc = k->run(k, &e);
    finish(k, rc, &e);
    events_publish_task("task-ended", task_json(k->table, k->id));
    if (have_client) {
        put_record(k->table, k, &c); /* else (or on failure) task_tick does */
        etcd_client_release(&c);
    }
    return NULL;
}

/* With tt->lock held: a free slot, dropping the oldest ended task that
 * etcd has if needed. */
static int free_slot(struct task_table *tt)
{
    int slot = -1, oldest = -1;
    for (int i = 0; i < TASK_MAX && slot < 0; i++) {
        struct task *k = tt->tasks[i];
        if (!k)
            slot = i;
        else if (k->done && k->synced && (oldest < 0 || k->end < tt->tasks[oldest]->end))
            oldest = i;
    }
    if (slot < 0 && oldest >= 0) {
        pthread_join(tt->tasks[oldest]->thread, NULL);
        task_free(tt->tasks[oldest]);
        tt->tasks[oldest] = NULL;
        slot = oldest;
    }
    return slot;
}

static struct task *task_new(struct task_table *tt, struct node_ctx *ctx, const char *type,
                             uint32_t vmid, unsigned seq, const char *adopt_id)
{
    struct task *k = calloc(1, sizeof(*k));
    if (!k)
        return NULL;
    k->table = tt;
    k->ctx = ctx;
    k->vmid = vmid;
    k->start = time(NULL);
    snprintf(k->type, sizeof(k->type), "%s", type);
    snprintf(k->status, sizeof(k->status), "running");
    if (adopt_id)
        snprintf(k->id, sizeof(k->id), "%s", adopt_id);
    else
        snprintf(k->id, sizeof(k->id), "UPID:%s:%08X:%08X:%08llX:%s:%u:", tt->node,
                 (unsigned)getpid(), seq, (unsigned long long)k->start, type, vmid);
    snprintf(k->log_path, sizeof(k->log_path), "%s/%s.log", tt->dir, k->id);
    k->log = fopen(k->log_path, adopt_id ? "a+" : "w");
    if (!k->log) {
        free(k);
        return NULL;
    }
    k->adopted = adopt_id != NULL;
    /* an adopted log goes on after the lines its first ternd wrote */
    for (int ch; adopt_id && (ch = fgetc(k->log)) != EOF;)
        k->lines += ch == '\n';
    return k;
}

static int start_new(struct task_table *tt, struct node_ctx *ctx, const char *type,
                     uint32_t vmid, const char *adopt_id,
                     int (*run)(struct task *k, struct err *e), void *arg,
                     char id[TASK_ID_MAX], struct err *e)
{
    pthread_mutex_lock(&tt->lock);
    int slot = free_slot(tt);
    if (adopt_id && find(tt, adopt_id))
        slot = -2;
    struct task *k = slot >= 0 ? task_new(tt, ctx, type, vmid, ++tt->seq, adopt_id) : NULL;
    int rc = 0;
    if (slot == -2)
        rc = err_set(e, EEXIST, "task '%s' runs already", adopt_id);
    else if (slot < 0)
        rc = err_set(e, EBUSY, "%d tasks are kept already; try again later", TASK_MAX);
    else if (!k)
        rc = err_set(e, EIO, "task log in %s: cannot create", tt->dir);
    if (!rc) {
        k->run = run;
        k->arg = arg;
        rc = pthread_create(&k->thread, NULL, task_main, k);
        if (rc) {
            k->arg = NULL;
            task_free(k);
            rc = err_set(e, rc, "task thread: %s", strerror(rc));
        }
    }
    if (!rc) {
        tt->tasks[slot] = k;
        snprintf(id, TASK_ID_MAX, "%s", k->id);
    }
    pthread_mutex_unlock(&tt->lock);
    return rc;
}

int task_start(struct task_table *tt, struct node_ctx *ctx, const char *type, uint32_t vmid,
               int (*run)(struct task *k, struct err *e), void *arg, char id[TASK_ID_MAX],
               struct err *e)
{
    return start_new(tt, ctx, type, vmid, NULL, run, arg, id, e);
}

int task_adopt(struct task_table *tt, struct node_ctx *ctx, const char *id,
               const char *type, uint32_t vmid, time_t start,
               int (*run)(struct task *k, struct err *e), void *arg, struct err *e)
{
    char node[TERN_NAME_MAX + 1], got[TASK_ID_MAX];
    int rc = task_id_node(id, node, e);
    if (!rc && (strcmp(node, tt->node) != 0 || strchr(id, '/')))
        rc = err_set(e, EINVAL, "task '%.100s' is not one of node '%s'", id, tt->node);
    if (!rc)
        rc = start_new(tt, ctx, type, vmid, id, run, arg, got, e);
    if (!rc) {
        pthread_mutex_lock(&tt->lock);
        struct task *k = find(tt, id);
        if (k && start)
            k->start = start;
        pthread_mutex_unlock(&tt->lock);
    }
    return rc;
}

json_t *task_json(struct task_table *tt, const char *id)
{
    pthread_mutex_lock(&tt->lock);
    struct task *k = find(tt, id);
    json_t *o = k ? record_json(tt, k) : NULL;
    if (o && k->progress) {
        json_object_set(o, "progress", k->progress);
        json_object_set(o, "eta_s", json_object_get(k->progress, "eta_s") ?: json_null());
    }
    pthread_mutex_unlock(&tt->lock);
    return o;
}

static json_t *read_lines(const char *path, unsigned start, unsigned *next)
{
    json_t *lines = json_array();
    FILE *f = fopen(path, "r");
    char line[1100];
    unsigned n = 0;
    while (f && fgets(line, sizeof(line), f)) {
        size_t len = strlen(line);
        if (len == 0 || line[len - 1] != '\n')
            break; /* a line still being written */
        line[len - 1] = '\0';
        if (n >= start && n < start + LOG_LINES_MAX)
            json_array_append_new(lines, json_string(line));
        n++;
    }
    if (f)
        fclose(f);
    *next = start + (unsigned)json_array_size(lines);
    return lines;
}

int task_read_log(struct task_table *tt, const char *id, unsigned start, json_t **out,
                  struct err *e)
{
    pthread_mutex_lock(&tt->lock);
    struct task *k = find(tt, id);
    bool running = k && !k->done;
    char status[sizeof(k->status)] = "";
    if (k)
        snprintf(status, sizeof(status), "%s", k->status);
    pthread_mutex_unlock(&tt->lock);
    char path[TASK_PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s.log", tt->dir, id);
    if (strchr(id, '/') || access(path, R_OK) < 0)
        return err_set(e, ENOENT, "no task '%.100s' on this node", id);
    unsigned next;
    json_t *lines = read_lines(path, start, &next);
    if (!k) { /* from before a restart of ternd: the last line says how it ended */
        size_t n = json_array_size(lines);
        const char *last = n ? json_string_value(json_array_get(lines, n - 1)) : "";
        snprintf(status, sizeof(status), "%s",
                 strncmp(last, "TASK ", 5) == 0 ? last + 5
                                                : "ERROR: ternd ended while the task ran");
    }
    *out = json_pack("{s:o, s:I, s:b, s:s}", "lines", lines, "next", (json_int_t)next,
                     "running", running, "status", status);
    return *out ? 0 : err_set(e, ENOMEM, "out of memory");
}

bool task_set_cancellable(struct task *k, const char *why)
{
    struct task_table *tt = k->table;
    pthread_mutex_lock(&tt->lock);
    bool taken = why && atomic_load(&k->cancel);
    k->cancellable = true;
    if (!taken)
        snprintf(k->cancel_refusal, sizeof(k->cancel_refusal), "%s", why ? why : "");
    pthread_cond_broadcast(&tt->changed);
    pthread_mutex_unlock(&tt->lock);
    return !taken;
}

void task_set_cancelled(struct task *k)
{
    struct task_table *tt = k->table;
    pthread_mutex_lock(&tt->lock);
    k->cancelled = true;
    pthread_mutex_unlock(&tt->lock);
}

/* With tt->lock held: whether k takes a cancel now (-errno and why not). */
static int cancel_allowed(struct task_table *tt, struct task *k, const char *id,
                          struct err *e)
{
    (void)tt;
    if (!k)
        return err_set(e, ENOENT, "no running task '%.100s' on this node", id);
    if (k->done)
        return err_set(e, EALREADY, "task '%.100s' has ended: %s", id, k->status);
    if (!k->cancellable)
        return err_set(e, EOPNOTSUPP, "a %s task cannot be cancelled", k->type);
    if (k->cancel_refusal[0])
        return err_set(e, EBUSY, "cancel refused: %s", k->cancel_refusal);
    return 0;
}

int task_cancel(struct task_table *tt, const char *id, int timeout_ms, char status[400],
                struct err *e)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    pthread_mutex_lock(&tt->lock);
    struct task *k = find(tt, id);
    int rc = cancel_allowed(tt, k, id, e);
    if (!rc)
        atomic_store(&k->cancel, true);
    pthread_cond_broadcast(&tt->changed);
    /* the answer is what the task did: it stopped, it ended anyway, or it
     * reached a step that a cancel cannot undo */
    while (!rc && !k->done && !k->cancel_refusal[0])
        if (pthread_cond_timedwait(&tt->changed, &tt->lock, &until) != 0)
            rc = err_set(e, ETIMEDOUT,
                         "cancel requested; task '%.100s' has not stopped within %d s "
                         "(tern task log %.100s)",
                         id, timeout_ms / 1000, id);
    if (!rc && k->done && !k->cancelled)
        rc = err_set(e, EALREADY, "not cancelled: task '%.100s' ended first: %s", id,
                     k->status);
    else if (!rc && !k->done)
        rc = err_set(e, EBUSY, "cancel refused: %s", k->cancel_refusal);
    if (!rc)
        snprintf(status, 400, "%s", k->status);
    pthread_mutex_unlock(&tt->lock);
    return rc;
}

bool task_running_for(struct task_table *tt, uint32_t vmid)
{
    pthread_mutex_lock(&tt->lock);
    bool running = false;
    for (unsigned i = 0; i < TASK_MAX && !running; i++)
        running = tt->tasks[i] && !tt->tasks[i]->done && tt->tasks[i]->vmid == vmid;
    pthread_mutex_unlock(&tt->lock);
    return running;
}

/* Start time, then sequence number, from the id in a record's key
 * (".../UPID:node:PID:SEQ:START:..."): newest last. */
static unsigned long long key_order(const struct etcd_kv *kv)
{
    const char *p = strstr(kv->key, "UPID:");
    unsigned seq = 0;
    unsigned long long start = 0;
    for (int colons = 0; p && *p && colons < 3; p++)
        colons += *p == ':';
    if (p && sscanf(p, "%x:%llx", &seq, &start) == 2)
        return start << 24 | (seq & 0xffffff);
    return 0;
}

static int by_age(const void *a, const void *b)
{
    unsigned long long x = key_order(a), y = key_order(b);
    return x < y ? -1 : x > y;
}

/* A record whose status says the task still runs (a record that is not
 * JSON does not). */
static bool record_running(const struct etcd_kv *kv)
{
    json_t *o = json_loads(kv->value ? kv->value : "", 0, NULL);
    const char *status = json_string_value(json_object_get(o, "status"));
    bool running = status && strcmp(status, "running") == 0;
    json_decref(o);
    return running;
}

/* The records of this node's ended tasks beyond the newest tt->keep go
 * (their logs stay in DATA_DIR/tasks/). */
static void prune_records(struct task_table *tt, struct etcd_client *c)
{
    char prefix[TERN_KEY_MAX + TERN_NAME_MAX];
    snprintf(prefix, sizeof(prefix), TERN_PREFIX_TASKS "UPID:%s:", tt->node);
    struct etcd_kvs kvs;
    struct err e;
    etcd_kvs_init(&kvs);
    if (etcd_get_prefix(c, prefix, 0, &kvs, &e) == 0 && kvs.count > tt->keep) {
        qsort(kvs.items, kvs.count, sizeof(*kvs.items), by_age);
        for (size_t i = 0; i + tt->keep < kvs.count; i++)
            if (!record_running(&kvs.items[i]) &&
                etcd_delete(c, kvs.items[i].key, NULL, &e) < 0)
                break;
    }
    etcd_kvs_release(&kvs);
}

void task_tick(struct task_table *tt, struct etcd_client *c)
{
    for (unsigned i = 0; i < TASK_MAX; i++) {
        pthread_mutex_lock(&tt->lock);
        struct task *k = tt->tasks[i];
        bool due = k && k->done && !k->synced;
        pthread_mutex_unlock(&tt->lock);
        if (due && put_record(tt, k, c) < 0)
            return; /* no quorum: the next tick tries again */
    }
    pthread_mutex_lock(&tt->lock);
    bool prune = tt->ended;
    tt->ended = false;
    pthread_mutex_unlock(&tt->lock);
    if (prune)
        prune_records(tt, c);
}
