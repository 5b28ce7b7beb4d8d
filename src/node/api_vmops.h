/* What the endpoints of VM operations share (node/api_vmops.c,
 * node/api_migrate.c). */
#ifndef TERN_NODE_API_VMOPS_H
#define TERN_NODE_API_VMOPS_H

#include <stdbool.h>
#include <stdint.h>

#include "node/http.h"

/* Parses req->args[0] as a VM id; true when the reply is done (bad id, no
 * such VM, no quorum, not adopted yet, or forwarded to the owner), false
 * when this node owns the VM and may act on it. */
bool api_route_to_owner(struct api_req *req, struct reply *r, uint32_t *id);

#endif
