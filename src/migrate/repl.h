/* Replication in tern-vmm (docs/replication.md): the persistent bitmap of
 * each replicated disk (--disk ...,repl=FILE) and the sync that copies the
 * blocks written since the last one to a replica over NBD (control command
 * repl_sync; the receiving end is tern-replica on the target node). */
#ifndef TERN_MIGRATE_REPL_H
#define TERN_MIGRATE_REPL_H

#include <jansson.h>

#include "common/err.h"
#include "storage/mirror.h"
#include "vmm/control.h"
#include "vmm/monitor.h"

/* Option parsing: disk index's bitmap file (absolute path). 0 or -EINVAL. */
int repl_set_bitmap(unsigned disk, const char *path);
/* Start hook: loads each bitmap (missing, corrupt, of another size or not
 * saved cleanly: the next sync is full), hands it to the disk's write
 * tracking and marks the file "not clean" before the guest runs. */
int repl_start(struct monitor *m, struct err *e);
/* Stop hook: ends a running sync; after a power-off, quit or guest crash
 * stops the vCPUs and saves each bitmap clean (the next sync a delta). */
void repl_stop(struct monitor *m);
/* {"cmd":"repl_sync","uri":"tcp:HOST:PORT","full":false}: starts a sync of
 * every replicated disk; the end comes as a "repl-sync" event. */
int repl_sync_command(struct control *ctl, json_t *req, json_t *reply, struct err *e);
/* {"cmd":"repl_status"}: each disk's bitmap, the last sync. */
int repl_status_command(struct control *ctl, json_t *req, json_t *reply, struct err *e);
/* {"cmd":"repl_invalidate"}: the next sync is full (the target lost or
 * refused the last one). */
int repl_invalidate_command(struct control *ctl, json_t *req, json_t *reply, struct err *e);
/* {"cmd":"repl_attach","disk":0,"bitmap":"/abs/path"}: a running VM's
 * disk becomes replicated; its first sync is full. */
int repl_attach_command(struct control *ctl, json_t *req, json_t *reply, struct err *e);
/* {"cmd":"repl_detach","disk":0}: no longer replicated; the file goes. */
int repl_detach_command(struct control *ctl, json_t *req, json_t *reply, struct err *e);
extern const struct control_command repl_commands[];
/* A migration's mirror whose target holds the disk's replica of the last
 * sync: its bits are the replication bitmap's (the bitmap itself stays, so
 * a failed migration changes nothing); -EINVAL when the disk is not
 * replicated or needs a full sync. */
int repl_seed(struct mirror *m, unsigned disk, struct err *e);

#endif
