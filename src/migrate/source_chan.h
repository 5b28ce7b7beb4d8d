/* Source: the extra connections of a migration with MIG_F_CHANNELS, and
 * figures over all of a migration's connections. */
#ifndef TERN_MIGRATE_SOURCE_CHAN_H
#define TERN_MIGRATE_SOURCE_CHAN_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "migrate/hello.h"
#include "migrate/migration.h"

/* After a HELLO_ACK that accepted CHANNELS: opens connections 1..n-1 to
 * the same URI (n = min(m->params.channels, ack->channels)), each with TLS
 * as the first and a CHANNEL message with the token; ch[0] is the first
 * connection already. Sets *n; acks: they carry ACKs. */
int mig_source_channels(struct migration *m, const struct mig_hello_ack *ack, bool acks,
                        struct mig_channel **ch, unsigned *n, struct err *e);
/* Stream bytes sent on every connection. */
uint64_t mig_channels_bytes_out(struct mig_channel *const *ch, unsigned n);
/* Time in send calls: connections send side by side, so the longest. */
double mig_channels_send_ms(struct mig_channel *const *ch, unsigned n);
/* The limit shared out between the connections. */
void mig_channels_set_bandwidth(struct mig_channel *const *ch, unsigned n, uint64_t bps);

#endif
