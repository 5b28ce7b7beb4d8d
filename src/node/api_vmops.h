/* What the endpoints of VM operations share (node/api_vmops.c,
 * node/api_migrate.c, node/events_console.c). */
#ifndef TERN_NODE_API_VMOPS_H
#define TERN_NODE_API_VMOPS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/http.h"

/* Parses req->args[0] as a VM id; true when the reply is done (bad id, no
 * such VM, no quorum, not adopted yet, or forwarded to the owner), false
 * when this node owns the VM and may act on it. */
bool api_route_to_owner(struct api_req *req, struct reply *r, uint32_t *id);
/* Console output as JSON text: bytes that are not printable ASCII (or
 * newline, tab) become '?', so any guest output is valid UTF-8. NULL when
 * out of memory. Also the console stream's (events_console.c). */
json_t *api_console_text(const char *buf, size_t len);

#endif
