/* The files a cluster migration keeps in the VM's run directory
 * (DATA_DIR/run/<id>/), on both nodes: the TLS material its tern-vmm reads,
 * and the record of the handover that a restarted ternd settles from. */
#ifndef TERN_NODE_MIGTASK_FILES_H
#define TERN_NODE_MIGTASK_FILES_H

#include <stdint.h>

#include "cluster/keys.h"
#include "common/err.h"
#include "node/vmm.h"

struct node_ctx;

#define MIGTASK_TLS_DIR_MAX (VMM_PATH_MAX + 32)

/* DATA_DIR/run/<id>/<which>/: ca.pem, the peer node's certificate
 * (pinned: no CA between nodes); cert.pem and key.pem, this node's. */
int migtask_tls_dir(struct node_ctx *x, uint32_t vmid, const char *which,
                    const char *peer_cert, char dir[MIGTASK_TLS_DIR_MAX], struct err *e);

/* DATA_DIR/run/<id>/handover.json: what a restarted ternd needs to settle
 * a handover ({"role","source","target","rev"}). */
struct migtask_handover {
    char source[TERN_NAME_MAX + 1], target[TERN_NAME_MAX + 1];
    int64_t rev; /* of the owner key when it began */
};

int migtask_handover_write(struct node_ctx *x, uint32_t vmid, const char *role,
                           const struct migtask_handover *h, struct err *e);
/* -ENOENT when there is no (whole) record. */
int migtask_handover_read(struct node_ctx *x, uint32_t vmid, struct migtask_handover *h);

#endif
