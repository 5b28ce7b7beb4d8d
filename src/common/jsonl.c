#include "common/jsonl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/sock.h"

int jsonl_buf_init(struct jsonl_buf *b)
{
    b->len = b->start = 0;
    b->data = malloc(JSONL_LINE_MAX + 1);
    return b->data ? 0 : -ENOMEM;
}

void jsonl_buf_release(struct jsonl_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->start = 0;
}

int jsonl_buf_fill(struct jsonl_buf *b, int fd)
{
    if (b->start) { /* lines taken since the last fill: keep only the rest */
        memmove(b->data, b->data + b->start, b->len - b->start);
        b->len -= b->start;
        b->start = 0;
    }
    if (b->len == JSONL_LINE_MAX)
        return -EMSGSIZE;
    ssize_t n = read(fd, b->data + b->len, JSONL_LINE_MAX - b->len);
    if (n == 0)
        return -EPIPE;
    if (n < 0)
        return -errno;
    b->len += (size_t)n;
    return 0;
}

char *jsonl_buf_next(struct jsonl_buf *b)
{
    char *line = b->data + b->start;
    char *nl = memchr(line, '\n', b->len - b->start);
    if (!nl)
        return NULL;
    *nl = '\0';
    b->start = (size_t)(nl + 1 - b->data);
    return line;
}

bool jsonl_buf_full(const struct jsonl_buf *b)
{
    return b->len - b->start == JSONL_LINE_MAX &&
           !memchr(b->data + b->start, '\n', JSONL_LINE_MAX);
}

int jsonl_send(int fd, json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(12));
    if (!text)
        return -ENOMEM;
    size_t len = strlen(text);
    text[len] = '\n'; /* json_dumps leaves room: the NUL becomes the line end */
    int rc = sock_write_all(fd, text, len + 1);
    free(text);
    return rc;
}
