/* CRC32C (Castagnoli), the checksum of migration sections and pages. */
#ifndef TERN_COMMON_CRC32C_H
#define TERN_COMMON_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* crc32c of data, continuing from crc (start with 0). */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);
/* CRCs of three separate 4 KiB pages at once: the hardware instruction has a
 * latency of three cycles, so three independent streams fill the pipeline. */
void crc32c_pages3(const void *a, const void *b, const void *c, uint32_t out[3]);
/* Fills out[i] with the crc32c of pages[i] (4096 bytes each). */
void crc32c_pages(const void *const *pages, size_t n, uint32_t *out);

/* Copies n pages from src[i] to dst[i] and returns their crc32c in out[i],
 * reading each page once: the CRC then covers exactly the bytes copied, even
 * if the source pages change meanwhile (a running guest). */
void crc32c_copy_pages(void *const *dst, const void *const *src, size_t n, uint32_t *out);

#endif
