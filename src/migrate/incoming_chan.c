#include "migrate/incoming_chan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "migrate/incoming.h"
#include "migrate/priority.h"
#include "migrate/ram.h"
#include "migrate/tls.h"

#define CHANNEL_TIMEOUT_MS 10000

struct dest_chan {
    struct mig_incoming *in;
    struct mig_channel ch;
    struct ram_receiver rr;
    uint64_t acked;
    pthread_t thread;
    bool running;
    struct mig_priority prio; /* from PAUSING; the thread ends at END */
    int rc;
    struct err err;
};

/* RAM batches up to END; ACKs as on the first connection. */
static int chan_receive(struct dest_chan *c, struct err *e)
{
    for (;;) {
        struct mig_hdr h;
        int rc = mig_recv_hdr(&c->ch, &h, e);
        if (rc)
            return rc;
        if (h.type == MIG_END)
            return 0;
        if (h.type != MIG_RAM)
            return err_set(e, EPROTO, "unexpected %s message on an extra channel",
                           mig_type_name(h.type));
        rc = ram_recv_batch(&c->rr, &h, e);
        if (!rc && (c->in->features & MIG_F_ACKS))
            rc = mig_ack_progress(&c->ch, &c->acked, e);
        if (rc)
            return rc;
    }
}

static void *chan_thread(void *arg)
{
    struct dest_chan *c = arg;
    c->rc = chan_receive(c, &c->err);
    /* a channel stopped after another failure is not the cause */
    if (c->rc && !atomic_load(&c->ch.cancelled)) {
        atomic_store(&c->in->chan_failed, true);
        /* wakes the first connection's receiver (EOF), whose reply to the
         * source can still go out */
        shutdown(c->in->ch.fd, SHUT_RD);
    }
    return NULL;
}

/* One extra connection: TLS as the first, then its CHANNEL message. */
static int chan_accept(struct mig_incoming *in, struct mig_chan_hello *hello, struct err *e)
{
    int fd;
    int rc = mig_accept(in->chan_listen_fd, CHANNEL_TIMEOUT_MS, &fd, e);
    if (rc)
        return rc;
    struct dest_chan *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return err_set(e, ENOMEM, "out of memory");
    }
    c->in = in;
    mig_channel_init(&c->ch, fd);
    in->pending = c;
    if (in->tls_dir && (rc = mig_tls_accept(&c->ch, in->tls_dir, e)))
        return rc;
    uint8_t *msg;
    uint32_t len;
    rc = mig_recv_msg(&c->ch, MIG_CHANNEL, &msg, &len, CHANNEL_TIMEOUT_MS, e);
    if (rc)
        return rc;
    rc = chan_hello_decode(msg, len, hello, e);
    free(msg);
    if (rc)
        return rc;
    if (hello->token != in->token)
        return err_set(e, EPERM, "channel %u: wrong token", hello->index);
    if (in->nchan && hello->count != in->nchan)
        return err_set(e, EPROTO, "channel %u: of %u channels, not %u", hello->index,
                       hello->count, in->nchan);
    if (hello->count > in->max_channels || in->chan[hello->index])
        return err_set(e, EPROTO, "channel %u of %u: unexpected", hello->index,
                       hello->count);
    in->nchan = hello->count;
    in->chan[hello->index] = c;
    in->pending = NULL;
    return 0;
}

static void stop_listening(struct mig_incoming *in)
{
    if (in->chan_listen_fd >= 0)
        close(in->chan_listen_fd);
    in->chan_listen_fd = -1;
}

int dest_chans_open(struct mig_incoming *in, struct vm *vm, struct err *e)
{
    if (!(in->features & MIG_F_CHANNELS)) {
        stop_listening(in);
        return 0;
    }
    struct mig_chan_hello hello;
    int rc = 0;
    /* the first one says how many there are */
    for (unsigned got = 0; !rc && (got == 0 || got + 1 < in->nchan); got++)
        rc = chan_accept(in, &hello, e);
    stop_listening(in);
    for (unsigned i = 1; !rc && i < in->nchan; i++) {
        struct dest_chan *c = in->chan[i];
        rc = ram_receiver_init(&c->rr, vm, &c->ch, in->features & MIG_F_PAGE_CRC, i,
                               in->nchan, e);
        if (!rc && (rc = -pthread_create(&c->thread, NULL, chan_thread, c)))
            err_set(e, -rc, "channel thread: %s", strerror(-rc));
        c->running = !rc;
    }
    if (!rc)
        log_info("migrate", "%u channels", in->nchan);
    return rc;
}

int dest_chans_join(struct mig_incoming *in, struct err *e)
{
    int rc = 0;
    for (unsigned i = 1; i < in->nchan; i++) {
        struct dest_chan *c = in->chan[i];
        if (!c || !c->running)
            continue;
        pthread_join(c->thread, NULL);
        c->running = false;
        if (c->rc && !rc) {
            rc = c->rc;
            err_set(e, -rc, "channel %u: %s", i, c->err.msg);
        }
    }
    return rc;
}

void dest_chans_raise(struct mig_incoming *in)
{
    for (unsigned i = 1; i < in->nchan; i++) {
        struct dest_chan *c = in->chan[i];
        if (c && c->running)
            mig_priority_raise(&c->prio, c->thread);
    }
}

void dest_chans_cancel(struct mig_incoming *in)
{
    for (unsigned i = 1; i < in->nchan; i++)
        if (in->chan[i])
            mig_channel_cancel(&in->chan[i]->ch);
}

void dest_chans_stop(struct mig_incoming *in, struct err *e)
{
    dest_chans_cancel(in);
    struct err first;
    int rc = dest_chans_join(in, &first);
    if (rc && atomic_load(&in->chan_failed))
        *e = first;
}

void dest_chans_release(struct mig_incoming *in)
{
    dest_chans_stop(in, &(struct err){""});
    for (unsigned i = 0; i < MIG_CHANNELS_MAX; i++) {
        struct dest_chan *c = i ? in->chan[i] : in->pending;
        if (!c)
            continue;
        ram_receiver_release(&c->rr);
        mig_channel_release(&c->ch);
        free(c);
    }
    memset(in->chan, 0, sizeof(in->chan));
    in->pending = NULL;
}
