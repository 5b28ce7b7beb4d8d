/* Device and VM state over the migration stream: one SECTION message per
 * registered (name, instance), each with its version and a crc32c. */
#ifndef TERN_MIGRATE_STATE_H
#define TERN_MIGRATE_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/devstate.h"
#include "common/err.h"
#include "migrate/channel.h"

/* Saves every registered section into out as SECTION payloads, each
 * preceded by its u32 length (kept apart from sending so the downtime
 * report can tell saving from transfer). */
int state_save_all(const struct devstate_registry *reg, struct buf *out, struct err *e);
/* Sends what state_save_all produced, one SECTION message each. */
int state_send_saved(const struct buf *saved, struct mig_channel *ch, struct err *e);

/* A parsed SECTION payload (pointers into the message). */
struct state_section {
    char name[MIG_SECTION_NAME_MAX + 1];
    uint32_t instance;
    uint32_t version;
    uint32_t length;
    const uint8_t *data;
};

/* Checks a SECTION payload: lengths, crc, name characters. */
int state_parse(const uint8_t *msg, uint32_t len, struct state_section *s, struct err *e);

/* What a receiver has taken so far against the sections it registered: the
 * one admission path of a destination (incoming.c) and of the check of a
 * recorded stream without KVM (verify.c). */
struct state_intake {
    const struct devstate_registry *reg;
    bool seen[DEVSTATE_MAX];
};

void state_intake_init(struct state_intake *in, const struct devstate_registry *reg);
/* Admits a parsed section: registered here (name, instance), not sent
 * before, a version from 1 to what its owner loads; each refused by name.
 * Sets *d to the owner's entry. */
int state_admit(struct state_intake *in, const struct state_section *s,
                const struct devstate_entry **d, struct err *e);
/* Loads an admitted section into its owner (d->opaque). */
int state_load(const struct devstate_entry *d, const struct state_section *s,
               struct err *e);
/* At END: 0 when every registered section arrived, else the first missing
 * one is named. */
int state_intake_complete(const struct state_intake *in, struct err *e);

#endif
