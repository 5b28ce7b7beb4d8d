/* Unit tests for src/migrate/state.c and src/common/devstate.c: a registry of
 * two toy devices saved, sent as SECTION messages over a socketpair, parsed
 * and loaded on the other side; then hostile sections, each refused by name
 * or reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/devstate.h"
#include "migrate/state.h"

/* ---- two toy devices ---- */

/* "toy-a", version 2: u32 a, u64 b, string label (version 1 has no label). */
struct toy_a {
    uint32_t a;
    uint64_t b;
    char label[16];
    unsigned loads;
};

static int toy_a_save(void *opaque, struct buf *out, struct err *e)
{
    (void)e;
    struct toy_a *t = opaque;
    buf_put_u32(out, t->a);
    buf_put_u64(out, t->b);
    buf_put_str(out, t->label);
    return 0;
}

static int toy_a_load(void *opaque, struct reader *in, uint32_t version, struct err *e)
{
    struct toy_a *t = opaque;
    uint32_t a = reader_u32(in);
    uint64_t b = reader_u64(in);
    char label[sizeof(t->label)] = "";
    if (version >= 2)
        reader_str(in, label, sizeof(label));
    if (reader_finish(in))
        return err_set(e, EINVAL, "toy-a data malformed");
    if (a > 1000000)
        return err_set(e, ERANGE, "toy-a value %u out of range", a);
    t->a = a;
    t->b = b;
    strcpy(t->label, label);
    t->loads++;
    return 0;
}

static const struct devstate_ops toy_a_ops = {
    .name = "toy-a",
    .version = 2,
    .save = toy_a_save,
    .load = toy_a_load,
};

/* "toy_b", version 1: u16 n, n bytes; refuses silently (no message). */
struct toy_b {
    uint16_t n;
    uint8_t bytes[64];
    unsigned loads;
    int save_error;
};

static int toy_b_save(void *opaque, struct buf *out, struct err *e)
{
    struct toy_b *t = opaque;
    if (t->save_error)
        return err_set(e, t->save_error, "toy_b cannot save");
    buf_put_u16(out, t->n);
    buf_put(out, t->bytes, t->n);
    return 0;
}

static int toy_b_load(void *opaque, struct reader *in, uint32_t version, struct err *e)
{
    (void)version;
    (void)e;
    struct toy_b *t = opaque;
    uint16_t n = reader_u16(in);
    if (in->bad || n > sizeof(t->bytes))
        return -EINVAL;
    const uint8_t *p = reader_take(in, n);
    if (!p || reader_finish(in))
        return -EINVAL;
    t->n = n;
    memcpy(t->bytes, p, n);
    t->loads++;
    return 0;
}

static const struct devstate_ops toy_b_ops = {
    .name = "toy_b",
    .version = 1,
    .save = toy_b_save,
    .load = toy_b_load,
};

struct world {
    struct devstate_registry reg;
    struct toy_a a;
    struct toy_b b0, b1;
};

static void world_init(struct world *w, bool filled)
{
    memset(w, 0, sizeof(*w));
    devstate_registry_init(&w->reg);
    assert_int_equal(devstate_register(&w->reg, &toy_a_ops, 0, &w->a), 0);
    assert_int_equal(devstate_register(&w->reg, &toy_b_ops, 0, &w->b0), 0);
    assert_int_equal(devstate_register(&w->reg, &toy_b_ops, 1, &w->b1), 0);
    if (!filled)
        return;
    w->a.a = 4242;
    w->a.b = 0xfedcba9876543210ULL;
    strcpy(w->a.label, "hello toy");
    w->b0.n = 5;
    memcpy(w->b0.bytes, "\x01\x02\x03\x04\x05", 5);
    w->b1.n = 64;
    for (int i = 0; i < 64; i++)
        w->b1.bytes[i] = (uint8_t)(0xa0 + i);
}

/* ---- building sections by hand ---- */

struct sec {
    const char *name;
    size_t nlen; /* 0: strlen(name) */
    uint32_t instance, version;
    const void *data;
    uint32_t dlen;
    int length_delta; /* added to the length field */
    uint32_t crc_xor; /* flips crc bits */
};

static void build(struct buf *b, const struct sec *s)
{
    buf_reset(b);
    size_t nlen = s->nlen ? s->nlen : strlen(s->name);
    buf_put_u8(b, (uint8_t)nlen);
    buf_put(b, s->name, nlen);
    buf_put_u32(b, s->instance);
    buf_put_u32(b, s->version);
    buf_put_u32(b, (uint32_t)((int64_t)s->dlen + s->length_delta));
    buf_put_u32(b, crc32c(0, s->data, s->dlen) ^ s->crc_xor);
    buf_put(b, s->data, s->dlen);
    assert_false(b->oom);
}

/* toy-a version 2 data for a = 7, b = 8, label "x" */
static const uint8_t toy_a_data[] = {
    7, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 'x',
};

/* The destination's path for one parsed section: admitted, then loaded. */
static int take(struct state_intake *in, const struct state_section *s, struct err *e)
{
    const struct devstate_entry *d;
    int rc = state_admit(in, s, &d, e);
    return rc ? rc : state_load(d, s, e);
}

/* Parses (on an exactly sized heap copy) and loads one section. */
static int feed(const struct devstate_registry *reg, const struct buf *b, struct err *e)
{
    uint8_t *copy = malloc(b->len ? b->len : 1);
    assert_non_null(copy);
    memcpy(copy, b->data, b->len);
    struct state_section s;
    struct state_intake in;
    state_intake_init(&in, reg);
    int rc = state_parse(copy, (uint32_t)b->len, &s, e);
    if (!rc)
        rc = take(&in, &s, e);
    free(copy);
    return rc;
}

static void assert_refused(const struct devstate_registry *reg, const struct sec *s,
                           const char *want1, const char *want2)
{
    struct buf b;
    buf_init(&b);
    build(&b, s);
    struct err e = {""};
    int rc = feed(reg, &b, &e);
    if (!rc || !strstr(e.msg, want1) || (want2 && !strstr(e.msg, want2)))
        fail_msg("section '%.*s': rc %d, message '%s', wanted '%s'%s%s",
                 (int)(s->nlen ? s->nlen : strlen(s->name)), s->name, rc, e.msg, want1,
                 want2 ? " and " : "", want2 ? want2 : "");
    assert_true(rc < 0);
    buf_release(&b);
}

/* ---- round trip over a socketpair ---- */

static void round_trip(void **state)
{
    (void)state;
    struct world *src = calloc(1, sizeof(*src)), *dst = calloc(1, sizeof(*dst));
    assert_non_null(src);
    assert_non_null(dst);
    world_init(src, true);
    world_init(dst, false);

    struct buf saved;
    buf_init(&saved);
    struct err e = {""};
    assert_int_equal(state_save_all(&src->reg, &saved, &e), 0);
    assert_true(saved.len > 0);

    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    struct mig_channel tx, rx;
    mig_channel_init(&tx, sv[0]);
    mig_channel_init(&rx, sv[1]);
    assert_int_equal(state_send_saved(&saved, &tx, &e), 0);
    /* a terminating END so the reader knows where to stop */
    assert_int_equal(mig_send_buf(&tx, MIG_END, NULL, 0, &e), 0);

    unsigned sections = 0;
    struct state_intake in;
    state_intake_init(&in, &dst->reg);
    for (;;) {
        struct mig_hdr h;
        assert_int_equal(mig_recv_hdr(&rx, &h, &e), 0);
        if (h.type == MIG_END)
            break;
        assert_int_equal(h.type, MIG_SECTION);
        uint8_t *msg = malloc(h.length ? h.length : 1);
        assert_non_null(msg);
        assert_int_equal(mig_recv(&rx, msg, h.length, &e), 0);
        struct state_section s;
        if (state_parse(msg, h.length, &s, &e) || take(&in, &s, &e))
            fail_msg("section %u: %s", sections, e.msg);
        free(msg);
        sections++;
    }
    assert_int_equal(sections, 3);
    assert_int_equal(state_intake_complete(&in, &e), 0);
    assert_int_equal(tx.bytes_out, rx.bytes_in);

    assert_int_equal(dst->a.a, 4242);
    assert_true(dst->a.b == 0xfedcba9876543210ULL);
    assert_string_equal(dst->a.label, "hello toy");
    assert_int_equal(dst->a.loads, 1);
    assert_int_equal(dst->b0.n, 5);
    assert_memory_equal(dst->b0.bytes, src->b0.bytes, 5);
    assert_int_equal(dst->b1.n, 64);
    assert_memory_equal(dst->b1.bytes, src->b1.bytes, 64);
    assert_int_equal(dst->b0.loads, 1);
    assert_int_equal(dst->b1.loads, 1);

    mig_channel_release(&tx);
    mig_channel_release(&rx);
    buf_release(&saved);
    free(src);
    free(dst);
}

/* The saved buffer's layout: u32 length, then a SECTION payload, for each
 * registered entry in order; each payload parses back. */
static void saved_layout(void **state)
{
    (void)state;
    struct world *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    world_init(w, true);
    struct buf saved;
    buf_init(&saved);
    struct err e = {""};
    assert_int_equal(state_save_all(&w->reg, &saved, &e), 0);
    struct reader r;
    reader_init(&r, saved.data, saved.len);
    static const char *const names[] = {"toy-a", "toy_b", "toy_b"};
    static const uint32_t versions[] = {2, 1, 1};
    for (unsigned i = 0; i < 3; i++) {
        uint32_t len;
        const uint8_t *p = reader_blob(&r, 1U << 20, &len);
        assert_non_null(p);
        struct state_section s;
        assert_int_equal(state_parse(p, len, &s, &e), 0);
        assert_string_equal(s.name, names[i]);
        assert_int_equal(s.instance, i == 2 ? 1 : 0);
        assert_int_equal(s.version, versions[i]);
        assert_int_equal(len, 1 + strlen(names[i]) + 16 + s.length);
    }
    assert_int_equal(reader_finish(&r), 0);

    /* a failing save stops everything and keeps the device's message */
    w->b1.save_error = EIO;
    buf_reset(&saved);
    assert_int_equal(state_save_all(&w->reg, &saved, &e), -EIO);
    assert_non_null(strstr(e.msg, "toy_b cannot save"));
    buf_release(&saved);

    /* an empty registry saves nothing */
    struct devstate_registry empty;
    devstate_registry_init(&empty);
    buf_init(&saved);
    assert_int_equal(state_save_all(&empty, &saved, &e), 0);
    assert_int_equal(saved.len, 0);
    buf_release(&saved);
    free(w);
}

static void send_saved_refuses_garbage(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    struct mig_channel tx;
    mig_channel_init(&tx, sv[0]);
    struct buf saved;
    buf_init(&saved);
    buf_put_u32(&saved, 100); /* says 100 bytes, has 3 */
    buf_put(&saved, "abc", 3);
    struct err e = {""};
    assert_int_equal(state_send_saved(&saved, &tx, &e), -EMSGSIZE);
    assert_true(e.msg[0] != '\0');
    buf_release(&saved);
    mig_channel_release(&tx);
    close(sv[1]);
}

/* ---- refusals ---- */

static void refuse_unknown(void **state)
{
    (void)state;
    struct world *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    world_init(w, false);
    struct sec s = {.name = "nosuchdev",
                    .instance = 0,
                    .version = 1,
                    .data = toy_a_data,
                    .dlen = sizeof(toy_a_data)};
    assert_refused(&w->reg, &s, "'nosuchdev'", "no such device");
    /* a known name with an unknown instance */
    s.name = "toy-a";
    s.instance = 3;
    assert_refused(&w->reg, &s, "'toy-a' instance 3", "no such device");
    /* names are compared whole */
    s.name = "toy";
    s.instance = 0;
    assert_refused(&w->reg, &s, "'toy'", "no such device");
    s.name = "toy-ab";
    assert_refused(&w->reg, &s, "'toy-ab'", "no such device");
    assert_int_equal(w->a.loads, 0);
    free(w);
}

static void refuse_versions(void **state)
{
    (void)state;
    struct world *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    world_init(w, false);
    struct sec s = {.name = "toy-a",
                    .instance = 0,
                    .version = 0,
                    .data = toy_a_data,
                    .dlen = sizeof(toy_a_data)};
    assert_refused(&w->reg, &s, "'toy-a'", "version 0");
    s.version = 3;
    assert_refused(&w->reg, &s, "'toy-a'", "version 3 > supported 2");
    s.version = UINT32_MAX;
    assert_refused(&w->reg, &s, "'toy-a'", "> supported 2");
    assert_int_equal(w->a.loads, 0);

    /* the supported version loads */
    s.version = 2;
    struct buf b;
    buf_init(&b);
    build(&b, &s);
    struct err e = {""};
    assert_int_equal(feed(&w->reg, &b, &e), 0);
    assert_int_equal(w->a.a, 7);
    assert_true(w->a.b == 8);
    assert_string_equal(w->a.label, "x");
    /* an older one too: load() gets the version the section says */
    static const uint8_t v1[] = {9, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0};
    s.version = 1;
    s.data = v1;
    s.dlen = sizeof(v1);
    build(&b, &s);
    assert_int_equal(feed(&w->reg, &b, &e), 0);
    assert_int_equal(w->a.a, 9);
    assert_string_equal(w->a.label, "");
    /* but version 2 data with version 1 is refused by the device (leftover) */
    s.data = toy_a_data;
    s.dlen = sizeof(toy_a_data);
    assert_refused(&w->reg, &s, "'toy-a' instance 0", "toy-a data malformed");
    assert_int_equal(w->a.a, 9); /* untouched by the failed load */
    buf_release(&b);
    free(w);
}

static void refuse_crc(void **state)
{
    (void)state;
    struct world *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    world_init(w, false);
    struct sec s = {.name = "toy-a",
                    .instance = 0,
                    .version = 2,
                    .data = toy_a_data,
                    .dlen = sizeof(toy_a_data)};
    s.crc_xor = 1;
    assert_refused(&w->reg, &s, "'toy-a'", "crc mismatch");

    /* flip each data byte in turn after the crc was computed */
    struct buf b;
    buf_init(&b);
    s.crc_xor = 0;
    build(&b, &s);
    size_t data_off = b.len - sizeof(toy_a_data);
    for (size_t i = data_off; i < b.len; i++) {
        b.data[i] ^= 0x40;
        struct err e = {""};
        assert_int_equal(feed(&w->reg, &b, &e), -EPROTO);
        assert_non_null(strstr(e.msg, "crc mismatch"));
        assert_non_null(strstr(e.msg, "'toy-a'"));
        b.data[i] ^= 0x40;
    }
    assert_int_equal(w->a.loads, 0);
    buf_release(&b);
    free(w);
}

static void refuse_length_field(void **state)
{
    (void)state;
    struct world *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    world_init(w, false);
    struct sec s = {.name = "toy-a",
                    .instance = 0,
                    .version = 2,
                    .data = toy_a_data,
                    .dlen = sizeof(toy_a_data)};
    s.length_delta = 1;
    assert_refused(&w->reg, &s, "'toy-a'", "does not match");
    s.length_delta = -1;
    assert_refused(&w->reg, &s, "'toy-a'", "does not match");
    s.length_delta = -(int)sizeof(toy_a_data);
    assert_refused(&w->reg, &s, "'toy-a'", "does not match");
    s.length_delta = 0x7fffffff;
    assert_refused(&w->reg, &s, "'toy-a'", "does not match");
    assert_int_equal(w->a.loads, 0);

    /* extra bytes after the data: the length field no longer matches */
    struct buf b;
    buf_init(&b);
    s.length_delta = 0;
    build(&b, &s);
    buf_put_u8(&b, 0);
    struct err e = {""};
    assert_int_equal(feed(&w->reg, &b, &e), -EPROTO);
    assert_non_null(strstr(e.msg, "does not match"));
    buf_release(&b);
    free(w);
}

static void refuse_names(void **state)
{
    (void)state;
    struct world *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    world_init(w, false);
    static const char *const bad[] = {
        "Toy-a", "toy a", "toy.a", "toy/a", "toy-a\n", "TOY", "t\xc3\xa9", "%s%n",
    };
    struct sec s = {
        .instance = 0, .version = 2, .data = toy_a_data, .dlen = sizeof(toy_a_data)};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        s.name = bad[i];
        assert_refused(&w->reg, &s, "section name", "[a-z0-9_-]+");
    }
    /* an empty name: length 0 */
    struct buf b;
    buf_init(&b);
    buf_put_u8(&b, 0);
    buf_put_u32(&b, 0);
    buf_put_u32(&b, 1);
    buf_put_u32(&b, 0);
    buf_put_u32(&b, crc32c(0, NULL, 0));
    struct err e = {""};
    assert_int_equal(feed(&w->reg, &b, &e), -EPROTO);
    assert_non_null(strstr(e.msg, "section name"));

    /* a NUL inside the name: "toy-a\0zz" must not pass for "toy-a" */
    s.name = "toy-a\0zz";
    s.nlen = 8;
    assert_refused(&w->reg, &s, "section name", NULL);
    assert_int_equal(w->a.loads, 0);

    /* too long: 32 and 40 bytes refused before anything else is read */
    char name[41];
    memset(name, 'a', sizeof(name) - 1);
    name[40] = '\0';
    s.name = name;
    s.nlen = 0;
    assert_refused(&w->reg, &s, "section name of 40 bytes is too long", NULL);
    name[32] = '\0';
    assert_refused(&w->reg, &s, "section name of 32 bytes is too long", NULL);
    /* 31 is the longest: parses, then is simply unknown here */
    name[31] = '\0';
    assert_refused(&w->reg, &s, name, "no such device");
    /* 255 with hardly any bytes behind it */
    buf_reset(&b);
    buf_put_u8(&b, 255);
    buf_put(&b, "abc", 3);
    assert_int_equal(feed(&w->reg, &b, &e), -EPROTO);
    assert_non_null(strstr(e.msg, "too long"));
    buf_release(&b);
    free(w);
}

/* Every prefix of a valid section fails cleanly (the copy is exactly sized,
 * so ASan sees any read past it). */
static void refuse_truncated(void **state)
{
    (void)state;
    struct world *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    world_init(w, false);
    struct sec s = {.name = "toy-a",
                    .instance = 0,
                    .version = 2,
                    .data = toy_a_data,
                    .dlen = sizeof(toy_a_data)};
    struct buf b;
    buf_init(&b);
    build(&b, &s);
    size_t full = b.len;
    for (size_t n = 0; n < full; n++) {
        b.len = n;
        struct err e = {""};
        int rc = feed(&w->reg, &b, &e);
        if (rc != -EPROTO)
            fail_msg("prefix of %zu bytes: rc %d '%s'", n, rc, e.msg);
        assert_true(e.msg[0] != '\0');
    }
    b.len = full;
    struct err e = {""};
    assert_int_equal(feed(&w->reg, &b, &e), 0);
    assert_int_equal(w->a.loads, 1);
    buf_release(&b);
    free(w);
}

static void device_refusal_named(void **state)
{
    (void)state;
    struct world *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    world_init(w, false);
    /* toy-a refuses a = 2000000 with its own message */
    static const uint8_t big[] = {
        0x80, 0x84, 0x1e, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    };
    struct sec s = {
        .name = "toy-a", .instance = 0, .version = 2, .data = big, .dlen = sizeof(big)};
    struct buf b;
    buf_init(&b);
    build(&b, &s);
    struct err e = {""};
    assert_int_equal(feed(&w->reg, &b, &e), -ERANGE);
    assert_non_null(strstr(e.msg, "'toy-a' instance 0"));
    assert_non_null(strstr(e.msg, "toy-a value 2000000 out of range"));
    assert_int_equal(w->a.loads, 0);

    /* toy_b refuses without a message: "refused" */
    static const uint8_t toolong[] = {65, 0};
    s.name = "toy_b";
    s.instance = 1;
    s.version = 1;
    s.data = toolong;
    s.dlen = sizeof(toolong);
    build(&b, &s);
    assert_int_equal(feed(&w->reg, &b, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "'toy_b' instance 1"));
    assert_non_null(strstr(e.msg, "refused"));
    /* an empty data part */
    s.data = NULL;
    s.dlen = 0;
    build(&b, &s);
    assert_int_equal(feed(&w->reg, &b, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "'toy_b' instance 1"));
    assert_int_equal(w->b1.loads, 0);
    buf_release(&b);
    free(w);
}

/* ---- registry ---- */

static void register_duplicates(void **state)
{
    (void)state;
    struct devstate_registry *reg = malloc(sizeof(*reg));
    assert_non_null(reg);
    devstate_registry_init(reg);
    int x, y;
    assert_int_equal(devstate_register(reg, &toy_a_ops, 0, &x), 0);
    assert_int_equal(devstate_register(reg, &toy_a_ops, 0, &y), -EEXIST);
    /* another ops table with the same name is still a duplicate */
    struct devstate_ops other = toy_a_ops;
    other.version = 9;
    assert_int_equal(devstate_register(reg, &other, 0, &y), -EEXIST);
    assert_int_equal(devstate_register(reg, &toy_a_ops, 1, &y), 0);
    assert_int_equal(devstate_register(reg, &toy_b_ops, 0, &y), 0);
    assert_int_equal(reg->count, 3);
    const struct devstate_entry *d = devstate_find(reg, "toy-a", 0);
    assert_non_null(d);
    assert_ptr_equal(d->opaque, &x);
    d = devstate_find(reg, "toy-a", 1);
    assert_non_null(d);
    assert_ptr_equal(d->opaque, &y);
    assert_null(devstate_find(reg, "toy-a", 2));
    assert_null(devstate_find(reg, "toy", 0));
    assert_null(devstate_find(reg, "", 0));
    free(reg);
}

static void register_capacity(void **state)
{
    (void)state;
    struct devstate_registry *reg = malloc(sizeof(*reg));
    assert_non_null(reg);
    devstate_registry_init(reg);
    for (uint32_t i = 0; i < DEVSTATE_MAX; i++)
        assert_int_equal(devstate_register(reg, &toy_b_ops, i, NULL), 0);
    assert_int_equal(reg->count, DEVSTATE_MAX);
    assert_int_equal(devstate_register(reg, &toy_b_ops, DEVSTATE_MAX, NULL), -ENOSPC);
    assert_int_equal(devstate_register(reg, &toy_a_ops, 0, NULL), -ENOSPC);
    /* a duplicate is still reported as such when full */
    assert_int_equal(devstate_register(reg, &toy_b_ops, 5, NULL), -EEXIST);
    assert_int_equal(reg->count, DEVSTATE_MAX);
    assert_non_null(devstate_find(reg, "toy_b", DEVSTATE_MAX - 1));

    /* a name that does not fit DEVSTATE_NAME_MAX */
    devstate_registry_init(reg);
    char name[DEVSTATE_NAME_MAX + 1];
    memset(name, 'n', DEVSTATE_NAME_MAX);
    name[DEVSTATE_NAME_MAX] = '\0';
    struct devstate_ops longname = toy_b_ops;
    longname.name = name;
    assert_int_equal(devstate_register(reg, &longname, 0, NULL), -ENOSPC);
    name[DEVSTATE_NAME_MAX - 1] = '\0'; /* 31 characters: fits */
    assert_int_equal(devstate_register(reg, &longname, 0, NULL), 0);
    free(reg);
}

/* The longest legal name round-trips through save, parse and load. */
static void longest_name_round_trip(void **state)
{
    (void)state;
    char name[MIG_SECTION_NAME_MAX + 1];
    memset(name, 'z', MIG_SECTION_NAME_MAX);
    name[MIG_SECTION_NAME_MAX] = '\0';
    struct devstate_ops ops = toy_b_ops;
    ops.name = name;
    struct devstate_registry *reg = malloc(sizeof(*reg));
    assert_non_null(reg);
    devstate_registry_init(reg);
    struct toy_b src = {.n = 3, .bytes = {1, 2, 3}}, dst = {0};
    assert_int_equal(devstate_register(reg, &ops, 7, &src), 0);
    struct buf saved;
    buf_init(&saved);
    struct err e = {""};
    assert_int_equal(state_save_all(reg, &saved, &e), 0);
    reg->entry[0].opaque = &dst;
    struct reader r;
    reader_init(&r, saved.data, saved.len);
    uint32_t len;
    const uint8_t *p = reader_blob(&r, 1U << 20, &len);
    assert_non_null(p);
    struct state_section s;
    assert_int_equal(state_parse(p, len, &s, &e), 0);
    assert_string_equal(s.name, name);
    assert_int_equal(s.instance, 7);
    struct state_intake in;
    state_intake_init(&in, reg);
    assert_int_equal(take(&in, &s, &e), 0);
    assert_int_equal(dst.n, 3);
    assert_memory_equal(dst.bytes, src.bytes, 3);
    buf_release(&saved);
    free(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(saved_layout),
        cmocka_unit_test(send_saved_refuses_garbage),
        cmocka_unit_test(refuse_unknown),
        cmocka_unit_test(refuse_versions),
        cmocka_unit_test(refuse_crc),
        cmocka_unit_test(refuse_length_field),
        cmocka_unit_test(refuse_names),
        cmocka_unit_test(refuse_truncated),
        cmocka_unit_test(device_refusal_named),
        cmocka_unit_test(register_duplicates),
        cmocka_unit_test(register_capacity),
        cmocka_unit_test(longest_name_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
