/* Device and VM state over the migration stream: one SECTION message per
 * registered (name, instance), each with its version and a crc32c. */
#ifndef TERN_MIGRATE_STATE_H
#define TERN_MIGRATE_STATE_H

#include <stdint.h>

#include "common/buf.h"
#include "common/devstate.h"
#include "common/err.h"
#include "migrate/channel.h"

/* Saves every registered section into out as SECTION payloads, each
 * preceded by its u32 length (kept apart from sending so the downtime
 * report can tell saving from transfer). */
int state_save_all(const struct devstate_registry *reg, struct buf *out,
                   struct err *e);
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
int state_parse(const uint8_t *msg, uint32_t len, struct state_section *s,
                struct err *e);
/* Finds the section's owner and loads it; an unknown section or a version
 * above what the owner supports is refused by name. */
int state_load(const struct devstate_registry *reg, const struct state_section *s,
               struct err *e);

#endif
