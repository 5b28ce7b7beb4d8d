/* The state of one migration task (node/migrate_task.c). */
#ifndef TERN_NODE_MIGRATE_RUN_H
#define TERN_NODE_MIGRATE_RUN_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "node/migrate.h"

#define MIG_EVENTS_MAX 256

struct mig_run {
    struct mig_plan plan;
    int64_t rev;                     /* of the owner key when it began */
    char uri[160];
    pthread_mutex_t lock;            /* guards the event queue */
    pthread_cond_t cond;
    json_t *events[MIG_EVENTS_MAX];
    unsigned nevents;
    unsigned last_pass;
    uint64_t last_line_ns;
    bool committed;
    bool cancel_sent;
    uint64_t checked_ns;             /* last look at the target's ternd */
    unsigned misses;
    uint64_t t0;
};

/* DATA_DIR/run/<id>/handover.json: what a restarted ternd needs to settle a
 * handover ({"role","source","target","rev"}). */
int mig_handover_file_write(struct ternd *t, uint32_t vmid, const char *role,
                            const char *source, const char *target, int64_t rev,
                            struct err *e);

/* ca.pem: the peer node's certificate (pinned: no CA between nodes);
 * cert.pem and key.pem: this node's. In DATA_DIR/run/<id>/<which>. */
int mig_tls_dir(struct ternd *t, uint32_t vmid, const char *which, const char *peer_cert,
                char dir[VMM_PATH_MAX + 32], struct err *e);

#endif
