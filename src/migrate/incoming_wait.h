/* `tern-vmm --incoming` before its source connects: no VM yet, but the
 * control socket answers already (status "incoming", quit). */
#ifndef TERN_MIGRATE_INCOMING_WAIT_H
#define TERN_MIGRATE_INCOMING_WAIT_H

#include <stdbool.h>

#include "common/err.h"
#include "migrate/incoming.h"

/* mig_incoming_accept with a control socket at control_path (if not NULL)
 * answering status and quit meanwhile. 0 with *quit false when a source
 * connected, 0 with *quit true when told to quit first, or -errno. */
int mig_incoming_wait(struct mig_incoming *in, const char *control_path, bool *quit,
                      struct err *e);

#endif
