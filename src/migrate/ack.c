/* Acknowledgements (feature ACKS, docs/protocol.md): the destination tells
 * the source how many stream bytes it has applied, so that the source
 * pauses the guest only once the destination has caught up (the pause
 * then holds no backlog of socket buffers) and measures the bandwidth as
 * the rate the destination applies. An ACK is a claim from the peer: one
 * beyond what was sent, or going back, ends the migration (invariant 3). */
#include <errno.h>
#include <stdlib.h>

#include "common/clock.h"
#include "migrate/channel.h"

int mig_ack_send(struct mig_channel *ch, struct err *e)
{
    uint64_t applied = atomic_load(&ch->bytes_in);
    return mig_send_buf(ch, MIG_ACK, &applied, sizeof(applied), e);
}

int mig_ack_take(struct mig_channel *ch, const struct mig_hdr *h, struct err *e)
{
    uint64_t applied;
    if (h->length != sizeof(applied))
        return err_set(e, EPROTO, "ACK message of %u bytes, not 8", h->length);
    int rc = mig_recv(ch, &applied, sizeof(applied), e);
    if (rc)
        return rc;
    uint64_t sent = atomic_load(&ch->bytes_out);
    if (applied > sent)
        return err_set(e, EPROTO,
                       "destination acknowledged %llu bytes, only %llu were sent",
                       (unsigned long long)applied, (unsigned long long)sent);
    if (applied < ch->acked)
        return err_set(e, EPROTO,
                       "destination acknowledgement went back from %llu to "
                       "%llu bytes",
                       (unsigned long long)ch->acked, (unsigned long long)applied);
    ch->acked = applied;
    ch->acked_at_ms = clock_mono_ms();
    return 0;
}

int mig_ack_poll(struct mig_channel *ch, struct err *e)
{
    while (!ch->peeked && !mig_wait_readable(ch, 0)) {
        struct mig_hdr h;
        int rc = mig_recv_hdr(ch, &h, e);
        if (rc)
            return rc;
        if (h.type != MIG_ACK || !ch->acks) {
            ch->peek = h;
            ch->peeked = true;
            return 0;
        }
        rc = mig_ack_take(ch, &h, e);
        if (rc)
            return rc;
    }
    return 0;
}

int mig_ack_wait(struct mig_channel *ch, uint64_t bytes, int timeout_ms, struct err *e)
{
    double deadline = clock_mono_ms() + timeout_ms;
    for (;;) {
        int rc = mig_ack_poll(ch, e);
        if (rc)
            return rc;
        if (ch->peeked) {
            /* not an ACK: the peer's ERROR (or a message out of place) */
            uint8_t *msg = NULL;
            uint32_t len;
            rc = mig_recv_msg(ch, MIG_ACK, &msg, &len, 0, e);
            free(msg);
            return rc ? rc : err_set(e, EPROTO, "unexpected ACK");
        }
        if (ch->acked >= bytes)
            return 0;
        double left = deadline - clock_mono_ms();
        if (left <= 0 || mig_wait_readable(ch, (int)left + 1))
            return -ETIMEDOUT;
    }
}

int mig_ack_progress(struct mig_channel *ch, uint64_t *acked, struct err *e)
{
    uint64_t in = atomic_load(&ch->bytes_in);
    if (in == *acked)
        return 0;
    if (in - *acked < MIG_ACK_EVERY_BYTES && !mig_wait_readable(ch, 0))
        return 0;
    *acked = in;
    return mig_ack_send(ch, e);
}
