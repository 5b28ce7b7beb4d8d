#include "common/crc32c.h"

#include <stdbool.h>
#include <string.h>

#define POLY 0x82f63b78U
#define PAGE 4096

static uint32_t table[256];
static bool have_sse42;

__attribute__((constructor)) static void crc32c_setup(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
        table[i] = c;
    }
    __builtin_cpu_init();
    have_sse42 = __builtin_cpu_supports("sse4.2");
}

static uint32_t crc32c_soft(uint32_t crc, const uint8_t *p, size_t len)
{
    while (len--)
        crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p,
                                                            size_t len)
{
    uint64_t c = crc;
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
    }
    crc = (uint32_t)c;
    for (; len; p++, len--)
        crc = __builtin_ia32_crc32qi(crc, *p);
    return crc;
}

uint32_t crc32c(uint32_t crc, const void *data, size_t len)
{
    crc = ~crc;
    crc = have_sse42 ? crc32c_hw(crc, data, len) : crc32c_soft(crc, data, len);
    return ~crc;
}

/* Three pages summed side by side (one loop for both public variants):
 * with dst each 8 bytes are also stored where they go, so the crc is of the
 * bytes copied. Inlined with dst a constant, the copy-less variant has no
 * test in its loop. */
__attribute__((target("sse4.2"), always_inline)) static inline void
crc3_hw(const uint8_t *const src[3], uint8_t *const *dst, uint32_t out[3])
{
    uint64_t x = 0xffffffffU, y = 0xffffffffU, z = 0xffffffffU;
    for (size_t i = 0; i < PAGE; i += 8) {
        uint64_t va, vb, vc;
        memcpy(&va, src[0] + i, 8);
        memcpy(&vb, src[1] + i, 8);
        memcpy(&vc, src[2] + i, 8);
        if (dst) {
            memcpy(dst[0] + i, &va, 8);
            memcpy(dst[1] + i, &vb, 8);
            memcpy(dst[2] + i, &vc, 8);
        }
        x = __builtin_ia32_crc32di(x, va);
        y = __builtin_ia32_crc32di(y, vb);
        z = __builtin_ia32_crc32di(z, vc);
    }
    out[0] = ~(uint32_t)x;
    out[1] = ~(uint32_t)y;
    out[2] = ~(uint32_t)z;
}

__attribute__((target("sse4.2"))) static void
crc32c_pages3_hw(const uint8_t *a, const uint8_t *b, const uint8_t *c, uint32_t out[3])
{
    const uint8_t *const src[3] = {a, b, c};
    crc3_hw(src, NULL, out);
}

__attribute__((target("sse4.2"))) static void
copy_crc3_hw(uint8_t *const d[3], const uint8_t *const s[3], uint32_t out[3])
{
    crc3_hw(s, d, out);
}

void crc32c_pages3(const void *a, const void *b, const void *c, uint32_t out[3])
{
    if (have_sse42) {
        crc32c_pages3_hw(a, b, c, out);
        return;
    }
    out[0] = crc32c(0, a, PAGE);
    out[1] = crc32c(0, b, PAGE);
    out[2] = crc32c(0, c, PAGE);
}

void crc32c_pages(const void *const *pages, size_t n, uint32_t *out)
{
    size_t i = 0;
    for (; i + 3 <= n; i += 3)
        crc32c_pages3(pages[i], pages[i + 1], pages[i + 2], out + i);
    for (; i < n; i++)
        out[i] = crc32c(0, pages[i], PAGE);
}

void crc32c_copy_pages(void *const *dst, const void *const *src, size_t n, uint32_t *out)
{
    size_t i = 0;
    if (have_sse42)
        for (; i + 3 <= n; i += 3)
            copy_crc3_hw((uint8_t *const *)dst + i, (const uint8_t *const *)src + i,
                         out + i);
    for (; i < n; i++) {
        memcpy(dst[i], src[i], PAGE);
        out[i] = crc32c(0, dst[i], PAGE);
    }
}
