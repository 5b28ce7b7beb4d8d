/* Inside the supervisor (node/vmm.c, node/vmm_tick.c): the watch thread
 * of one tern-vmm. */
#ifndef TERN_NODE_VMM_WATCH_H
#define TERN_NODE_VMM_WATCH_H

#include "node/vmm.h"

/* With v->lock held. */
int vmm_watch_start(struct vmm_table *v, struct vmm_proc *p, struct err *e);

#endif
