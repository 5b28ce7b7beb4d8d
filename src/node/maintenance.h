/* Maintenance mode of a node (docs/api.md, "Maintenance"): while the node's
 * record /tern/maintenance/<name> exists (cluster/ha.h) it takes no new
 * VMs, no migrations and no HA recoveries; enabling it starts one task on
 * the node that live-migrates every VM it owns away, MAINT_PARALLEL at a
 * time, each to the "auto" target; disabling it with return moves the VMs
 * that task moved back. The record outlives ternd: a restarted ternd in
 * maintenance carries on emptying itself. */
#ifndef TERN_NODE_MAINTENANCE_H
#define TERN_NODE_MAINTENANCE_H

#include <stdbool.h>

#include "cluster/etcd.h"
#include "node/task.h"

#define MAINT_PARALLEL 2

struct node_ctx;

/* Starts the task that empties this node (resumed: after a ternd restart,
 * said so in its log). */
int maint_evacuate_start(struct node_ctx *x, bool resumed, char id[TASK_ID_MAX],
                         struct err *e);
/* Once after start-up: in maintenance with VMs left, empty it again. */
void maint_resume(struct node_ctx *x, struct etcd_client *c);

#endif
