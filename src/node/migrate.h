/* `tern vm migrate` inside ternd: the pre-checks and the plan
 * (migrate_check.c), the task on the source node (migrate_task.c), the
 * destination's side (migrate_target.c) and the resolution of a handover
 * whose answer was lost (migrate_target.c too). docs/api.md describes the
 * request, docs/cluster.md the handover. */
#ifndef TERN_NODE_MIGRATE_H
#define TERN_NODE_MIGRATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "cluster/etcd.h"
#include "cluster/keys.h"
#include "node/vmm.h"

struct ternd;

#define MIG_RESERVE_MIB 256          /* free memory a target keeps beyond the VM */
#define MIG_ADDR_MAX 64

struct mig_plan {
    uint32_t vmid;
    char source[TERN_NAME_MAX + 1], target[TERN_NAME_MAX + 1];
    bool auto_target;
    bool online;                     /* --online given */
    bool running;                    /* the VM runs now: a live migration */
    bool dry_run;
    uint64_t bwlimit_mib;            /* 0 = unlimited */
    uint32_t downtime_ms;
    char type[16];                   /* secure, insecure */
    char network[64];                /* CIDR or "" */
    char address[MIG_ADDR_MAX];      /* the target's address for the stream */
    struct vmm_spec spec;
    json_t *checks;                  /* [{"check","ok","detail"}] */
};

void mig_plan_init(struct mig_plan *p);
void mig_plan_release(struct mig_plan *p);
/* Reads the request body into p (-EINVAL naming the field). */
int mig_plan_parse(struct mig_plan *p, uint32_t vmid, const char *source, json_t *body,
                   struct err *e);
/* Runs every pre-check in order; the first failure is returned (-errno
 * and its one line: -ENOLINK not quorate, -EINVAL bad option, others
 * -EPERM, -EBUSY...); each check also lands in p->checks. */
int mig_plan_check(struct mig_plan *p, struct ternd *t, struct etcd_client *c,
                   struct err *e);
/* "live migration of vm 100 from n1 to n2 over 127.0.1.12 (secure) ..." */
void mig_plan_describe(const struct mig_plan *p, char *out, size_t size);

/* Starts the migration task for a checked plan (taken over: p is left
 * empty); *id receives the task id. */
int mig_task_start(struct ternd *t, struct mig_plan *p, char id[128], struct err *e);

/* Target side: prepares a destination tern-vmm for the request of a
 * source node ({"source","task","owner_revision","address","cert"});
 * answers {"uri","cert"}. */
int mig_target_prepare(struct ternd *t, struct etcd_client *c, uint32_t vmid,
                       json_t *req, json_t **answer, struct err *e);
/* Target side: the source gave up before its tern-vmm connected. */
int mig_target_abandon(struct ternd *t, uint32_t vmid, struct err *e);

/* A handover whose answer did not arrive: settles it from etcd in its own
 * thread, if the VM's tern-vmm waits for a decision (the destination asked
 * "commit-unknown", a restarted ternd found one waiting, or the periodic
 * sweep did); at most one such thread per VM. */
void mig_resolve_start(struct ternd *t, uint32_t vmid);

#endif
