#include "common/textbuf.h"

#include <errno.h>
#include <string.h>

void textbuf_init(struct textbuf *t, size_t max)
{
    buf_init(&t->buf);
    t->max = max;
    t->too_big = false;
}

void textbuf_release(struct textbuf *t)
{
    buf_release(&t->buf);
    t->too_big = false;
}

void textbuf_reset(struct textbuf *t)
{
    buf_reset(&t->buf);
    t->too_big = false;
}

int textbuf_append(struct textbuf *t, const void *data, size_t len)
{
    struct buf *b = &t->buf;
    if (len > t->max || b->len > t->max - len) {
        t->too_big = true;
        return -EFBIG;
    }
    if (buf_reserve(b, len + 1)) /* room for the NUL after it */
        return -ENOMEM;
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

const char *textbuf_text(const struct textbuf *t)
{
    return t->buf.len ? (const char *)t->buf.data : "";
}

size_t textbuf_write(char *data, size_t size, size_t nmemb, void *arg)
{
    size_t n = size * nmemb;
    return textbuf_append(arg, data, n) ? 0 : n;
}
