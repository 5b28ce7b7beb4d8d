/* streamedit: lists and mutates recorded migration streams for the bad-stream
 * tests. It parses the framing itself (no checks beyond what it needs), so it
 * can produce every kind of broken stream.
 *
 *   streamedit list FILE                     idx offset type length [section]
 *   streamedit pick FILE CATEGORY N SEED     N lines "OFFSET BIT" inside CATEGORY:
 *       hdr        any header byte of any message
 *       ramhead    the count field of a RAM batch
 *       ramentry   the flag bits (40-63) of a RAM page entry
 *       ramcrc     the crc of a data page
 *       pagedata   page data
 *       sechdr     a SECTION's name/instance/version/length/crc fields
 *       secdata    a SECTION's data
 *       hello      the HELLO payload
 *       any        anywhere
 *   streamedit flip IN OUT OFFSET BIT        flips one bit, nothing else
 *   streamedit EDIT IN OUT ARGS...           re-frames (header length and crc
 *                                            recomputed) after one of:
 *       settype IDX TYPE          message IDX gets another type
 *       setlen IDX LEN            header length field only (payload unchanged,
 *                                 header crc made valid)
 *       ramcount IDX COUNT        page count of RAM message IDX
 *       secname NAME NEW          renames section NAME
 *       secver NAME VERSION       version field of section NAME
 *       seclen NAME LEN           data length field of section NAME
 *       secbyte NAME OFF VAL      sets byte OFF of section NAME's data and
 *                                 makes its crc valid again
 *       dup NAME                  sends section NAME twice
 *       drop NAME                 leaves section NAME out
 *       hello-version MIN MAX     protocol version range in HELLO
 *       hello-replace FROM TO     replaces text in HELLO's json config
 *       insert IDX TYPE           inserts an empty message of TYPE before IDX
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdnoreturn.h>
#include <string.h>

#include "common/crc32c.h"
#include "migrate/protocol.h"

struct msg {
    uint16_t type, flags;
    uint32_t length;  /* header's length field */
    uint8_t *payload; /* payload_len bytes */
    size_t payload_len;
    size_t offset; /* of the header in the input */
    int keep_len;  /* write length as is (setlen) */
};

static struct msg *msgs;
static size_t nmsgs;
static uint8_t *data;
static size_t data_len;

static noreturn void fail(const char *fmt, const char *arg)
{
    fprintf(stderr, "streamedit: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    exit(2);
}

static void load(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail("%s: cannot open", path);
    size_t cap = 1 << 20;
    data = malloc(cap);
    size_t n;
    while ((n = fread(data + data_len, 1, cap - data_len, f)) > 0) {
        data_len += n;
        if (data_len == cap && !(data = realloc(data, cap *= 2)))
            fail("%s: out of memory", path);
    }
    fclose(f);
    size_t off = 0, mcap = 0;
    while (off + MIG_HDR_SIZE <= data_len) {
        struct mig_hdr h;
        memcpy(&h, data + off, sizeof(h));
        if (nmsgs == mcap &&
            !(msgs = realloc(msgs, sizeof(*msgs) * (mcap = mcap * 2 + 64))))
            fail("%s: out of memory", path);
        struct msg *m = &msgs[nmsgs++];
        memset(m, 0, sizeof(*m));
        m->type = h.type;
        m->flags = h.flags;
        m->length = h.length;
        m->offset = off;
        m->payload = data + off + MIG_HDR_SIZE;
        size_t left = data_len - off - MIG_HDR_SIZE;
        m->payload_len = h.length < left ? h.length : left;
        off += MIG_HDR_SIZE + m->payload_len;
    }
}

static void save(const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        fail("%s: cannot create", path);
    for (size_t i = 0; i < nmsgs; i++) {
        struct msg *m = &msgs[i];
        struct mig_hdr h = {MIG_MAGIC, m->type, m->flags,
                            m->keep_len ? m->length : (uint32_t)m->payload_len, 0};
        h.crc = crc32c(0, &h, 12);
        fwrite(&h, sizeof(h), 1, f);
        fwrite(m->payload, 1, m->payload_len, f);
    }
    if (fclose(f))
        fail("%s: write failed", path);
}

static uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static uint64_t rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* name of a SECTION payload into buf */
static const char *sec_name(const struct msg *m, char *buf)
{
    buf[0] = '\0';
    if (m->type != MIG_SECTION || m->payload_len < 1 || m->payload[0] > 31 ||
        m->payload_len < 1u + m->payload[0])
        return buf;
    memcpy(buf, m->payload + 1, m->payload[0]);
    buf[m->payload[0]] = '\0';
    return buf;
}

static size_t find_section(const char *name)
{
    char buf[32];
    for (size_t i = 0; i < nmsgs; i++)
        if (msgs[i].type == MIG_SECTION && strcmp(sec_name(&msgs[i], buf), name) == 0)
            return i;
    fail("no section '%s' in the stream", name);
}

static size_t parse_idx(const char *s)
{
    size_t i = strtoul(s, NULL, 0);
    if (i >= nmsgs)
        fail("message index %s out of range", s);
    return i;
}

static uint8_t *dup_payload(struct msg *m, size_t new_len)
{
    uint8_t *p = calloc(1, new_len ? new_len : 1);
    memcpy(p, m->payload, m->payload_len < new_len ? m->payload_len : new_len);
    m->payload = p;
    m->payload_len = new_len;
    return p;
}

/* ---- pick ---- */

struct range {
    size_t off, len;
    unsigned bit_lo, bit_hi;
};
static struct range *ranges;
static size_t nranges, rcap;

static void add(size_t off, size_t len, unsigned lo, unsigned hi)
{
    if (!len)
        return;
    if (nranges == rcap)
        ranges = realloc(ranges, sizeof(*ranges) * (rcap = rcap * 2 + 256));
    ranges[nranges++] = (struct range){off, len, lo, hi};
}

static void collect(const char *cat)
{
    for (size_t i = 0; i < nmsgs; i++) {
        struct msg *m = &msgs[i];
        size_t p = m->offset + MIG_HDR_SIZE;
        if (strcmp(cat, "hdr") == 0)
            add(m->offset, MIG_HDR_SIZE, 0, 7);
        else if (strcmp(cat, "any") == 0)
            add(m->offset, MIG_HDR_SIZE + m->payload_len, 0, 7);
        else if (strcmp(cat, "hello") == 0 && m->type == MIG_HELLO)
            add(p, m->payload_len, 0, 7);
        else if (m->type == MIG_RAM && m->payload_len >= 8) {
            uint32_t count = rd32(m->payload);
            if (count > MIG_RAM_MAX_PAGES || m->payload_len < 8 + 12ull * count)
                continue;
            uint32_t nonzero = 0;
            for (uint32_t k = 0; k < count; k++)
                nonzero += !(rd64(m->payload + 8 + 8 * k) & MIG_RAM_ZERO);
            if (strcmp(cat, "ramhead") == 0)
                add(p, 4, 0, 7);
            else if (strcmp(cat, "ramentry") == 0)
                for (uint32_t k = 0; k < count; k++)
                    add(p + 8 + 8 * k + 5, 3, 0, 7);
            else if (strcmp(cat, "ramcrc") == 0)
                add(p + 8 + 8 * count, 4 * nonzero, 0, 7);
            else if (strcmp(cat, "pagedata") == 0)
                add(p + 8 + 12 * count, m->payload_len - 8 - 12 * count, 0, 7);
        } else if (m->type == MIG_SECTION && m->payload_len >= 1) {
            size_t hdr = 1 + m->payload[0] + 16;
            if (hdr > m->payload_len)
                continue;
            if (strcmp(cat, "sechdr") == 0)
                add(p, hdr, 0, 7);
            else if (strcmp(cat, "secdata") == 0)
                add(p + hdr, m->payload_len - hdr, 0, 7);
        }
    }
}

static int pick(const char *cat, unsigned n, unsigned seed)
{
    collect(cat);
    size_t total = 0;
    for (size_t i = 0; i < nranges; i++)
        total += ranges[i].len;
    if (!total)
        fail("no bytes in category '%s'", cat);
    srandom(seed);
    for (unsigned k = 0; k < n; k++) {
        size_t x = ((size_t)random() << 31 | (size_t)random()) % total;
        size_t i = 0;
        while (x >= ranges[i].len)
            x -= ranges[i++].len;
        unsigned bit = ranges[i].bit_lo +
                       (unsigned)random() % (ranges[i].bit_hi - ranges[i].bit_lo + 1);
        printf("%zu %u\n", ranges[i].off + x, bit);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        fail("%s", "usage: see tests/tools/streamedit.c");
    const char *op = argv[1];
    if (strcmp(op, "list") == 0) {
        load(argv[2]);
        char buf[32];
        for (size_t i = 0; i < nmsgs; i++)
            printf("%zu %zu %s %u %s\n", i, msgs[i].offset, mig_type_name(msgs[i].type),
                   msgs[i].length, sec_name(&msgs[i], buf));
        return 0;
    }
    if (strcmp(op, "pick") == 0 && argc == 6) {
        load(argv[2]);
        return pick(argv[3], (unsigned)atoi(argv[4]), (unsigned)atoi(argv[5]));
    }
    if (argc < 4)
        fail("%s: needs IN OUT", op);
    load(argv[2]);
    const char *out = argv[3];
    char **a = argv + 4;
    int na = argc - 4;
    if (strcmp(op, "flip") == 0 && na == 2) {
        size_t off = strtoul(a[0], NULL, 0);
        if (off >= data_len)
            fail("offset %s beyond the end", a[0]);
        data[off] ^= (uint8_t)(1u << atoi(a[1]));
        FILE *f = fopen(out, "wb");
        if (!f || fwrite(data, 1, data_len, f) != data_len || fclose(f))
            fail("%s: write failed", out);
        return 0;
    }
    if (strcmp(op, "settype") == 0 && na == 2) {
        msgs[parse_idx(a[0])].type = (uint16_t)strtoul(a[1], NULL, 0);
    } else if (strcmp(op, "setlen") == 0 && na == 2) {
        struct msg *m = &msgs[parse_idx(a[0])];
        m->length = (uint32_t)strtoul(a[1], NULL, 0);
        m->keep_len = 1;
    } else if (strcmp(op, "ramcount") == 0 && na == 2) {
        struct msg *m = &msgs[parse_idx(a[0])];
        if (m->type != MIG_RAM)
            fail("message %s is not RAM", a[0]);
        uint32_t c = (uint32_t)strtoul(a[1], NULL, 0);
        memcpy(dup_payload(m, m->payload_len), &c, 4);
    } else if (strcmp(op, "secname") == 0 && na == 2) {
        struct msg *m = &msgs[find_section(a[0])];
        size_t ol = m->payload[0], nl = strlen(a[1]);
        if (nl > 255)
            fail("name '%s' too long", a[1]);
        uint8_t *p = malloc(m->payload_len - ol + nl);
        p[0] = (uint8_t)nl;
        memcpy(p + 1, a[1], nl);
        memcpy(p + 1 + nl, m->payload + 1 + ol, m->payload_len - 1 - ol);
        m->payload = p;
        m->payload_len = m->payload_len - ol + nl;
    } else if ((strcmp(op, "secver") == 0 || strcmp(op, "seclen") == 0) && na == 2) {
        struct msg *m = &msgs[find_section(a[0])];
        uint32_t v = (uint32_t)strtoul(a[1], NULL, 0);
        size_t at = 1 + m->payload[0] + (op[3] == 'v' ? 4 : 8);
        memcpy(dup_payload(m, m->payload_len) + at, &v, 4);
    } else if (strcmp(op, "secbyte") == 0 && na == 3) {
        struct msg *m = &msgs[find_section(a[0])];
        size_t hdr = 1 + m->payload[0] + 16, off = strtoul(a[1], NULL, 0);
        if (hdr + off >= m->payload_len)
            fail("offset %s beyond the section's data", a[1]);
        uint8_t *p = dup_payload(m, m->payload_len);
        p[hdr + off] = (uint8_t)strtoul(a[2], NULL, 0);
        uint32_t crc = crc32c(0, p + hdr, m->payload_len - hdr);
        memcpy(p + hdr - 4, &crc, 4);
    } else if (strcmp(op, "dup") == 0 && na == 1) {
        size_t i = find_section(a[0]);
        msgs = realloc(msgs, sizeof(*msgs) * (nmsgs + 1));
        memmove(msgs + i + 1, msgs + i, sizeof(*msgs) * (nmsgs - i));
        nmsgs++;
    } else if (strcmp(op, "drop") == 0 && na == 1) {
        size_t i = find_section(a[0]);
        memmove(msgs + i, msgs + i + 1, sizeof(*msgs) * (nmsgs - i - 1));
        nmsgs--;
    } else if (strcmp(op, "insert") == 0 && na == 2) {
        size_t i = parse_idx(a[0]);
        msgs = realloc(msgs, sizeof(*msgs) * (nmsgs + 1));
        memmove(msgs + i + 1, msgs + i, sizeof(*msgs) * (nmsgs - i));
        nmsgs++;
        memset(&msgs[i], 0, sizeof(msgs[i]));
        msgs[i].type = (uint16_t)strtoul(a[1], NULL, 0);
        msgs[i].payload = (uint8_t *)"";
    } else if (strcmp(op, "hello-version") == 0 && na == 2) {
        struct msg *m = &msgs[0];
        if (m->type != MIG_HELLO)
            fail("%s", "the stream does not start with HELLO");
        uint16_t v[2] = {(uint16_t)atoi(a[0]), (uint16_t)atoi(a[1])};
        memcpy(dup_payload(m, m->payload_len), v, 4);
    } else if (strcmp(op, "hello-replace") == 0 && na == 2) {
        struct msg *m = &msgs[0];
        if (m->type != MIG_HELLO || m->payload_len < 20)
            fail("%s", "the stream does not start with HELLO");
        uint32_t clen = rd32(m->payload + 16);
        if (20ull + clen > m->payload_len)
            fail("%s", "HELLO config truncated");
        char *cfg = strndup((char *)m->payload + 20, clen);
        char *at = strstr(cfg, a[0]);
        if (!at)
            fail("'%s' not in the HELLO config", a[0]);
        size_t fl = strlen(a[0]), tl = strlen(a[1]);
        size_t nclen = clen - fl + tl;
        uint8_t *p = malloc(m->payload_len - clen + nclen);
        memcpy(p, m->payload, 16);
        uint32_t v = (uint32_t)nclen;
        memcpy(p + 16, &v, 4);
        size_t pre = (size_t)(at - cfg);
        memcpy(p + 20, cfg, pre);
        memcpy(p + 20 + pre, a[1], tl);
        memcpy(p + 20 + pre + tl, at + fl, clen - pre - fl);
        memcpy(p + 20 + nclen, m->payload + 20 + clen, m->payload_len - 20 - clen);
        m->payload = p;
        m->payload_len = m->payload_len - clen + nclen;
    } else {
        fail("unknown edit '%s' or wrong arguments", op);
    }
    save(out);
    return 0;
}
