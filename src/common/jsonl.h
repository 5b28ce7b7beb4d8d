/* JSON lines over a stream socket (the tern-vmm control protocol,
 * docs/control.md): one compact JSON value a line, '\n' at its end. Both
 * ends use this: tern-vmm's control socket and ternd's client of it. */
#ifndef TERN_COMMON_JSONL_H
#define TERN_COMMON_JSONL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define JSONL_LINE_MAX (64 * 1024)

/* Bytes read from a peer, split into lines. */
struct jsonl_buf {
    char *data;   /* JSONL_LINE_MAX + 1 bytes */
    size_t len;   /* bytes held */
    size_t start; /* where the next line begins */
};

int jsonl_buf_init(struct jsonl_buf *b);
void jsonl_buf_release(struct jsonl_buf *b);
/* One read(2) from fd. -EPIPE at the end of the stream, -EMSGSIZE when the
 * buffer holds JSONL_LINE_MAX bytes and no line end, -errno on errors
 * (-EAGAIN and -EINTR included: the caller decides). */
int jsonl_buf_fill(struct jsonl_buf *b, int fd);
/* The next whole line without its '\n', NUL-terminated in place; valid
 * until the next jsonl_buf_fill. NULL when no whole line is held (the next
 * fill moves what is left of a line to the front). Empty lines are
 * returned too. */
char *jsonl_buf_next(struct jsonl_buf *b);
/* True when the buffer is full and holds no line end: a line longer than
 * JSONL_LINE_MAX, which no fill can complete (the next fill would say
 * -EMSGSIZE; this lets a reader refuse it at once). */
bool jsonl_buf_full(const struct jsonl_buf *b);
/* obj as one line, written whole: 0 or -errno. */
int jsonl_send(int fd, json_t *obj);

#endif
