/* The self-fence of an HA VM (docs/design.md, invariant 2; docs/control.md,
 * command "fence"). ternd gives tern-vmm a deadline derived from the last
 * renewal of its node's etcd lease and moves it on after each renewal. If
 * the deadline passes, the node may be cut off and another node may take
 * the VM over once the lease has expired: tern-vmm ends at once, before
 * that can happen (exit status FENCE_EXIT_STATUS), without flushing or
 * telling the guest. The deadline is kept by a thread of its own, so a
 * ternd that is stopped or dead cannot hold it up. */
#ifndef TERN_VMM_FENCE_H
#define TERN_VMM_FENCE_H

#include "common/err.h"
#include "vmm/control.h"

#define FENCE_EXIT_STATUS 4
/* A deadline further away is refused: ternd never has a longer lease. */
#define FENCE_MS_MAX 600000

/* {"cmd":"fence","ms":N}: the deadline is now + N ms; 0 disarms it. */
extern const struct control_command fence_command;

/* Arms (ms > 0) or disarms (0) the fence, starting its thread on first
 * use; -EINVAL above FENCE_MS_MAX. Any thread. */
int fence_set(unsigned ms, struct err *e);

#endif
