/* Destination: the extra connections of a migration with MIG_F_CHANNELS.
 * Each one carries RAM batches of its own pages only, up to its END, in a
 * thread of its own; the first connection's END waits for all of them. */
#ifndef TERN_MIGRATE_INCOMING_CHAN_H
#define TERN_MIGRATE_INCOMING_CHAN_H

#include "common/err.h"

struct mig_incoming;
struct vm;

/* After HELLO_ACK: accepts the extra connections the source opens, each
 * presenting the token of this migration (CHANNEL), and starts their
 * receivers. */
int dest_chans_open(struct mig_incoming *in, struct vm *vm, struct err *e);
/* Waits until every extra connection reached its END: 0, or the first
 * error of one. */
int dest_chans_join(struct mig_incoming *in, struct err *e);
/* PAUSING came: their receivers, which carry their share of the last
 * pages, run at real-time priority to the end (priority.h). Only from
 * the first connection's thread, before dest_chans_join. */
void dest_chans_raise(struct mig_incoming *in);
/* Makes their receivers fail at once (any thread). */
void dest_chans_cancel(struct mig_incoming *in);
/* After a failure: stops the receivers. When the first connection failed
 * only because an extra one did (it is woken that way), e becomes that
 * one's error. */
void dest_chans_stop(struct mig_incoming *in, struct err *e);
/* Closes them (process end). */
void dest_chans_release(struct mig_incoming *in);

#endif
