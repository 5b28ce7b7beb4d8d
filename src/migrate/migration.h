/* Outgoing live migration (source side): one at a time per tern-vmm, run in
 * its own thread so the control socket stays responsive. */
#ifndef TERN_MIGRATE_MIGRATION_H
#define TERN_MIGRATE_MIGRATION_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "migrate/channel.h"
#include "migrate/disks.h"
#include "migrate/decision.h"

struct vm;

struct mig_params {
    char uri[256];
    uint64_t max_bandwidth;     /* bytes/s, 0 = unlimited */
    uint32_t downtime_limit_ms; /* default 100 */
    bool auto_converge;         /* default on */
    uint32_t max_time_s;        /* give up after this long; default 600 */
    bool tls;
    char tls_dir[256];    /* ca.pem, cert.pem, key.pem */
    bool page_crc;        /* default on */
    bool external_commit; /* ternd decides the handover (migrate_commit) */
    char nbd[256];        /* local disks: the destination's NBD server, "" none */
    /* the targets hold each local disk's replica of its last sync: only
     * the replication bitmap's blocks go (docs/replication.md) */
    bool nbd_delta;
    unsigned channels; /* connections for RAM, 1..MIG_CHANNELS_MAX; default 1 */
    /* Before the commit, give up when no control request came for this
     * long (0: never): an orphaned migration, whose ternd is gone, must not
     * keep throttling or pausing the guest. */
    uint32_t watchdog_ms;
    /* Ask (migrate_pause) before stop-and-copy: ternd checks quorum, so
     * that the guest never pauses on a cluster known to be unquorate. */
    bool pause_gate;
};

enum mig_status {
    MIG_STATUS_NONE,
    MIG_STATUS_SETUP,
    MIG_STATUS_ACTIVE,
    MIG_STATUS_DEVICE,
    MIG_STATUS_HANDOVER,
    MIG_STATUS_COMPLETED,
    MIG_STATUS_FAILED,
    MIG_STATUS_CANCELLED,
    MIG_STATUS_POSTCOMMIT_FAILED,
};

/* Everything query_migrate reports; times in milliseconds. */
struct mig_figures {
    enum mig_status status;
    unsigned pass;
    uint64_t ram_total, transferred, remaining, pages, zero_pages, skipped;
    double dirty_rate, bandwidth, expected_downtime_ms;
    unsigned throttle_pct;
    double total_ms, setup_ms, downtime_ms;
    double pause_ms, last_pages_ms, state_save_ms, transfer_ms, load_ms, commit_ms,
        resume_ms;
    uint64_t state_bytes;
    double disks_ms;              /* last disk blocks and target flush, in the pause */
    double sync_ms;               /* last dirty-log sync (KVM + VMM bitmap) */
    double predicted_downtime_ms; /* last transfer expected when pre-copy stopped */
    char stop_reason[16];         /* why it stopped: converge.h */
    uint64_t acked;               /* stream bytes the destination applied */
    double catch_up_ms;           /* last wait for the destination to apply */
    double resume_dest_ms;        /* destination's part of resume (RUNNING) */
    uint64_t paused_at_us;        /* wall clock (µs since the epoch) of the pause */
    char error[512];
};

struct migration;

/* Hooks into the process around the migration thread. */
struct mig_hooks {
    /* Called with a "migration" event's fields; any thread. */
    void (*event)(void *ctx, json_t *fields);
    /* The commit decision once the destination has loaded everything:
     * 0 with *decided true when an authority committed (ternd's etcd CAS:
     * from now on the destination owns the VM even if it never hears
     * COMMIT), 0 with *decided false when there is no authority
     * (standalone: the delivery of COMMIT decides), -errno refused (the
     * source resumes). */
    int (*commit)(void *ctx, bool *decided, struct err *e);
    /* With pause_gate: may the VM pause now? false: another pre-copy pass
     * first (no answer within about a second counts as false). */
    bool (*pause_gate)(void *ctx);
    /* With watchdog_ms: milliseconds since the last control request. */
    uint64_t (*idle_ms)(void *ctx);
    /* The VM now runs on the destination: end this process. */
    void (*completed)(void *ctx);
    void *ctx;
};

struct migration {
    struct vm *vm;
    struct mig_params params;
    struct mig_hooks hooks;
    pthread_t thread;
    bool thread_running;
    struct mig_channel ch;
    /* with MIG_F_CHANNELS: connections 1.. (the first nextra are open) */
    struct mig_channel extra[MIG_CHANNELS_MAX - 1];
    _Atomic unsigned nextra;
    struct mig_decision commit; /* under ternd: commit or abort (hooks.commit) */
    struct mig_decision pause;  /* under ternd: may the VM pause (hooks.pause_gate) */
    pthread_mutex_t lock;       /* guards figures */
    struct mig_figures fig;
    struct mig_disks disks; /* local disks' mirrors (disks.h) */
    _Atomic bool cancel;
    _Atomic bool abandoned; /* by the watchdog: nobody watched it */
    pthread_t watchdog;
    bool watchdog_running;
};

void migration_init(struct migration *m, struct vm *vm, struct mig_hooks hooks);
void mig_params_default(struct mig_params *p);
/* Starts the migration thread; -EBUSY while one is active. */
int migration_start(struct migration *m, const struct mig_params *p, struct err *e);
/* Makes blocked sends and receives on every connection fail (any thread). */
void migration_cancel_channels(struct migration *m);
/* Asks an active migration to stop before the commit; the source resumes. */
int migration_cancel(struct migration *m, struct err *e);
/* Stops and joins the thread (process exit). */
void migration_release(struct migration *m);
json_t *migration_query(struct migration *m);
const char *mig_status_name(enum mig_status s);
json_t *mig_figures_json(const struct mig_figures *f);

/* The watchdog (migrate/watchdog.c): a thread that abandons the migration
 * (cancel, status failed, the VM resumes) when hooks.idle_ms says nobody
 * has asked anything for params.watchdog_ms while it is still before the
 * handover. Started and joined by the migration thread. */
int mig_watchdog_start(struct migration *m, struct err *e);
void mig_watchdog_join(struct migration *m);
/* The error of an abandoned migration, "" otherwise. */
const char *mig_watchdog_reason(struct migration *m);

#endif
