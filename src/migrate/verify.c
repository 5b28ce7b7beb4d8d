#include "migrate/verify.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "devices/serial.h"
#include "migrate/channel.h"
#include "migrate/hello.h"
#include "migrate/ram.h"
#include "migrate/state.h"
#include "vmm/vm.h"

/* What vm.c and vmstate.c register: cpu per vCPU, virtio-blk per disk, the
 * rest once. */
const struct mig_known_section mig_known_sections[] = {
    { "cpu", 1 }, { "irqchip", 1 }, { "pit", 1 }, { "kvmclock", 1 },
    { "serial", 1 }, { "virtio-blk", 1 }, { NULL, 0 },
};

enum { SEC_CPU, SEC_IRQCHIP, SEC_PIT, SEC_KVMCLOCK, SEC_SERIAL, SEC_BLK, SEC_KINDS };

struct verify_run {
    struct mig_hello hello;
    bool have_hello, ended;
    uint64_t npages;
    /* seen[kind][instance] */
    bool seen[SEC_KINDS][VM_MAX_CPUS > HELLO_MAX_DISKS ? VM_MAX_CPUS : HELLO_MAX_DISKS];
};

static unsigned instances(const struct verify_run *r, unsigned kind)
{
    return kind == SEC_CPU ? r->hello.cpus : kind == SEC_BLK ? r->hello.ndisks : 1;
}

static int verify_ram(struct verify_run *r, const uint8_t *p, uint32_t len,
                      struct mig_stream_summary *sum, struct err *e)
{
    static __thread uint64_t entry[MIG_RAM_MAX_PAGES];
    static __thread uint32_t crc[MIG_RAM_MAX_PAGES];
    if (len < 8)
        return err_set(e, EPROTO, "ram: message of %u bytes is truncated", len);
    uint32_t count, flags;
    memcpy(&count, p, 4);
    memcpy(&flags, p + 4, 4);
    if (count == 0 || count > MIG_RAM_MAX_PAGES || flags)
        return err_set(e, EPROTO, "ram: batch of %u pages (flags 0x%x) out of range",
                       count, flags);
    if (len < 8 + (uint64_t)count * 12)
        return err_set(e, EPROTO, "ram: %u entries do not fit %u bytes", count, len);
    memcpy(entry, p + 8, count * 8);
    memcpy(crc, p + 8 + count * 8, count * 4);
    uint32_t nonzero;
    int rc = ram_batch_check(entry, count, r->npages, len, &nonzero, e);
    if (rc)
        return rc;
    const uint8_t *page = p + 8 + count * 12;
    if (r->hello.features & MIG_F_PAGE_CRC)
        for (uint32_t i = 0; i < nonzero; i++)
            if (crc32c(0, page + (size_t)i * GUEST_PAGE_SIZE, GUEST_PAGE_SIZE) != crc[i])
                return err_set(e, EPROTO, "ram: crc mismatch on page 0x%llx",
                               (unsigned long long)(entry[i] & MIG_RAM_PFN_MASK));
    sum->pages += nonzero;
    sum->zero_pages += count - nonzero;
    return 0;
}

static int verify_section(struct verify_run *r, const uint8_t *p, uint32_t len,
                          struct mig_stream_summary *sum, struct err *e)
{
    struct state_section s;
    int rc = state_parse(p, len, &s, e);
    if (rc)
        return rc;
    unsigned kind = 0;
    while (mig_known_sections[kind].name && strcmp(mig_known_sections[kind].name, s.name))
        kind++;
    if (!mig_known_sections[kind].name || s.instance >= instances(r, kind))
        return err_set(e, EPROTO, "section '%s' instance %u: no such device here",
                       s.name, s.instance);
    if (s.version == 0)
        return err_set(e, EPROTO, "section '%s' version 0 is invalid", s.name);
    if (s.version > mig_known_sections[kind].version)
        return err_set(e, EPROTO, "section '%s' version %u > supported %u", s.name,
                       s.version, mig_known_sections[kind].version);
    if (r->seen[kind][s.instance])
        return err_set(e, EPROTO, "section '%s' instance %u sent twice", s.name,
                       s.instance);
    if (kind == SEC_SERIAL) {
        /* the serial port's load needs no KVM: run its own checks on a
         * scratch device */
        struct serial *uart = calloc(1, sizeof(*uart));
        if (!uart)
            return err_set(e, ENOMEM, "out of memory");
        pthread_mutex_init(&uart->lock, NULL);
        struct reader rd;
        reader_init(&rd, s.data, s.length);
        struct err inner = { "" };
        rc = serial_state_ops.load(uart, &rd, s.version, &inner);
        pthread_mutex_destroy(&uart->lock);
        free(uart);
        if (rc)
            return err_set(e, -rc, "section '%s' instance %u: %s", s.name, s.instance,
                           inner.msg[0] ? inner.msg : "refused");
    }
    r->seen[kind][s.instance] = true;
    sum->sections++;
    return 0;
}

static int verify_end(struct verify_run *r, struct err *e)
{
    for (unsigned k = 0; k < SEC_KINDS; k++)
        for (unsigned i = 0; i < instances(r, k); i++)
            if (!r->seen[k][i])
                return err_set(e, EPROTO, "stream ended without section '%s' instance %u",
                               mig_known_sections[k].name, i);
    r->ended = true;
    return 0;
}

static int verify_msg(struct verify_run *r, const struct mig_hdr *h, const uint8_t *p,
                      struct mig_stream_summary *sum, struct err *e)
{
    if (!r->have_hello) {
        if (h->type != MIG_HELLO)
            return err_set(e, EPROTO, "expected HELLO, got %s", mig_type_name(h->type));
        int rc = hello_decode(p, h->length, &r->hello, e);
        if (rc)
            return rc;
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
        struct err inner = { "" };
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
