#include "common/buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b)
{
    memset(b, 0, sizeof(*b));
}

void buf_release(struct buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    b->oom = false;
}

int buf_reserve(struct buf *b, size_t extra)
{
    if (b->oom)
        return -ENOMEM;
    if (extra <= b->cap - b->len)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra) {
        if (cap > SIZE_MAX / 2) {
            b->oom = true;
            return -ENOMEM;
        }
        cap *= 2;
    }
    uint8_t *data = realloc(b->data, cap);
    if (!data) {
        b->oom = true;
        return -ENOMEM;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

void buf_put(struct buf *b, const void *src, size_t len)
{
    if (len == 0 || buf_reserve(b, len))
        return;
    memcpy(b->data + b->len, src, len);
    b->len += len;
}

/* x86 is little-endian: the wire order is the memory order */
void buf_put_fields(struct buf *b, const void *obj, const struct buf_field *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf_put(b, (const uint8_t *)obj + f[i].offset, f[i].size);
}

void buf_put_u8(struct buf *b, uint8_t v)
{
    buf_put(b, &v, 1);
}
void buf_put_u16(struct buf *b, uint16_t v)
{
    buf_put(b, &v, 2);
}
void buf_put_u32(struct buf *b, uint32_t v)
{
    buf_put(b, &v, 4);
}
void buf_put_u64(struct buf *b, uint64_t v)
{
    buf_put(b, &v, 8);
}

void buf_put_blob(struct buf *b, const void *src, uint32_t len)
{
    buf_put_u32(b, len);
    buf_put(b, src, len);
}

void buf_put_str(struct buf *b, const char *s)
{
    buf_put_blob(b, s, (uint32_t)strlen(s));
}

void reader_init(struct reader *r, const void *data, size_t len)
{
    r->data = data;
    r->len = len;
    r->pos = 0;
    r->bad = false;
}

const uint8_t *reader_take(struct reader *r, size_t len)
{
    if (r->bad || len > r->len - r->pos) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->data + r->pos;
    r->pos += len;
    return p;
}

void reader_copy(struct reader *r, void *dst, size_t len)
{
    const uint8_t *p = reader_take(r, len);
    if (p)
        memcpy(dst, p, len);
    else
        memset(dst, 0, len);
}

uint8_t reader_u8(struct reader *r)
{
    uint8_t v;
    reader_copy(r, &v, 1);
    return v;
}
uint16_t reader_u16(struct reader *r)
{
    uint16_t v;
    reader_copy(r, &v, 2);
    return v;
}
uint32_t reader_u32(struct reader *r)
{
    uint32_t v;
    reader_copy(r, &v, 4);
    return v;
}
uint64_t reader_u64(struct reader *r)
{
    uint64_t v;
    reader_copy(r, &v, 8);
    return v;
}

const uint8_t *reader_blob(struct reader *r, uint32_t max, uint32_t *len)
{
    *len = reader_u32(r);
    if (*len > max) {
        r->bad = true;
        *len = 0;
        return NULL;
    }
    return reader_take(r, *len);
}

void reader_str(struct reader *r, char *dst, size_t cap)
{
    if (cap == 0) {
        r->bad = true;
        return;
    }
    uint32_t len;
    const uint8_t *p = reader_blob(r, (uint32_t)(cap - 1), &len);
    if (p)
        memcpy(dst, p, len);
    dst[p ? len : 0] = '\0';
}

void reader_fields(struct reader *r, void *obj, const struct buf_field *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        reader_copy(r, (uint8_t *)obj + f[i].offset, f[i].size);
}

size_t reader_left(const struct reader *r)
{
    return r->bad ? 0 : r->len - r->pos;
}

int reader_finish(const struct reader *r)
{
    return r->bad || r->pos != r->len ? -EINVAL : 0;
}
