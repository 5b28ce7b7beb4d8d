/* Growable byte buffer with little-endian writers, and a bounds-checked
 * reader for bytes that came from the wire or from saved state: every get
 * fails (and keeps failing) once the data runs out, so a decoder checks the
 * reader's error once at the end instead of after each field. */
#ifndef TERN_COMMON_BUF_H
#define TERN_COMMON_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    bool oom; /* an allocation failed; the contents are incomplete */
};

void buf_init(struct buf *b);
void buf_release(struct buf *b);
void buf_reset(struct buf *b);
int buf_reserve(struct buf *b, size_t extra);
void buf_put(struct buf *b, const void *src, size_t len);
void buf_put_u8(struct buf *b, uint8_t v);
void buf_put_u16(struct buf *b, uint16_t v);
void buf_put_u32(struct buf *b, uint32_t v);
void buf_put_u64(struct buf *b, uint64_t v);
/* u32 length then the bytes. */
void buf_put_blob(struct buf *b, const void *src, uint32_t len);
void buf_put_str(struct buf *b, const char *s);

/* A struct member saved as its bytes in the host's (little-endian) order.
 * A table of them in wire order serves both the save and the load of a
 * fixed layout, so the two cannot disagree on it. */
struct buf_field {
    size_t offset;
    size_t size;
};
#define BUF_FIELD(type, member)                             \
    {                                                       \
        offsetof(type, member), sizeof(((type *)0)->member) \
    }
#define BUF_FIELDS(table) (table), (sizeof(table) / sizeof((table)[0]))

void buf_put_fields(struct buf *b, const void *obj, const struct buf_field *f, size_t n);

struct reader {
    const uint8_t *data;
    size_t len;
    size_t pos;
    bool bad; /* read past the end, or a check failed */
};

void reader_init(struct reader *r, const void *data, size_t len);
uint8_t reader_u8(struct reader *r);
uint16_t reader_u16(struct reader *r);
uint32_t reader_u32(struct reader *r);
uint64_t reader_u64(struct reader *r);
/* Copies len bytes out; zero-fills on failure. */
void reader_copy(struct reader *r, void *dst, size_t len);
/* Pointer to len bytes in place, or NULL. */
const uint8_t *reader_take(struct reader *r, size_t len);
/* u32 length, at most max, then the bytes in place. */
const uint8_t *reader_blob(struct reader *r, uint32_t max, uint32_t *len);
/* Length-prefixed string copied into dst (NUL-terminated, at most cap-1). */
void reader_str(struct reader *r, char *dst, size_t cap);
/* The members of buf_put_fields back into obj (zeroed when data runs out). */
void reader_fields(struct reader *r, void *obj, const struct buf_field *f, size_t n);
size_t reader_left(const struct reader *r);
/* 0 when everything read was there and nothing is left over. */
int reader_finish(const struct reader *r);

#endif
