/* The handover of a live migration across the cluster (docs/design.md, invariant 2).
 *
 * At the start the source reads the VM's owner key and its mod_revision R.
 * The commit puts owner = target only if the key's mod_revision is still R.
 * Either side can instead "fence" the key: rewrite the same owner if the
 * revision is still R, which moves the revision on so that the commit can
 * never apply any more. So exactly one of commit and fence wins, and a
 * destination that lost its source, or a source that lost its ternd, can
 * find out which by reading the key: owner = target means committed; a
 * revision past R with the source still owner means fenced. */
#ifndef TERN_CLUSTER_HANDOVER_H
#define TERN_CLUSTER_HANDOVER_H

#include <stdbool.h>
#include <stdint.h>

#include "cluster/etcd.h"
#include "cluster/keys.h"

/* Linearizable: the owner and the revision R of its last change. */
int handover_read(struct etcd_client *c, uint32_t vmid, char owner[TERN_NAME_MAX + 1],
                  int64_t *rev, struct err *e);

enum handover_result {
    HANDOVER_RESULT_COMMITTED, /* etcd names the target the owner */
    HANDOVER_RESULT_REFUSED,   /* certainly not applied: the source may resume */
    HANDOVER_RESULT_UNKNOWN,   /* may or may not be applied: nobody resumes yet */
};

enum handover_state {
    HANDOVER_OPEN,      /* owner is source at R: neither happened yet */
    HANDOVER_COMMITTED, /* owner is target */
    HANDOVER_FENCED,    /* owner is source, revision past R */
    HANDOVER_OTHER,     /* owner is neither: someone else moved the VM */
};

/* What the key says now about the handover (source, target, R). */
int handover_state(struct etcd_client *c, uint32_t vmid, const char *source,
                   const char *target, int64_t rev, enum handover_state *st, struct err *e);

/* The commit: 0 and HANDOVER_RESULT_COMMITTED; -ESTALE and
 * HANDOVER_RESULT_REFUSED when the revision moved (fenced or changed); or
 * -ENOLINK and HANDOVER_RESULT_UNKNOWN when the request may have been
 * applied without an answer: then the destination and the source both stay
 * paused and ask handover_state once quorate. Any other failure (-ENOLINK
 * too when no member got the request) is HANDOVER_RESULT_REFUSED. */
int handover_commit(struct etcd_client *c, uint32_t vmid, const char *target, int64_t rev,
                    enum handover_result *res, struct err *e);
/* The fence: *fenced true when this call fenced it or it was fenced
 * already, false when the commit won. -ENOLINK: try again. */
int handover_fence(struct etcd_client *c, uint32_t vmid, const char *source,
                   const char *target, int64_t rev, bool *fenced, struct err *e);

#endif
