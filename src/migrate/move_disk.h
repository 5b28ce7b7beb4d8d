/* Control commands move_disk and move_disk_cancel (docs/control.md): a
 * running VM's disk to another image file of this host. */
#ifndef TERN_MIGRATE_MOVE_DISK_H
#define TERN_MIGRATE_MOVE_DISK_H

#include <jansson.h>

#include "common/err.h"
#include "vmm/control.h"
#include "vmm/monitor.h"

/* {"cmd":"move_disk","disk":0,"path":"/new/image","shared":false}: starts
 * the move; the answer comes at once, the end as a "move-disk" event. */
int move_disk_command(struct control *ctl, json_t *req, json_t *reply, struct err *e);
int move_disk_cancel_command(struct control *ctl, json_t *req, json_t *reply,
                             struct err *e);
/* A move runs (a migration waits for its end). */
bool move_disk_busy(void);
/* Process end: cancels and joins a running move. */
void move_disk_stop(void);

#endif
