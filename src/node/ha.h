/* The HA manager of a node (docs/design.md, invariant 2; docs/ternd.md,
 * "HA"). One thread per ternd, with its own etcd client:
 *
 * - Self-fence. Every HA VM's tern-vmm on this node runs under a deadline
 *   (tern-vmm --fence-ms, command "fence") measured from the last renewal
 *   of the node's lease: sent + ttl - slack. The thread moves it on after
 *   each renewal. A node that cannot renew (cut off, ternd stopped or dead)
 *   thus loses its HA VMs slack ms before its lease can expire; tern-vmm
 *   ends itself, and this thread kills them too once the budget is gone.
 * - Recovery. A VM whose owner node has been offline (no heartbeat key)
 *   for margin ms (> slack), with its HA state "started" on that node, is
 *   taken over by the node the placement names (online, in the VM's group,
 *   not in maintenance, fewest HA VMs) with cluster/ha.h's ha_take and
 *   started there; a storm guard (a majority of nodes online) and a rate
 *   limit come first. A node that finds its own HA VM fenced or gone starts
 *   it again the same way (ha_take to itself).
 * - Every decision is a task with a log (types "harecover", "hafence",
 *   "hahold") and the VM's HA state says the last one. */
#ifndef TERN_NODE_HA_H
#define TERN_NODE_HA_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cluster/etcd.h"
#include "cluster/ha.h"
#include "cluster/keys.h"
#include "node/vmm.h"

struct node_ctx;

#define HA_NODES_MAX 32
#define HA_VMS_MAX VMM_MAX
#define HA_RATE_MAX 6 /* recoveries this node starts per minute */
#define HA_RATE_WINDOW_S 60

struct ha_manager {
    struct node_ctx *ctx;
    struct etcd_client client; /* the thread's own */
    pthread_t thread;
    bool started;
    _Atomic bool stop;
    int ttl_ms;                  /* the node lease's */
    int slack_ms;                /* the fence comes this long before the lease can expire */
    int margin_ms;               /* a node must be seen offline this long before recovery */
    _Atomic uint64_t renewed_ns; /* the last renewal seen (node_lease_renewed) */
    pthread_mutex_t lock;        /* guards armed[] (read by ternd_release) */
    uint32_t armed[HA_VMS_MAX];  /* VMs whose fence this node moved on last */
    unsigned narmed;
    int64_t pet_lease; /* the lease they were armed under */
    /* nodes seen offline: since when (CLOCK_MONOTONIC ns) */
    struct {
        char name[TERN_NAME_MAX + 1];
        uint64_t since_ns;
    } offline[HA_NODES_MAX];
    unsigned noffline;
    int wd_fd, wd_timeout_ms;   /* ha_watchdog: -1 none */
    time_t recent[HA_RATE_MAX]; /* starts of the last recoveries */
    char last_hold[200];        /* the last "hahold" reason, logged once */
    struct {
        uint32_t id;
        unsigned starts;  /* local starts again, for max_restart */
        unsigned missing; /* decision passes in a row it was found gone */
    } local[HA_VMS_MAX];
};

void ha_manager_init(struct ha_manager *h);
/* Starts the thread; ctx->node registered, its VMs adopted. */
int ha_manager_start(struct ha_manager *h, struct node_ctx *ctx, struct err *e);
/* Stops the thread. With HA VMs armed here, the node's lease is left to
 * expire (node_keep_lease) rather than revoked: revoking it would let
 * another node recover them before their fence ends them. */
void ha_manager_release(struct ha_manager *h);

/* The fence budget in ms for a VM started now (vmm_table's fence_ms hook;
 * ctx is the manager): <= 0 when the lease is not known to be renewed, or
 * is not lease (0: any). */
int ha_fence_budget(void *ctx, int64_t lease);

/* ha_watchdog.c: the opt-in host watchdog (path "" none). */
int ha_watchdog_open(struct ha_manager *h, const char *path, struct err *e);
void ha_watchdog_pet(struct ha_manager *h, int budget_ms, bool armed);
void ha_watchdog_close(struct ha_manager *h);

/* ha_decide.c: one decision pass (about once a second). */
void ha_decide(struct ha_manager *h);
/* ha_task.c: the tasks of the decisions. */
struct ha_recovery {
    struct ha_manager *h;
    struct ha_conf conf;
    char from[TERN_NAME_MAX + 1]; /* the owner now */
    int64_t rev;                  /* of the owner key when decided */
    uint64_t offline_ms;          /* how long `from` has been seen offline */
    unsigned relocations;
    char reason[400]; /* why this node acts, for the log */
};
int ha_task_recover(struct ha_manager *h, const struct ha_recovery *r, struct err *e);
/* A one-shot task of type with lines (joined by '\n') and an outcome
 * ("" for OK). */
void ha_task_note(struct ha_manager *h, const char *type, uint32_t vmid, const char *lines,
                  const char *error);

#endif
