/* Inside the supervisor (node/vmm.c): the watch thread of one tern-vmm. */
#ifndef TERN_NODE_VMM_WATCH_H
#define TERN_NODE_VMM_WATCH_H

#include "node/vmm.h"

/* With v->lock held. */
struct vmm_proc *vmm_find(struct vmm_table *v, uint32_t id);
int vmm_watch_start(struct vmm_table *v, struct vmm_proc *p, struct err *e);

#endif
