/* ternd's side of a tern-vmm control socket (docs/control.md): JSON lines
 * (common/jsonl.h), replies {"ok":...} interleaved with events {"event":...}. */
#ifndef TERN_NODE_VMMCTL_H
#define TERN_NODE_VMMCTL_H

#include <jansson.h>

#include "common/err.h"
#include "common/jsonl.h"

struct vmmctl_conn {
    int fd;
    struct jsonl_buf buf;
};

int vmmctl_open(struct vmmctl_conn *c, const char *path, struct err *e);
void vmmctl_close(struct vmmctl_conn *c);
/* The next line as JSON; waits up to timeout_ms (-1 forever). -ETIMEDOUT,
 * -EPIPE at the end of the connection, -EPROTO for a line that is not JSON. */
int vmmctl_read(struct vmmctl_conn *c, int timeout_ms, json_t **line, struct err *e);
int vmmctl_send(struct vmmctl_conn *c, json_t *req, struct err *e);
/* One request on its own connection: the reply (events skipped). A reply
 * with "ok":false becomes -EREMOTEIO with its error text. */
int vmmctl_request(const char *path, json_t *req, json_t **reply, int timeout_ms,
                   struct err *e);

#endif
