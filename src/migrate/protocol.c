#include "migrate/protocol.h"

#include <errno.h>

#include "common/crc32c.h"

const char *mig_type_name(uint16_t type)
{
    static const char *const names[] = {
        "?",      "HELLO",   "HELLO_ACK", "RAM", "SECTION", "END",     "LOADED",
        "COMMIT", "RUNNING", "ERROR",     "ACK", "CHANNEL", "PAUSING",
    };
    return type <= MIG_TYPE_MAX ? names[type] : "?";
}

int mig_hdr_check(const struct mig_hdr *h, struct err *e)
{
    if (h->magic != MIG_MAGIC)
        return err_set(e, EPROTO, "bad message magic 0x%08x (not a tern migration stream)",
                       h->magic);
    if (h->crc != crc32c(0, h, 12))
        return err_set(e, EPROTO, "message header crc mismatch (type %u, length %u)",
                       h->type, h->length);
    if (h->type == 0 || h->type > MIG_TYPE_MAX)
        return err_set(e, EPROTO, "unknown message type %u", h->type);
    if (h->length > mig_max_length(h->type))
        return err_set(e, EPROTO, "%s message of %u bytes exceeds the limit of %u",
                       mig_type_name(h->type), h->length, mig_max_length(h->type));
    return 0;
}
