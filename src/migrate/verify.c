#include "migrate/verify.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/serial.h"
#include "migrate/channel.h"
#include "migrate/hello.h"
#include "migrate/ram.h"
#include "migrate/state.h"
#include "vmm/vm.h"

struct verify_run {
    struct mig_hello hello;
    bool have_hello, ended;
    uint64_t npages;
    struct devstate_registry reg; /* what a VM of this HELLO registers */
    struct state_intake intake;
    struct ram_batch batch;
};

/* Bytes of a message in memory, taken in order (ram_read_fn). */
struct msg_reader {
    const uint8_t *p;
};

static int msg_take(void *ctx, void *dst, size_t n, struct err *e)
{
    struct msg_reader *m = ctx;
    (void)e; /* the length checks come first: the bytes are there */
    memcpy(dst, m->p, n);
    m->p += n;
    return 0;
}

static int verify_ram(struct verify_run *r, const uint8_t *p, uint32_t len,
                      struct mig_stream_summary *sum, struct err *e)
{
    static __thread const void *page[MIG_RAM_MAX_PAGES];
    struct ram_batch *b = &r->batch;
    struct msg_reader m = {p};
    int rc = ram_batch_read(b, len, r->npages, msg_take, &m, e);
    if (rc)
        return rc;
    for (uint32_t i = 0; i < b->nonzero; i++)
        page[i] = m.p + (size_t)i * GUEST_PAGE_SIZE;
    if ((r->hello.features & MIG_F_PAGE_CRC) &&
        (rc = ram_batch_check_crc(b, 0, b->nonzero, page, e)))
        return rc;
    sum->pages += b->nonzero;
    sum->zero_pages += b->count - b->nonzero;
    return 0;
}

/* The serial port's load needs neither KVM nor guest RAM: its own checks
 * run on a scratch device. The other sections' loads need the host. */
static int verify_serial(const struct state_section *s, struct err *e)
{
    struct serial *uart = calloc(1, sizeof(*uart));
    if (!uart)
        return err_set(e, ENOMEM, "out of memory");
    pthread_mutex_init(&uart->lock, NULL);
    struct devstate_entry scratch = {&serial_state_ops, s->instance, uart};
    int rc = state_load(&scratch, s, e);
    pthread_mutex_destroy(&uart->lock);
    free(uart);
    return rc;
}

static int verify_section(struct verify_run *r, const uint8_t *p, uint32_t len,
                          struct mig_stream_summary *sum, struct err *e)
{
    struct state_section s;
    const struct devstate_entry *d;
    int rc = state_parse(p, len, &s, e);
    if (!rc)
        rc = state_admit(&r->intake, &s, &d, e);
    if (!rc && d->ops == &serial_state_ops)
        rc = verify_serial(&s, e);
    if (!rc)
        sum->sections++;
    return rc;
}

static int verify_end(struct verify_run *r, struct err *e)
{
    int rc = state_intake_complete(&r->intake, e);
    r->ended = !rc;
    return rc;
}

static int verify_msg(struct verify_run *r, const struct mig_hdr *h, const uint8_t *p,
                      struct mig_stream_summary *sum, struct err *e)
{
    if (!r->have_hello) {
        if (h->type != MIG_HELLO)
            return err_set(e, EPROTO, "expected HELLO, got %s", mig_type_name(h->type));
        int rc = hello_decode(p, h->length, &r->hello, e);
        if (!rc)
            rc = vm_register_sections(&r->reg, NULL, r->hello.cpus, r->hello.ndisks,
                                      r->hello.nnets, e);
        if (rc)
            return rc;
        state_intake_init(&r->intake, &r->reg);
        r->have_hello = true;
        r->hello.features &= MIG_F_KNOWN;
        r->npages = r->hello.memory / GUEST_PAGE_SIZE;
        sum->memory = r->hello.memory;
        sum->cpus = r->hello.cpus;
        sum->ndisks = r->hello.ndisks;
        sum->features = r->hello.features;
        return 0;
    }
    if (h->type == MIG_ERROR)
        return err_set(e, EREMOTEIO, "source: %.*s", (int)h->length, (const char *)p);
    if (r->ended) {
        if (h->type != MIG_COMMIT)
            return err_set(e, EPROTO, "expected COMMIT, got %s", mig_type_name(h->type));
        sum->committed = true;
        return 0;
    }
    switch (h->type) {
    case MIG_RAM: return verify_ram(r, p, h->length, sum, e);
    case MIG_SECTION: return verify_section(r, p, h->length, sum, e);
    case MIG_END: return verify_end(r, e);
    case MIG_PAUSING:
        if (r->hello.features & MIG_F_PAUSING)
            return 0;
        /* fall through */
    default:
        return err_set(e, EPROTO, "unexpected %s message in the stream",
                       mig_type_name(h->type));
    }
}

int mig_stream_verify(const uint8_t *data, size_t len, struct mig_stream_summary *sum,
                      struct err *e)
{
    memset(sum, 0, sizeof(*sum));
    struct verify_run *r = calloc(1, sizeof(*r));
    if (!r)
        return err_set(e, ENOMEM, "out of memory");
    size_t off = 0, index = 0;
    int rc = 0;
    while (!rc && off < len && !sum->committed) {
        struct mig_hdr h;
        struct err inner = {""};
        if (len - off < MIG_HDR_SIZE) {
            rc = err_set(&inner, EPROTO, "header truncated (%zu of %d bytes)", len - off,
                         MIG_HDR_SIZE);
        } else {
            memcpy(&h, data + off, sizeof(h));
            rc = mig_hdr_check(&h, &inner);
            if (!rc && len - off - MIG_HDR_SIZE < h.length)
                rc = err_set(&inner, EPROTO, "%s payload truncated (%zu of %u bytes)",
                             mig_type_name(h.type), len - off - MIG_HDR_SIZE, h.length);
            if (!rc) {
                sum->messages[h.type]++;
                rc = verify_msg(r, &h, data + off + MIG_HDR_SIZE, sum, &inner);
            }
        }
        if (rc)
            err_set(e, -rc, "message %zu at byte %zu: %s", index, off, inner.msg);
        else
            off += MIG_HDR_SIZE + h.length;
        index++;
    }
    sum->bytes = off;
    if (!rc && !r->have_hello)
        rc = err_set(e, EPROTO, "stream is empty (no HELLO)");
    else if (!rc && !r->ended)
        rc = err_set(e, EPROTO, "stream ends at byte %zu before END (truncated)", off);
    else if (!rc && !sum->committed)
        rc = err_set(e, EPROTO, "stream ends at byte %zu without COMMIT (truncated)", off);
    else if (!rc && off != len)
        rc = err_set(e, EPROTO, "%zu bytes after COMMIT", len - off);
    hello_release(&r->hello);
    free(r);
    return rc;
}
