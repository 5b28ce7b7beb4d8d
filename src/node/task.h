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
    bool done, synced; /* record written to etcd as it is now */
    json_t *progress;  /* a migration's figures; under the table lock */
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
/* One line to the task's log (and ternd's stderr). */
void task_log(struct task *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void task_set_progress(struct task *k, json_t *progress); /* takes it */
bool task_cancelled(struct task *k);

/* The task as JSON (id, node, type, vmid, status, start, end, progress);
 * NULL when this node has no such task in memory. */
json_t *task_json(struct task_table *tt, const char *id);
/* Lines start.. of the log: {"lines","next","running","status"}; -ENOENT. */
int task_read_log(struct task_table *tt, const char *id, unsigned start, json_t **out,
                  struct err *e);
/* -ENOENT unknown, -EALREADY ended. */
int task_cancel(struct task_table *tt, const char *id, struct err *e);
/* A task of this node works on VM vmid right now. */
bool task_running_for(struct task_table *tt, uint32_t vmid);
/* Main loop: records not yet in etcd (quorum was lost) are written. */
void task_tick(struct task_table *tt, struct etcd_client *c);

/* The node field of a task id; -EINVAL when id is not a task id. */
int task_id_node(const char *id, char node[TERN_NAME_MAX + 1], struct err *e);

#endif
