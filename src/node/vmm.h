/* The tern-vmm processes of this node: started, watched and stopped by
 * ternd. Each runs in its own session (so it outlives a ternd that dies or
 * restarts: a VM does not stop because its supervisor did) with its files
 * in DATA_DIR/run/<id>/: control.sock, console.log, vmm.log (its stderr),
 * pid. A watch thread per process follows its control socket's events and
 * learns how it ended (wait status for children, the last shutdown event
 * for processes adopted after a ternd restart).
 *
 * Run state goes to etcd from the main loop (vmm_tick), never from API or
 * watch threads, so an etcd without quorum only delays it. */
#ifndef TERN_NODE_VMM_H
#define TERN_NODE_VMM_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "cluster/etcd.h"
#include "cluster/vmconf.h"
#include "common/err.h"

#define VMM_MAX 64
#define VMM_PATH_MAX 320

enum vmm_role { VMM_RUN, VMM_INCOMING };

/* What a process is started with: the config and its disks' files. */
struct vmm_spec {
    struct vmconf conf;
    char disk[VMCONF_DISKS_MAX][VMCONF_PATH_MAX];
    bool shared[VMCONF_DISKS_MAX];
    /* an incoming migration with local disks: the NBD listener of the
     * destination (tern-vmm --nbd-listen), "" without */
    char nbd_listen[80];
    /* built but never run (tern-vmm --paused): the offline copy of a
     * stopped VM's local disks goes through a migration of it */
    bool paused;
    bool ha; /* started with a self-fence deadline (node/ha.h) */
    /* the VM's replication target ("" none): a started (not incoming)
     * tern-vmm gets each local disk's bitmap, `<image>.repl-<target>`
     * (docs/replication.md), so a clean stop keeps the next sync a delta */
    char repl_target[TERN_NAME_MAX + 1];
    /* with ha: the lease its start was decided under; if the node holds
     * another one by the spawn, it is not started (0: any) */
    int64_t ha_lease;
};

struct vmm_proc {
    struct vmm_spec spec;
    enum vmm_role role;
    pid_t pid;
    bool child; /* ours to waitpid; else adopted */
    char dir[VMM_PATH_MAX + 16], sock[VMM_PATH_MAX + 32], console[VMM_PATH_MAX + 32],
        log[VMM_PATH_MAX + 32];
    char status[16]; /* starting running paused migrating incoming stopped */
    time_t since;    /* of the status */
    time_t started;  /* of the process (uptime) */
    bool exited;
    int wait_status; /* once reaped (children) */
    bool reaped;
    bool stop_requested;      /* ternd quit it: no restart */
    bool restart_due;         /* the restart policy wants it back */
    char shutdown_reason[24]; /* of the last shutdown event */
    char last_exit[256];
    unsigned fence_ms; /* the --fence-ms it was started with, 0 none */
    /* told about every event of the process (a migration task follows its
     * VM this way), and {"event":"exit","reason":...} when it ended; called
     * from the watch thread, must not block */
    void (*listener)(void *ctx, json_t *ev);
    void *listener_ctx;
    pthread_t watch;
    bool watch_started;
    /* publishing (main loop only) */
    bool dirty;
    bool pub_lost;       /* another node publishes this VM's state now */
    bool pub_failing;    /* the last write failed (logged once per run of them) */
    char published[512]; /* the value we wrote last, "" none */
};

struct vmm_table {
    pthread_mutex_t lock; /* guards procs and their fields */
    pthread_cond_t changed;
    struct vmm_proc *procs[VMM_MAX];
    char run_dir[VMM_PATH_MAX];
    char binary[VMM_PATH_MAX];
    char node[TERN_NAME_MAX + 1];
    char tap_prefix[8]; /* node/vmnet.h */
    /* restart policy memory, by VM id: crashes in the last 10 minutes */
    struct {
        uint32_t id;
        unsigned count;
        time_t first;
    } crashes[VMM_MAX];
    struct {
        uint32_t id;
        char why[256];
    } exits[VMM_MAX]; /* last exit per VM */
    int64_t lease;    /* states were written under this one */
    /* ms of self-fence budget an HA VM starts with (node/ha.h), lease as
     * vmm_spec's ha_lease; <= 0: none, and an HA VM is not started */
    int (*fence_ms)(void *ctx, int64_t lease);
    void *fence_ctx;
};

void vmm_table_init(struct vmm_table *v);
int vmm_table_setup(struct vmm_table *v, const char *data_dir, const char *binary,
                    const char *node, struct err *e);
void vmm_table_release(struct vmm_table *v);

/* Boots the VM; returns once its control socket answers (up to 10 s). */
int vmm_start(struct vmm_table *v, const struct vmm_spec *spec, struct err *e);
/* A destination for a live migration, listening on uri; tls_dir NULL for
 * plain TCP. */
int vmm_start_incoming(struct vmm_table *v, const struct vmm_spec *spec, const char *uri,
                       const char *tls_dir, struct err *e);
/* quit, then SIGKILL after timeout_ms; waits for the end. */
int vmm_stop(struct vmm_table *v, uint32_t id, int timeout_ms, struct err *e);
/* One control request to the VM's tern-vmm. */
int vmm_command(struct vmm_table *v, uint32_t id, json_t *req, json_t **reply,
                struct err *e);
/* Waits until the process of VM id left the table (its end is published
 * in etcd then), up to timeout_ms: 0 or -ETIMEDOUT. */
int vmm_wait_settled(struct vmm_table *v, uint32_t id, int timeout_ms);
/* Waits until the process ended, up to timeout_ms (-1 forever): 0 or -ETIMEDOUT. */
int vmm_wait_exit(struct vmm_table *v, uint32_t id, int timeout_ms);

struct vmm_info {
    bool present;
    enum vmm_role role;
    pid_t pid;
    char status[16];
    time_t started;
    char console[VMM_PATH_MAX + 32];
    char last_exit[256];
};
/* The VMs with a process in the table now (ended ones too, until their
 * end is published): their number. */
unsigned vmm_list(struct vmm_table *v, uint32_t ids[VMM_MAX]);
/* What this node knows of VM id (present false: no process; last_exit
 * may still tell how the last one ended). */
void vmm_info(struct vmm_table *v, uint32_t id, struct vmm_info *out);
void vmm_set_listener(struct vmm_table *v, uint32_t id, void (*fn)(void *ctx, json_t *ev),
                      void *ctx);
/* After a move-disk: disk i's image for a restart of the process. */
void vmm_set_disk(struct vmm_table *v, uint32_t id, unsigned i, const char *path,
                  bool shared);
/* When the guest booted, for a destination: the source's. */
void vmm_set_started(struct vmm_table *v, uint32_t id, time_t started);
/* The status shown while a migration runs ("migrating"), or back. */
void vmm_set_status(struct vmm_table *v, uint32_t id, const char *status);

/* The device models ternd gives a VM's tern-vmm and how many of each one
 * VM may have, by the name of their state in a migration stream
 * (src/devices): {"serial": 1, "virtio-blk": 8}. Published in the node
 * info, so that a migration's source can tell whether the target can take
 * what its VM has. */
json_t *vmm_devices_supported(void);
/* The devices of spec's VM, in the same form: {"serial": 1, "virtio-blk": 2}. */
json_t *vmm_devices_used(const struct vmm_spec *spec);

/* Main loop, every tick: publishes changed states, forgets ended
 * processes, restarts crashed ones whose VM this node still owns. */
void vmm_tick(struct vmm_table *v, struct etcd_client *c, int64_t lease);
/* At start: the tern-vmm processes a previous ternd left running. */
void vmm_adopt(struct vmm_table *v, struct etcd_client *c);

/* In a forked child: its own session (a ternd killed or restarted does not
 * take it along), no blocked signals, stdin /dev/null, stdout out_fd (-1:
 * the log), stderr appended to log_path, then argv; never returns. */
void vmm_exec_detached(const char *log_path, int out_fd, char **argv);

#endif
