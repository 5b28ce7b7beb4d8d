/* Replication jobs in etcd (docs/cluster.md, "Replication"): which VM's
 * local disks are synced to which node, how often, and how the last sync
 * went. The syncs themselves are node/replsync.c's.
 *
 *   /tern/replications/<id>  {"target":"n2","schedule_s":900,"rate_mib":0,
 *                             "created_ms":1764660000000}
 *   /tern/replstate/<id>     {"last_sync_ms":..,"duration_ms":..,"bytes":..,
 *                             "full":false,"error":"","next_run_ms":..,
 *                             "syncs":3,"task":"UPID:..."}
 */
#ifndef TERN_CLUSTER_REPLICATION_H
#define TERN_CLUSTER_REPLICATION_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/etcd.h"
#include "cluster/keys.h"

#define TERN_PREFIX_REPL "/tern/replications/"
#define TERN_PREFIX_REPLSTATE "/tern/replstate/"
#define REPL_SCHEDULE_MIN_S 10
#define REPL_SCHEDULE_MAX_S (7 * 86400)

struct repl_job {
    uint32_t id;
    char target[TERN_NAME_MAX + 1];
    unsigned schedule_s; /* 0: only `replication run` */
    unsigned rate_mib;   /* recorded; 0: no limit (the limit is not built yet) */
    int64_t created_ms;
};

struct repl_state {
    int64_t last_sync_ms, duration_ms, next_run_ms; /* 0: none */
    uint64_t bytes, syncs;
    bool full;
    char error[512]; /* "" after a sync that committed (struct err's size) */
    char task[160];
};

/* A job's fields from a request or a record; unknown keys refused. */
int repl_job_from_json(json_t *j, struct repl_job *job, struct err *e);
json_t *repl_job_to_json(const struct repl_job *job);
json_t *repl_state_to_json(const struct repl_state *st);

/* Adds the job: refused (one line each) for a VM that does not exist, a
 * target that is no member or is the VM's owner, a VM without a disk on a
 * storage that is not shared; -EEXIST when the VM has a job already. */
int repl_job_add(struct etcd_client *c, const struct repl_job *job, struct err *e);
/* -ENOENT "vm 100 has no replication". */
int repl_job_get(struct etcd_client *c, uint32_t id, unsigned flags, struct repl_job *out,
                 struct err *e);
/* Every job; *out malloc'd (free it), *n its count. */
int repl_job_list(struct etcd_client *c, unsigned flags, struct repl_job **out, size_t *n,
                  struct err *e);
/* The job and its state; -ENOENT when none. */
int repl_job_remove(struct etcd_client *c, uint32_t id, struct err *e);

/* -ENOENT when the job never ran (*out zeroed). */
int repl_state_get(struct etcd_client *c, uint32_t id, unsigned flags,
                   struct repl_state *out, struct err *e);
int repl_state_put(struct etcd_client *c, uint32_t id, const struct repl_state *st,
                   struct err *e);

#endif
