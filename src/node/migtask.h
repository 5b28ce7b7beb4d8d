/* `tern vm migrate` inside ternd, across the cluster: the pre-checks and
 * the plan (migtask_check.c), the task on the source node
 * (migtask_source.c), the destination's side (migtask_target.c) and the
 * settling of a handover whose answer was lost (migtask_resolve.c). The
 * endpoints are in api_migrate.c; docs/api.md describes the request,
 * docs/cluster.md the handover. The wire protocol between the two
 * tern-vmm is src/migrate's (mig_*). */
#ifndef TERN_NODE_MIGTASK_H
#define TERN_NODE_MIGTASK_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "cluster/etcd.h"
#include "cluster/keys.h"
#include "node/task.h"
#include "node/vmm.h"

struct node_ctx;

#define MIGTASK_RESERVE_MIB 256 /* free memory a target keeps beyond the VM */
#define MIGTASK_ADDR_MAX 64

struct migtask_plan {
    uint32_t vmid;
    char source[TERN_NAME_MAX + 1], target[TERN_NAME_MAX + 1];
    bool auto_target;
    bool online;  /* --online given */
    bool running; /* the VM runs now: a live migration */
    bool dry_run;
    bool with_local_disks; /* copy disks on non-shared storage (migtask_disks.c) */
    bool keep_source;      /* keep the source's volumes after the commit */
    uint64_t disk_bytes[VMCONF_DISKS_MAX]; /* allocated bytes of each local disk */
    uint64_t bwlimit_mib;                  /* 0 = unlimited */
    uint32_t downtime_ms;
    char type[16];                  /* secure, insecure */
    char network[64];               /* CIDR or "" */
    char address[MIGTASK_ADDR_MAX]; /* the target's address for the stream */
    struct vmm_spec spec;
    json_t *checks;   /* [{"check","ok","detail"}] */
    int failed;       /* the first failed check's -errno ... */
    struct err first; /* ... and its line, the answer: later steps reuse e */
    json_t *maint;    /* during the checks: nodes in maintenance (cluster/ha.h) */
};

/* Local disks (migtask_disks.c): the bytes of path's allocated extents
 * (holes are not copied), and the pre-check of the disks. */
int migtask_disk_allocated(const char *path, uint64_t *bytes, struct err *e);
int migtask_disks_check(struct migtask_plan *p, char *detail, size_t size, struct err *e);
/* How many disks of the plan are local (copied). */
unsigned migtask_disks_local(const struct migtask_plan *p);

/* The task log of the disks: a line per disk and second while it copies,
 * one when it is synchronous; the summary beside the RAM figures. */
struct migtask_disk_log {
    uint64_t last_ns[VMCONF_DISKS_MAX];
    bool synced[VMCONF_DISKS_MAX];
};
void migtask_disks_log(struct task *k, struct migtask_disk_log *l, json_t *ev);
void migtask_disks_summary(struct task *k, json_t *ev, json_t *figures);
/* After a completed migration: the source's volumes go (the target has
 * them) unless keep_source. */
void migtask_disks_done(struct task *k, const struct migtask_plan *p);

void migtask_plan_init(struct migtask_plan *p);
void migtask_plan_release(struct migtask_plan *p);
/* Reads the request body into p (-EINVAL naming the field). */
int migtask_plan_parse(struct migtask_plan *p, uint32_t vmid, const char *source,
                       json_t *body, struct err *e);
/* Runs every pre-check in order, also those after a failed one (unless
 * quorum, the VM's spec or the target node itself is missing: then nothing
 * more can be said); the first failure is returned (-errno and its one
 * line: -ENOLINK not quorate, -EINVAL bad option, others -EPERM,
 * -EBUSY...); each check's outcome lands in p->checks. */
int migtask_plan_check(struct migtask_plan *p, struct node_ctx *x, struct etcd_client *c,
                       struct err *e);
/* migtask_forecast.c. A running VM's migration to p->target forecast
 * (its tern-vmm measures the dirty rate): *out {total_ms, downtime_ms,
 * dirty_rate_mib_s, link_mib_s, passes, basis, ...}; without a measured
 * link, MIGTASK_FORECAST_LINK_MIB (1 Gbit/s). */
#define MIGTASK_FORECAST_LINK_MIB 119.2
int migtask_forecast(struct node_ctx *x, struct etcd_client *c,
                     const struct migtask_plan *p, json_t **out, struct err *e);
/* "live migration of vm 100 from n1 to n2 over 127.0.1.12 (secure) ..." */
void migtask_plan_describe(const struct migtask_plan *p, char *out, size_t size);

/* Starts the migration task for a checked plan (taken over: p is left
 * empty); *id receives the task id. */
int migtask_start(struct node_ctx *x, struct migtask_plan *p, char id[TASK_ID_MAX],
                  struct err *e);

/* Target side: prepares a destination tern-vmm for the request of a
 * source node ({"source","task","owner_revision","address","cert"});
 * answers {"uri","cert"}. */
int migtask_target_prepare(struct node_ctx *x, struct etcd_client *c, uint32_t vmid,
                           json_t *req, json_t **answer, struct err *e);
/* Target side: the source gave up before its tern-vmm connected. */
/* last_exit (may be NULL) gets how the VM's last tern-vmm here ended when
 * none runs any more (-ENOENT), "" when not known. */
int migtask_target_abandon(struct node_ctx *x, uint32_t vmid, char last_exit[256],
                           struct err *e);

/* migtask_net.c. Target side (GET /vms/ID/incoming): the destination
 * tern-vmm's virtio-net devices, {"nics": [...]} as its status shows them. */
int migtask_target_nics(struct node_ctx *x, uint32_t vmid, json_t **answer, struct err *e);
/* Source side, once the destination runs: waits up to 1 s for the guest's
 * first frame on each NIC, then logs what the destination's NICs did. */
void migtask_log_network(struct task *k, struct node_ctx *x, struct etcd_client *c,
                         const char *target, uint32_t vmid);

/* A handover whose answer did not arrive: settles it from etcd in its own
 * thread, if the VM's tern-vmm waits for a decision (the destination asked
 * "commit-unknown", a restarted ternd found one waiting, or the periodic
 * sweep did); at most one such thread per VM. */
void migtask_resolve_start(struct node_ctx *x, uint32_t vmid);

/* Once at start, after the tern-vmm processes were adopted: the tasks of
 * this node that etcd still shows running (their ternd died) are taken
 * over: a migration still under way is followed to its end, every other
 * task ends in "TASK ERROR: interrupted (ternd restarted)" saying where
 * its VM is. -errno when etcd did not answer (try again later). */
int migtask_adopt_tasks(struct node_ctx *x, struct etcd_client *c);

#endif
