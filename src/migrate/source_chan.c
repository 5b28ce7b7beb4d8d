#include "migrate/source_chan.h"

#include <errno.h>

#include "common/buf.h"
#include "common/opts.h"
#include "migrate/tls.h"

/* Extra connection i of n. */
static int connect_one(struct migration *m, const struct mig_hello_ack *ack, bool acks,
                       unsigned i, unsigned n, struct err *e)
{
    struct mig_channel *ch = &m->extra[i - 1];
    int fd;
    int rc = mig_uri_connect(m->params.uri, &fd, e);
    if (rc)
        return rc;
    mig_channel_init(ch, fd);
    atomic_store(&m->nextra, i);
    if (atomic_load(&m->cancel))
        return err_set(e, ECANCELED, "migration cancelled");
    if (m->params.tls && (rc = mig_tls_connect(ch, m->params.tls_dir, e)))
        return rc;
    ch->acks = acks;
    struct buf msg;
    buf_init(&msg);
    chan_hello_encode(&(struct mig_chan_hello){ack->token, i, n}, &msg);
    rc = msg.oom ? err_set(e, ENOMEM, "out of memory")
                 : mig_send_buf(ch, MIG_CHANNEL, msg.data, (uint32_t)msg.len, e);
    buf_release(&msg);
    return rc;
}

int mig_source_channels(struct migration *m, const struct mig_hello_ack *ack, bool acks,
                        struct mig_channel **ch, unsigned *n, struct err *e)
{
    unsigned want = m->params.channels < ack->channels ? m->params.channels : ack->channels;
    test_hold("channels");
    for (unsigned i = 1; i < want; i++) {
        int rc = connect_one(m, ack, acks, i, want, e);
        if (rc) {
            /* e->msg cannot be both the format argument and the output */
            struct err why = *e;
            return err_set(e, -rc, "channel %u of %u: %s", i, want, why.msg);
        }
        ch[i] = &m->extra[i - 1];
    }
    *n = want < 1 ? 1 : want;
    return 0;
}

uint64_t mig_channels_bytes_out(struct mig_channel *const *ch, unsigned n)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < n; i++)
        sum += atomic_load(&ch[i]->bytes_out);
    return sum;
}

double mig_channels_send_ms(struct mig_channel *const *ch, unsigned n)
{
    double most = 0;
    for (unsigned i = 0; i < n; i++)
        most = ch[i]->send_ms > most ? ch[i]->send_ms : most;
    return most;
}

void mig_channels_set_bandwidth(struct mig_channel *const *ch, unsigned n, uint64_t bps)
{
    for (unsigned i = 0; i < n; i++)
        mig_channel_set_bandwidth(ch[i], bps / n);
}
