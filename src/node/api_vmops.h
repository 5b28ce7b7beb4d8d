/* Shared by the VM operation endpoints. */
#ifndef TERN_NODE_API_VMOPS_H
#define TERN_NODE_API_VMOPS_H

#include <stdbool.h>
#include <stdint.h>

#include "node/http.h"

/* Parses req->args[0] as a VM id; true when the reply is done (bad id, no
 * such VM, no quorum, or forwarded to the owner), false when this node
 * owns the VM. */
bool vmops_route_to_owner(struct api_req *req, struct reply *r, uint32_t *id);

extern const struct api_route api_routes_vmops[];
extern const struct api_route api_routes_migrate[];

#endif
