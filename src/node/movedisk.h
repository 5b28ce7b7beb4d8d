/* `tern vm move-disk`: a VM's disk to another storage of its node
 * (movedisk.c; the endpoint is api_movedisk.c, docs/api.md). */
#ifndef TERN_NODE_MOVEDISK_H
#define TERN_NODE_MOVEDISK_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "node/task.h"

struct node_ctx;

/* Starts the task on this node (the VM's owner); *id its id. */
int movedisk_start(struct node_ctx *x, uint32_t vmid, unsigned disk, const char *storage,
                   bool delete_source, char id[TASK_ID_MAX], struct err *e);

#endif
