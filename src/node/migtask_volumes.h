/* Target volumes of a migration with local disks (migtask_volumes.c). */
#ifndef TERN_NODE_MIGTASK_VOLUMES_H
#define TERN_NODE_MIGTASK_VOLUMES_H

#include <jansson.h>

#include "node/migtask_files.h"
#include "node/vmm.h"

struct node_ctx;

struct migtask_volumes {
    unsigned n; /* made by this migration */
    char path[VMCONF_DISKS_MAX][VMCONF_PATH_MAX];
};

void migtask_volumes_init(struct migtask_volumes *v);
/* Every disk of spec that is not shared: its directory made, the free
 * space checked against bytes[i] (what the source will copy; the disk's
 * size when absent), a fresh sparse file of the disk's size. On failure
 * none is left. */
int migtask_volumes_create(const struct vmm_spec *spec, json_t *bytes,
                           struct migtask_volumes *v, struct err *e);
void migtask_volumes_remove(struct migtask_volumes *v, const char *why);
/* The destination tern-vmm ended before its VM ran: fences the handover
 * (a late commit can no longer apply) and removes the volumes if the VM
 * stays with its source; keeps them if the commit had won. */
void migtask_volumes_settle(struct node_ctx *x, uint32_t vmid,
                            const struct migtask_handover *h, struct migtask_volumes *v);

#endif
