/* Tasks: what ternd does on an operator's behalf that takes a while (start,
 * stop, migrate), each in its own thread with a log that reads like
 * Proxmox's and ends in `TASK OK` or `TASK ERROR: <reason>`.
 *
 * The id says where the task runs: UPID:<node>:<pid>:<seq>:<start>:<type>:<vmid>:
 * (hex fields), so any node can forward a request about it. The log lives
 * on that node (DATA_DIR/tasks/<id>.log); the task's record (status,
 * times) is in etcd under /tern/tasks/<id> for `tern task list` anywhere.
 * The endpoints are in node/api_task.c. */
#ifndef TERN_NODE_TASK_H
#define TERN_NODE_TASK_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "cluster/etcd.h"
#include "cluster/keys.h"
#include "common/err.h"
#include "node/config.h"

#define TASK_ID_MAX 128
#define TASK_MAX 64
#define TASK_PATH_MAX 400

struct node_ctx;
struct task_table;

struct task {
    char id[TASK_ID_MAX];
    char type[16];
    uint32_t vmid;
    time_t start, end;
    char status[400]; /* running, OK, ERROR: reason */
    char log_path[TASK_PATH_MAX];
    FILE *log;
    unsigned lines;
    _Atomic bool cancel;
    /* under the table lock: a cancel is taken only while cancellable and
     * no refusal is set (why not, in the operator's words); the task says
     * whether it stopped because of it (cancelled) */
    bool cancellable, cancelled;
    char cancel_refusal[200];
    bool adopted;      /* from the ternd before this one: its log goes on */
    bool done, synced; /* record written to etcd as it is now */
    json_t *progress;  /* a running migration's progress; under the table lock */
    json_t *figures;   /* a finished migration's figures, kept in the record */
    /* what the task does; returns 0 or -errno with e set */
    int (*run)(struct task *k, struct err *e);
    void *arg;            /* run's, freed with free() at the end */
    struct node_ctx *ctx; /* run's too, this node's (not used here) */
    struct task_table *table;
    pthread_t thread;
};

struct task_table {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    struct task *tasks[TASK_MAX]; /* running and recently ended */
    unsigned seq;
    unsigned keep; /* records of ended tasks kept in etcd */
    bool ended;    /* a task ended: prune on the next tick */
    char dir[TASK_PATH_MAX - TASK_ID_MAX - 8];
    char node[TERN_NAME_MAX + 1];
    char etcd_url[TERND_URL_MAX]; /* each task has its own client */
};

void task_table_init(struct task_table *tt);
/* keep: how many records of this node's ended tasks stay in etcd;
 * etcd_url: where the tasks write them. */
int task_table_setup(struct task_table *tt, const char *data_dir, const char *node,
                     const char *etcd_url, unsigned keep, struct err *e);
/* Waits for running tasks to end (they end with ternd). */
void task_table_release(struct task_table *tt);

/* Starts a task running run(k) in its own thread; *id receives its id.
 * arg (malloc'd) goes with it; ctx is there for run. */
int task_start(struct task_table *tt, struct node_ctx *ctx, const char *type, uint32_t vmid,
               int (*run)(struct task *k, struct err *e), void *arg, char id[TASK_ID_MAX],
               struct err *e);
/* A task left running by the ternd before this one (its record in etcd
 * says "running"): the same id and log, continued with a line saying that
 * ternd restarted; run decides whether it can be followed. */
int task_adopt(struct task_table *tt, struct node_ctx *ctx, const char *id,
               const char *type, uint32_t vmid, time_t start,
               int (*run)(struct task *k, struct err *e), void *arg, struct err *e);
/* One line to the task's log (and ternd's stderr). */
void task_log(struct task *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void task_set_progress(struct task *k, json_t *progress); /* takes it */
void task_set_figures(struct task *k, json_t *figures);   /* takes it */
bool task_cancelled(struct task *k);
/* What task_cancel answers from now on: allowed (why NULL) or refused
 * with why ("the handover is being decided: ..."). Tasks that never call
 * it cannot be cancelled. false (and nothing changes) when a refusal
 * comes too late: a cancel was taken already, and the task must honour it. */
bool task_set_cancellable(struct task *k, const char *why);
/* The task stops because it was asked to: cancel answers "cancelled". */
void task_set_cancelled(struct task *k);

/* The task as JSON (id, node, type, vmid, status, start, end, progress);
 * NULL when this node has no such task in memory. */
json_t *task_json(struct task_table *tt, const char *id);
/* Lines start.. of the log: {"lines","next","running","status"}; -ENOENT. */
int task_read_log(struct task_table *tt, const char *id, unsigned start, json_t **out,
                  struct err *e);
/* Asks the task to stop and waits up to timeout_ms for what it did:
 * 0 cancelled (*status: how it ended); -ENOENT unknown, -EALREADY ended
 * (before or instead of the cancel), -EBUSY refused with the task's
 * reason, -EOPNOTSUPP a task that cannot be cancelled, -ETIMEDOUT still
 * running. */
int task_cancel(struct task_table *tt, const char *id, int timeout_ms, char status[400],
                struct err *e);
/* A task of this node works on VM vmid right now. */
bool task_running_for(struct task_table *tt, uint32_t vmid);
/* Main loop: records not yet in etcd (quorum was lost) are written. */
void task_tick(struct task_table *tt, struct etcd_client *c);

/* The node field of a task id; -EINVAL when id is not a task id. */
int task_id_node(const char *id, char node[TERN_NAME_MAX + 1], struct err *e);

#endif
