/* Inside the migration task on the source node: the state of one run,
 * shared by the task (migtask_source.c: preparing the destination,
 * starting the source), the following of the source tern-vmm to the end
 * of its migration (migtask_follow.c) and the task a restarted ternd takes
 * over (migtask_adopt.c). Not for other modules: node/migtask.h is. */
#ifndef TERN_NODE_MIGTASK_RUN_H
#define TERN_NODE_MIGTASK_RUN_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cluster/etcd.h"
#include "node/migtask.h"
#include "node/peer.h"
#include "node/progress.h"
#include "node/task.h"

#define MIGTASK_EVENTS_MAX 256
/* tern-vmm abandons a migration (before its handover) when this task has
 * not asked it anything for this long: its ternd is gone (docs/control.md,
 * migrate "watchdog_ms"). The task asks every second; its longest step
 * without asking is an etcd call (4 s) after a peer probe (3 s). */
#define MIGTASK_WATCHDOG_MS 10000

struct migtask_run {
    struct migtask_plan plan;
    int64_t rev; /* of the owner key when it began */
    char uri[160];
    char nbd[160];      /* local disks: the destination's NBD listener */
    bool replica_delta; /* the target's volumes start from its replicas (nbd_delta) */
    struct migtask_disk_log disk_log;
    pthread_mutex_t lock; /* guards the event queue */
    pthread_cond_t cond;
    json_t *events[MIGTASK_EVENTS_MAX];
    unsigned nevents;
    unsigned last_pass;
    uint64_t last_line_ns;
    struct progress_meter meter;
    bool adopted; /* followed by a restarted ternd: the commit asks etcd first */
    bool committed;
    uint64_t pending_ns; /* commit-pending came: the VM is paused since about then */
    bool cancel_sent;
    bool target_gone; /* stopped answering: nothing to tell it any more */
    char gone_why[400];
    bool source_abandoned; /* its watchdog gave up: nobody asked it for too long */
    struct peer target;    /* for the probes: set up once (its address is in etcd) */
    bool have_target;
    uint64_t checked_ns; /* last look at the target's ternd */
    unsigned misses;
    uint64_t pinged_ns;  /* last query_migrate: the watchdog's sign of life */
    uint64_t gate_since; /* the pause gate is held shut since (no quorum) */
    uint64_t gate_said;  /* its last log line */
    uint64_t t0;
};

struct migtask_run *migtask_run_new(void);
/* What the run holds besides itself (the events, the target's peer). */
void migtask_run_release(struct migtask_run *m);
/* The listener for the source tern-vmm's events (vmm_set_listener). */
void migtask_on_event(void *ctx, json_t *ev);
/* Follows the source tern-vmm's migration to its end (the commit in etcd
 * included), then cleans up: the destination is stopped when the VM did
 * not move, the VM's status is set back. 0 when it moved. */
int migtask_follow_to_end(struct task *k, struct migtask_run *m, struct etcd_client *c,
                          struct err *e);
/* The VM stayed here: its status goes from "migrating" back to what its
 * tern-vmm says (running, or paused for a VM that was paused). */
void migtask_status_back(struct task *k);
/* Stops the destination; when it had ended already, *why (may be NULL)
 * says how: "target tern-vmm on 'n3' exited (killed by signal 9 (Killed))". */
void migtask_abandon_target(struct task *k, struct migtask_run *m, struct etcd_client *c,
                            struct err *why);
/* The handover in etcd; loops (the VM paused on both sides, a line every
 * few seconds) while the answer is unknown. */
int migtask_commit_handover(struct task *k, struct migtask_run *m, struct etcd_client *c,
                            bool *committed, struct err *e);

#endif
