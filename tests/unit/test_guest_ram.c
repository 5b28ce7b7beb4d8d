/* Unit tests for src/common/guest_ram.c: layout, checked translation and the
 * VMM-side dirty bitmap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/guest_ram.h"

#define RAM_SIZE (8ULL << 20)
#define NPAGES (RAM_SIZE / GUEST_PAGE_SIZE)
#define NWORDS (NPAGES / 64)

struct fixture {
    uint8_t *mem;
    struct guest_ram ram;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    f->mem = aligned_alloc(GUEST_PAGE_SIZE, RAM_SIZE);
    if (!f->mem || guest_ram_init(&f->ram, f->mem, RAM_SIZE)) {
        free(f->mem);
        free(f);
        return -1;
    }
    memset(f->mem, 0, RAM_SIZE);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    guest_ram_release(&f->ram);
    free(f->mem);
    free(f);
    return 0;
}

/* Collects all dirty words; returns the number of dirty pages. */
static unsigned collect_all(struct guest_ram *ram, uint64_t *bits)
{
    memset(bits, 0, NWORDS * sizeof(uint64_t));
    guest_ram_collect_dirty(ram, 0, NWORDS, bits);
    unsigned n = 0;
    for (unsigned i = 0; i < NWORDS; i++)
        n += (unsigned)__builtin_popcountll(bits[i]);
    return n;
}

static bool page_bit(const uint64_t *bits, uint64_t page)
{
    return bits[page / 64] >> (page % 64) & 1;
}

static void layout_small(void **state)
{
    struct fixture *f = *state;
    assert_ptr_equal(f->ram.base, f->mem);
    assert_int_equal(f->ram.size, RAM_SIZE);
    assert_int_equal(f->ram.npages, NPAGES);
    assert_int_equal(f->ram.nregions, 1);
    assert_int_equal(f->ram.region[0].gpa, 0);
    assert_int_equal(f->ram.region[0].size, RAM_SIZE);
    assert_ptr_equal(f->ram.region[0].host, f->mem);
    assert_int_equal(f->ram.region[0].page_offset, 0);
    assert_non_null(f->ram.vmm_dirty);
}

static void ptr_bounds(void **state)
{
    struct fixture *f = *state;
    struct guest_ram *ram = &f->ram;
    assert_ptr_equal(guest_ram_ptr(ram, 0, 1), f->mem);
    assert_ptr_equal(guest_ram_ptr(ram, 0, RAM_SIZE), f->mem);
    assert_ptr_equal(guest_ram_ptr(ram, 0x1234, 16), f->mem + 0x1234);
    assert_ptr_equal(guest_ram_ptr(ram, RAM_SIZE - 1, 1), f->mem + RAM_SIZE - 1);
    assert_ptr_equal(guest_ram_ptr(ram, RAM_SIZE - 16, 16), f->mem + RAM_SIZE - 16);
    /* len 0 inside RAM is fine, at the very end it is not */
    assert_ptr_equal(guest_ram_ptr(ram, 100, 0), f->mem + 100);
    assert_null(guest_ram_ptr(ram, RAM_SIZE, 0));
    /* straddling or beyond the end */
    assert_null(guest_ram_ptr(ram, 0, RAM_SIZE + 1));
    assert_null(guest_ram_ptr(ram, RAM_SIZE - 1, 2));
    assert_null(guest_ram_ptr(ram, RAM_SIZE - 15, 16));
    assert_null(guest_ram_ptr(ram, RAM_SIZE, 1));
    assert_null(guest_ram_ptr(ram, RAM_SIZE + 4096, 1));
    /* the MMIO hole and the high region do not exist here */
    assert_null(guest_ram_ptr(ram, GUEST_RAM_LOW_MAX, 1));
    assert_null(guest_ram_ptr(ram, GUEST_RAM_HIGH_START, 1));
    /* overflow of gpa + len */
    assert_null(guest_ram_ptr(ram, UINT64_MAX - 1, 16));
    assert_null(guest_ram_ptr(ram, UINT64_MAX, 1));
    assert_null(guest_ram_ptr(ram, UINT64_MAX, 0));
    assert_null(guest_ram_ptr(ram, 16, UINT64_MAX));
    assert_null(guest_ram_ptr(ram, 16, UINT64_MAX - 15));
    assert_null(guest_ram_ptr(ram, 0, UINT64_MAX));
}

static void offset_small(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(guest_ram_offset(&f->ram, 0), 0);
    assert_int_equal(guest_ram_offset(&f->ram, 0x5000), 0x5000);
    assert_int_equal(guest_ram_offset(&f->ram, RAM_SIZE - 1), RAM_SIZE - 1);
    assert_int_equal(guest_ram_offset(&f->ram, RAM_SIZE), -1);
    assert_int_equal(guest_ram_offset(&f->ram, UINT64_MAX), -1);
}

static void read_write_bounds(void **state)
{
    struct fixture *f = *state;
    uint8_t buf[32], back[32];
    for (unsigned i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(0xa0 + i);
    assert_int_equal(guest_ram_write(&f->ram, 0x3000 - 8, buf, sizeof(buf)), 0);
    assert_memory_equal(f->mem + 0x3000 - 8, buf, sizeof(buf));
    memset(back, 0, sizeof(back));
    assert_int_equal(guest_ram_read(&f->ram, 0x3000 - 8, back, sizeof(back)), 0);
    assert_memory_equal(back, buf, sizeof(buf));

    assert_int_equal(guest_ram_write(&f->ram, RAM_SIZE - 16, buf, 32), -EFAULT);
    assert_int_equal(guest_ram_read(&f->ram, RAM_SIZE - 16, back, 32), -EFAULT);
    assert_int_equal(guest_ram_write(&f->ram, UINT64_MAX - 1, buf, 16), -EFAULT);
    assert_int_equal(guest_ram_read(&f->ram, UINT64_MAX - 1, back, 16), -EFAULT);
    /* nothing written at the tail by the refused write */
    for (uint64_t i = RAM_SIZE - 16; i < RAM_SIZE; i++)
        assert_int_equal(f->mem[i], 0);
    uint64_t bits[NWORDS];
    /* only the two pages of the successful write are dirty */
    assert_int_equal(collect_all(&f->ram, bits), 2);
    assert_true(page_bit(bits, 2));
    assert_true(page_bit(bits, 3));
}

static void dirty_single_page(void **state)
{
    struct fixture *f = *state;
    uint64_t bits[NWORDS];
    assert_int_equal(collect_all(&f->ram, bits), 0);

    uint32_t v = 0xdeadbeef;
    assert_int_equal(guest_ram_write(&f->ram, 5 * GUEST_PAGE_SIZE + 100, &v, 4), 0);
    assert_int_equal(collect_all(&f->ram, bits), 1);
    assert_true(page_bit(bits, 5));
    /* collecting cleared it */
    assert_int_equal(collect_all(&f->ram, bits), 0);

    /* last byte of a page only touches that page */
    uint8_t b = 1;
    assert_int_equal(guest_ram_write(&f->ram, 70 * GUEST_PAGE_SIZE - 1, &b, 1), 0);
    assert_int_equal(collect_all(&f->ram, bits), 1);
    assert_true(page_bit(bits, 69));
    /* the very last page of RAM */
    assert_int_equal(guest_ram_write(&f->ram, RAM_SIZE - 1, &b, 1), 0);
    assert_int_equal(collect_all(&f->ram, bits), 1);
    assert_true(page_bit(bits, NPAGES - 1));
}

static void dirty_crossing(void **state)
{
    struct fixture *f = *state;
    uint64_t bits[NWORDS];
    uint8_t buf[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    /* 4 bytes in page 63 and 4 bytes in page 64: crosses a bitmap word too */
    assert_int_equal(guest_ram_write(&f->ram, 64 * GUEST_PAGE_SIZE - 4, buf, 8), 0);
    assert_int_equal(collect_all(&f->ram, bits), 2);
    assert_true(page_bit(bits, 63));
    assert_true(page_bit(bits, 64));
    assert_int_equal(bits[0], 1ULL << 63);
    assert_int_equal(bits[1], 1ULL);

    /* a 3-page span starting mid-page touches 4 pages */
    static uint8_t big[3 * 4096];
    assert_int_equal(guest_ram_write(&f->ram, 10 * GUEST_PAGE_SIZE + 1, big, sizeof(big)),
                     0);
    assert_int_equal(collect_all(&f->ram, bits), 4);
    for (uint64_t p = 10; p <= 13; p++)
        assert_true(page_bit(bits, p));

    /* mark_dirty directly, exactly page aligned: 2 pages, not 3 */
    guest_ram_mark_dirty(&f->ram, 20 * GUEST_PAGE_SIZE, 2 * GUEST_PAGE_SIZE);
    assert_int_equal(collect_all(&f->ram, bits), 2);
    assert_true(page_bit(bits, 20));
    assert_true(page_bit(bits, 21));
    /* zero length and out-of-RAM addresses mark nothing */
    guest_ram_mark_dirty(&f->ram, 30 * GUEST_PAGE_SIZE, 0);
    guest_ram_mark_dirty(&f->ram, RAM_SIZE, 4096);
    guest_ram_mark_dirty(&f->ram, UINT64_MAX - 1, 16);
    assert_int_equal(collect_all(&f->ram, bits), 0);
    /* a range running past the end is clamped to the last page */
    guest_ram_mark_dirty(&f->ram, RAM_SIZE - 1, 1ULL << 20);
    assert_int_equal(collect_all(&f->ram, bits), 1);
    assert_true(page_bit(bits, NPAGES - 1));
}

static void collect_partial_and_ored(void **state)
{
    struct fixture *f = *state;
    guest_ram_mark_dirty(&f->ram, 1 * GUEST_PAGE_SIZE, 1);   /* word 0 */
    guest_ram_mark_dirty(&f->ram, 130 * GUEST_PAGE_SIZE, 1); /* word 2 bit 2 */
    guest_ram_mark_dirty(&f->ram, 200 * GUEST_PAGE_SIZE, 1); /* word 3 bit 8 */
    uint64_t out[2] = {0x8000000000000000ULL, 0};
    /* collect only words 2..3; the existing bits in out are kept (OR) */
    guest_ram_collect_dirty(&f->ram, 2, 2, out);
    assert_int_equal(out[0], 0x8000000000000000ULL | (1ULL << 2));
    assert_int_equal(out[1], 1ULL << 8);
    /* word 0 is still dirty, words 2..3 are clear */
    uint64_t bits[NWORDS];
    assert_int_equal(collect_all(&f->ram, bits), 1);
    assert_true(page_bit(bits, 1));
    /* asking beyond the bitmap writes nothing past it */
    uint64_t tail[4] = {0};
    guest_ram_mark_dirty(&f->ram, RAM_SIZE - 1, 1);
    guest_ram_collect_dirty(&f->ram, NWORDS - 1, 4, tail);
    assert_int_equal(tail[0], 1ULL << 63);
    assert_int_equal(tail[1], 0);
    assert_int_equal(tail[2], 0);
    guest_ram_collect_dirty(&f->ram, NWORDS + 10, 4, tail);
    assert_int_equal(tail[1], 0);
}

/* Layout of RAM above the 3 GiB low limit: a 5 GiB reservation that is never
 * touched except at the few bytes checked. */
static void layout_split(void **state)
{
    (void)state;
    const uint64_t size = 5ULL << 30;
    uint8_t *mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED)
        skip();
    struct guest_ram ram;
    assert_int_equal(guest_ram_init(&ram, mem, size), 0);
    assert_int_equal(ram.nregions, 2);
    assert_int_equal(ram.npages, size / GUEST_PAGE_SIZE);
    assert_int_equal(ram.region[0].gpa, 0);
    assert_int_equal(ram.region[0].size, GUEST_RAM_LOW_MAX);
    assert_ptr_equal(ram.region[0].host, mem);
    assert_int_equal(ram.region[0].page_offset, 0);
    assert_int_equal(ram.region[1].gpa, GUEST_RAM_HIGH_START);
    assert_int_equal(ram.region[1].size, size - GUEST_RAM_LOW_MAX);
    assert_ptr_equal(ram.region[1].host, mem + GUEST_RAM_LOW_MAX);
    assert_int_equal(ram.region[1].page_offset, GUEST_RAM_LOW_MAX / GUEST_PAGE_SIZE);

    /* offsets */
    assert_int_equal(guest_ram_offset(&ram, GUEST_RAM_LOW_MAX - 1), GUEST_RAM_LOW_MAX - 1);
    assert_int_equal(guest_ram_offset(&ram, GUEST_RAM_LOW_MAX), -1); /* hole */
    assert_int_equal(guest_ram_offset(&ram, 0xfec00000ULL), -1);
    assert_int_equal(guest_ram_offset(&ram, GUEST_RAM_HIGH_START - 1), -1);
    assert_int_equal(guest_ram_offset(&ram, GUEST_RAM_HIGH_START), GUEST_RAM_LOW_MAX);
    assert_int_equal(guest_ram_offset(&ram, GUEST_RAM_HIGH_START + 0x1234),
                     GUEST_RAM_LOW_MAX + 0x1234);
    uint64_t high_end = GUEST_RAM_HIGH_START + (size - GUEST_RAM_LOW_MAX);
    assert_int_equal(guest_ram_offset(&ram, high_end - 1), (int64_t)size - 1);
    assert_int_equal(guest_ram_offset(&ram, high_end), -1);

    /* pointers never span the hole */
    assert_ptr_equal(guest_ram_ptr(&ram, GUEST_RAM_LOW_MAX - 8, 8),
                     mem + GUEST_RAM_LOW_MAX - 8);
    assert_null(guest_ram_ptr(&ram, GUEST_RAM_LOW_MAX - 8, 16));
    assert_null(guest_ram_ptr(&ram, GUEST_RAM_LOW_MAX, 0));
    assert_null(guest_ram_ptr(&ram, GUEST_RAM_HIGH_START - 8, 16));
    assert_ptr_equal(guest_ram_ptr(&ram, GUEST_RAM_HIGH_START, 16),
                     mem + GUEST_RAM_LOW_MAX);
    assert_ptr_equal(guest_ram_ptr(&ram, high_end - 16, 16), mem + size - 16);
    assert_null(guest_ram_ptr(&ram, high_end - 16, 17));
    assert_null(guest_ram_ptr(&ram, high_end, 0));

    /* a write in the high region lands at the right host offset and dirties
     * the page in RAM offset order */
    uint32_t v = 0xcafef00d;
    assert_int_equal(guest_ram_write(&ram, GUEST_RAM_HIGH_START + 0x2000, &v, 4), 0);
    assert_memory_equal(mem + GUEST_RAM_LOW_MAX + 0x2000, &v, 4);
    uint64_t page = (GUEST_RAM_LOW_MAX + 0x2000) / GUEST_PAGE_SIZE;
    uint64_t word = 0;
    guest_ram_collect_dirty(&ram, page / 64, 1, &word);
    assert_int_equal(word, 1ULL << (page % 64));
    guest_ram_release(&ram);
    munmap(mem, size);
}

static void layout_exactly_low_max(void **state)
{
    (void)state;
    /* Layout only: the fake base is never dereferenced. */
    uint8_t *fake = (uint8_t *)(uintptr_t)0x10000000;
    struct guest_ram ram;
    assert_int_equal(guest_ram_init(&ram, fake, GUEST_RAM_LOW_MAX), 0);
    assert_int_equal(ram.nregions, 1);
    assert_int_equal(ram.region[0].size, GUEST_RAM_LOW_MAX);
    assert_null(guest_ram_ptr(&ram, GUEST_RAM_HIGH_START, 1));
    guest_ram_release(&ram);

    assert_int_equal(guest_ram_init(&ram, fake, GUEST_RAM_LOW_MAX + GUEST_PAGE_SIZE), 0);
    assert_int_equal(ram.nregions, 2);
    assert_int_equal(ram.region[1].gpa, GUEST_RAM_HIGH_START);
    assert_int_equal(ram.region[1].size, GUEST_PAGE_SIZE);
    assert_ptr_equal(guest_ram_ptr(&ram, GUEST_RAM_HIGH_START, GUEST_PAGE_SIZE),
                     fake + GUEST_RAM_LOW_MAX);
    assert_null(guest_ram_ptr(&ram, GUEST_RAM_HIGH_START, GUEST_PAGE_SIZE + 1));
    guest_ram_release(&ram);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(layout_small, setup, teardown),
        cmocka_unit_test_setup_teardown(ptr_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(offset_small, setup, teardown),
        cmocka_unit_test_setup_teardown(read_write_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(dirty_single_page, setup, teardown),
        cmocka_unit_test_setup_teardown(dirty_crossing, setup, teardown),
        cmocka_unit_test_setup_teardown(collect_partial_and_ored, setup, teardown),
        cmocka_unit_test(layout_split),
        cmocka_unit_test(layout_exactly_low_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
