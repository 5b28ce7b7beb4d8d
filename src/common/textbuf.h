/* A text that arrives in pieces, such as an HTTP answer: a struct buf kept
 * NUL-terminated, refused past a size limit. textbuf_write is libcurl's
 * write callback for it (CURLOPT_WRITEFUNCTION, with the textbuf as
 * CURLOPT_WRITEDATA) without common needing curl: its type is plain C. */
#ifndef TERN_COMMON_TEXTBUF_H
#define TERN_COMMON_TEXTBUF_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

struct textbuf {
    struct buf buf;
    size_t max;   /* more than this many bytes is refused */
    bool too_big; /* a piece was refused for the limit */
};

void textbuf_init(struct textbuf *t, size_t max);
void textbuf_release(struct textbuf *t);
/* Empty again (memory kept), for the next answer. */
void textbuf_reset(struct textbuf *t);
/* -EFBIG past max (too_big set), -ENOMEM. */
int textbuf_append(struct textbuf *t, const void *data, size_t len);
/* The text so far; "" when nothing came. */
const char *textbuf_text(const struct textbuf *t);
/* Appends size * nmemb bytes to arg (a struct textbuf *): returns the
 * count taken, 0 on a refusal (libcurl then fails the transfer). */
size_t textbuf_write(char *data, size_t size, size_t nmemb, void *arg);

#endif
