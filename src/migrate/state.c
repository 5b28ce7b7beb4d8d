#include "migrate/state.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/crc32c.h"

static int save_section(const struct devstate_entry *d, struct buf *data, struct buf *out,
                        struct err *e)
{
    buf_reset(data);
    int rc = d->ops->save(d->opaque, data, e);
    if (rc)
        return rc;
    size_t nlen = strlen(d->ops->name);
    buf_put_u32(out, (uint32_t)(1 + nlen + 16 + data->len));
    buf_put_u8(out, (uint8_t)nlen);
    buf_put(out, d->ops->name, nlen);
    buf_put_u32(out, d->instance);
    buf_put_u32(out, d->ops->version);
    buf_put_u32(out, (uint32_t)data->len);
    buf_put_u32(out, crc32c(0, data->data, data->len));
    buf_put(out, data->data, data->len);
    if (data->oom || out->oom)
        return err_set(e, ENOMEM, "section '%s': out of memory", d->ops->name);
    return 0;
}

int state_save_all(const struct devstate_registry *reg, struct buf *out, struct err *e)
{
    struct buf data;
    buf_init(&data);
    int rc = 0;
    for (unsigned i = 0; i < reg->count && !rc; i++)
        rc = save_section(&reg->entry[i], &data, out, e);
    buf_release(&data);
    return rc;
}

int state_send_saved(const struct buf *saved, struct mig_channel *ch, struct err *e)
{
    struct reader r;
    reader_init(&r, saved->data, saved->len);
    while (reader_left(&r)) {
        uint32_t len;
        const uint8_t *msg = reader_blob(&r, mig_max_length(MIG_SECTION), &len);
        if (!msg)
            return err_set(e, EMSGSIZE, "saved state section too large");
        int rc = mig_send_buf(ch, MIG_SECTION, msg, len, e);
        if (rc)
            return rc;
    }
    return 0;
}

static bool name_ok(const char *name)
{
    if (!*name)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
              *p == '_'))
            return false;
    return true;
}

int state_parse(const uint8_t *msg, uint32_t len, struct state_section *s, struct err *e)
{
    struct reader r;
    reader_init(&r, msg, len);
    uint8_t nlen = reader_u8(&r);
    if (nlen > MIG_SECTION_NAME_MAX)
        return err_set(e, EPROTO, "section name of %u bytes is too long", nlen);
    reader_copy(&r, s->name, nlen);
    s->name[nlen] = '\0';
    s->instance = reader_u32(&r);
    s->version = reader_u32(&r);
    s->length = reader_u32(&r);
    uint32_t crc = reader_u32(&r);
    if (r.bad)
        return err_set(e, EPROTO, "section header truncated");
    /* strlen: a NUL inside the name would otherwise cut it short unseen */
    if (strlen(s->name) != nlen || !name_ok(s->name))
        return err_set(e, EPROTO, "section name is not [a-z0-9_-]+");
    if (s->length != reader_left(&r))
        return err_set(e, EPROTO,
                       "section '%s' length %u does not match its "
                       "message (%zu bytes left)",
                       s->name, s->length, reader_left(&r));
    s->data = reader_take(&r, s->length);
    if (crc32c(0, s->data, s->length) != crc)
        return err_set(e, EPROTO, "section '%s' instance %u: crc mismatch", s->name,
                       s->instance);
    return 0;
}

void state_intake_init(struct state_intake *in, const struct devstate_registry *reg)
{
    memset(in, 0, sizeof(*in));
    in->reg = reg;
}

int state_admit(struct state_intake *in, const struct state_section *s,
                const struct devstate_entry **d, struct err *e)
{
    *d = devstate_find(in->reg, s->name, s->instance);
    if (!*d)
        return err_set(e, EPROTO, "section '%s' instance %u: no such device here", s->name,
                       s->instance);
    bool *seen = &in->seen[*d - in->reg->entry];
    if (*seen)
        return err_set(e, EPROTO, "section '%s' instance %u sent twice", s->name,
                       s->instance);
    if (s->version == 0)
        return err_set(e, EPROTO, "section '%s' version 0 is invalid", s->name);
    if (s->version > (*d)->ops->version)
        return err_set(e, EPROTO, "section '%s' version %u > supported %u", s->name,
                       s->version, (*d)->ops->version);
    *seen = true;
    return 0;
}

int state_load(const struct devstate_entry *d, const struct state_section *s, struct err *e)
{
    struct reader r;
    reader_init(&r, s->data, s->length);
    struct err inner = {""};
    int rc = d->ops->load(d->opaque, &r, s->version, &inner);
    if (rc)
        return err_set(e, -rc, "section '%s' instance %u: %s", s->name, s->instance,
                       inner.msg[0] ? inner.msg : "refused");
    return 0;
}

int state_intake_complete(const struct state_intake *in, struct err *e)
{
    for (unsigned i = 0; i < in->reg->count; i++)
        if (!in->seen[i])
            return err_set(e, EPROTO, "stream ended without section '%s' instance %u",
                           in->reg->entry[i].ops->name, in->reg->entry[i].instance);
    return 0;
}
