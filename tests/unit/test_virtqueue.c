/* Unit tests for src/devices/virtqueue.c: valid chains, index wrap, the used
 * ring, and hostile guests. The descriptor table sits at the very end of the
 * RAM buffer so that any unchecked index reads past it (caught under ASan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "devices/virtqueue.h"

#define RAM_SIZE (1ULL << 20)
#define QSIZE 8
#define DESC_GPA (RAM_SIZE - 16 * QSIZE)
#define AVAIL_GPA 0x1000ULL
#define USED_GPA 0x2000ULL
#define DATA_GPA 0x10000ULL

struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct fixture {
    uint8_t *mem;
    struct guest_ram ram;
    struct virtq vq;
    struct virtq_chain chain;
    char why[128];
    uint16_t avail_idx;
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
    f->vq = (struct virtq){.num = QSIZE,
                           .ready = 1,
                           .desc_gpa = DESC_GPA,
                           .avail_gpa = AVAIL_GPA,
                           .used_gpa = USED_GPA};
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

static void set_desc(struct fixture *f, unsigned i, uint64_t addr, uint32_t len,
                     uint16_t flags, uint16_t next)
{
    struct desc d = {addr, len, flags, next};
    memcpy(f->mem + f->vq.desc_gpa + 16 * i, &d, sizeof(d));
}

static void set_avail_idx(struct fixture *f, uint16_t idx)
{
    f->avail_idx = idx;
    memcpy(f->mem + f->vq.avail_gpa + 2, &idx, 2);
}

/* Offers chain `head` in the next avail slot and bumps avail->idx. */
static void offer(struct fixture *f, uint16_t head)
{
    memcpy(f->mem + f->vq.avail_gpa + 4 + 2 * (f->avail_idx % f->vq.num), &head, 2);
    set_avail_idx(f, (uint16_t)(f->avail_idx + 1));
}

static uint16_t rd16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}
static uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* 1 popped, 0 nothing available, or virtq_pop's -errno */
static int pop(struct fixture *f)
{
    f->why[0] = '\0';
    bool popped = true;
    int rc = virtq_pop(&f->vq, &f->ram, &f->chain, &popped, f->why, sizeof(f->why));
    if (rc)
        assert_false(popped);
    return rc ? rc : popped;
}

/* ---- valid chains ---- */

static void empty_queue(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(pop(f), 0);
    assert_int_equal(f->vq.last_avail, 0);
}

static void single_descriptor(void **state)
{
    struct fixture *f = *state;
    set_desc(f, 0, DATA_GPA, 100, 0, 0);
    offer(f, 0);
    assert_int_equal(pop(f), 1);
    assert_int_equal(f->chain.head, 0);
    assert_int_equal(f->chain.nseg, 1);
    assert_int_equal(f->chain.seg[0].gpa, DATA_GPA);
    assert_int_equal(f->chain.seg[0].len, 100);
    assert_false(f->chain.seg[0].writable);
    assert_int_equal(f->chain.readable_len, 100);
    assert_int_equal(f->chain.writable_len, 0);
    assert_int_equal(f->vq.last_avail, 1);
    assert_int_equal(pop(f), 0); /* nothing more */
    assert_int_equal(f->vq.last_avail, 1);
}

static void three_descriptor_chain(void **state)
{
    struct fixture *f = *state;
    /* 5 -> 2 -> 7: header, data, status, as virtio-blk uses them */
    set_desc(f, 5, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 2);
    set_desc(f, 2, DATA_GPA + 0x1000, 512, VIRTQ_DESC_F_NEXT, 7);
    set_desc(f, 7, DATA_GPA + 0x2000, 1, VIRTQ_DESC_F_WRITE, 0);
    offer(f, 5);
    assert_int_equal(pop(f), 1);
    assert_int_equal(f->chain.head, 5);
    assert_int_equal(f->chain.nseg, 3);
    assert_int_equal(f->chain.seg[0].gpa, DATA_GPA);
    assert_int_equal(f->chain.seg[0].len, 16);
    assert_false(f->chain.seg[0].writable);
    assert_int_equal(f->chain.seg[1].gpa, DATA_GPA + 0x1000);
    assert_int_equal(f->chain.seg[1].len, 512);
    assert_false(f->chain.seg[1].writable);
    assert_int_equal(f->chain.seg[2].gpa, DATA_GPA + 0x2000);
    assert_int_equal(f->chain.seg[2].len, 1);
    assert_true(f->chain.seg[2].writable);
    assert_int_equal(f->chain.readable_len, 528);
    assert_int_equal(f->chain.writable_len, 1);
}

static void longest_chain(void **state)
{
    struct fixture *f = *state;
    /* all QSIZE descriptors in one chain is legal, not a loop */
    for (unsigned i = 0; i < QSIZE; i++)
        set_desc(f, i, DATA_GPA + 64 * i, 64,
                 (uint16_t)((i + 1 < QSIZE ? VIRTQ_DESC_F_NEXT : 0) |
                            (i >= 4 ? VIRTQ_DESC_F_WRITE : 0)),
                 (uint16_t)(i + 1));
    offer(f, 0);
    assert_int_equal(pop(f), 1);
    assert_int_equal(f->chain.nseg, QSIZE);
    assert_int_equal(f->chain.readable_len, 4 * 64);
    assert_int_equal(f->chain.writable_len, 4 * 64);
}

static void several_in_order(void **state)
{
    struct fixture *f = *state;
    set_desc(f, 1, DATA_GPA, 10, 0, 0);
    set_desc(f, 3, DATA_GPA + 10, 20, VIRTQ_DESC_F_WRITE, 0);
    set_desc(f, 6, DATA_GPA + 30, 30, 0, 0);
    offer(f, 3);
    offer(f, 1);
    offer(f, 6);
    uint16_t want[] = {3, 1, 6};
    uint32_t lens[] = {20, 10, 30};
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(pop(f), 1);
        assert_int_equal(f->chain.head, want[i]);
        assert_int_equal(f->chain.nseg, 1); /* reset between pops */
        assert_int_equal(f->chain.readable_len + f->chain.writable_len, lens[i]);
    }
    assert_int_equal(pop(f), 0);
}

static void avail_index_wraps(void **state)
{
    struct fixture *f = *state;
    f->vq.last_avail = 65535;
    set_avail_idx(f, 65535);
    set_desc(f, 4, DATA_GPA, 8, 0, 0);
    set_desc(f, 2, DATA_GPA + 8, 8, 0, 0);
    offer(f, 4); /* slot 65535 % 8 = 7, idx -> 0 */
    assert_int_equal(f->avail_idx, 0);
    assert_int_equal(rd16(f->mem + AVAIL_GPA + 4 + 2 * 7), 4);
    assert_int_equal(pop(f), 1);
    assert_int_equal(f->chain.head, 4);
    assert_int_equal(f->vq.last_avail, 0);
    offer(f, 2); /* slot 0 */
    assert_int_equal(pop(f), 1);
    assert_int_equal(f->chain.head, 2);
    assert_int_equal(f->vq.last_avail, 1);
    assert_int_equal(pop(f), 0);
}

static void avail_exactly_num_ahead(void **state)
{
    struct fixture *f = *state;
    for (unsigned i = 0; i < QSIZE; i++) {
        set_desc(f, i, DATA_GPA, 1, 0, 0);
        offer(f, (uint16_t)i);
    }
    for (unsigned i = 0; i < QSIZE; i++) {
        assert_int_equal(pop(f), 1);
        assert_int_equal(f->chain.head, i);
    }
    assert_int_equal(pop(f), 0);
}

static void push_used(void **state)
{
    struct fixture *f = *state;
    uint64_t w = 0;
    guest_ram_collect_dirty(&f->ram, 0, 1, &w); /* start clean */
    assert_int_equal(virtq_push(&f->vq, &f->ram, 5, 513), 0);
    assert_int_equal(f->vq.used_idx, 1);
    assert_int_equal(rd16(f->mem + USED_GPA + 2), 1);
    assert_int_equal(rd32(f->mem + USED_GPA + 4), 5);
    assert_int_equal(rd32(f->mem + USED_GPA + 8), 513);
    assert_int_equal(rd16(f->mem + USED_GPA), 0); /* flags untouched */
    w = 0;
    guest_ram_collect_dirty(&f->ram, 0, 1, &w);
    assert_int_equal(w, 1ULL << (USED_GPA / GUEST_PAGE_SIZE));

    assert_int_equal(virtq_push(&f->vq, &f->ram, 7, 0), 0);
    assert_int_equal(rd16(f->mem + USED_GPA + 2), 2);
    assert_int_equal(rd32(f->mem + USED_GPA + 12), 7);
    assert_int_equal(rd32(f->mem + USED_GPA + 16), 0);
}

static void push_wraps(void **state)
{
    struct fixture *f = *state;
    f->vq.used_idx = 65535;
    assert_int_equal(virtq_push(&f->vq, &f->ram, 3, 42), 0);
    assert_int_equal(f->vq.used_idx, 0);
    assert_int_equal(rd16(f->mem + USED_GPA + 2), 0);
    /* slot 65535 % 8 = 7 */
    assert_int_equal(rd32(f->mem + USED_GPA + 4 + 8 * 7), 3);
    assert_int_equal(rd32(f->mem + USED_GPA + 4 + 8 * 7 + 4), 42);
    assert_int_equal(virtq_push(&f->vq, &f->ram, 1, 1), 0);
    assert_int_equal(rd32(f->mem + USED_GPA + 4), 1);
    assert_int_equal(rd16(f->mem + USED_GPA + 2), 1);
}

static void push_used_ring_at_end(void **state)
{
    struct fixture *f = *state;
    /* used ring (70 bytes, 4-aligned start) ends 2 bytes before RAM's end */
    f->vq.used_gpa = RAM_SIZE - 72;
    f->vq.desc_gpa = 0x3000;
    assert_int_equal(virtq_validate(&f->vq, &f->ram), 0);
    for (unsigned i = 0; i < 2 * QSIZE; i++)
        assert_int_equal(virtq_push(&f->vq, &f->ram, (uint16_t)i, i), 0);
    assert_int_equal(rd32(f->mem + f->vq.used_gpa + 4 + 8 * 7), 15);
}

static void no_interrupt_flag(void **state)
{
    struct fixture *f = *state;
    assert_false(virtq_no_interrupt(&f->vq, &f->ram));
    uint16_t flags = 1;
    memcpy(f->mem + AVAIL_GPA, &flags, 2);
    assert_true(virtq_no_interrupt(&f->vq, &f->ram));
    flags = 2;
    memcpy(f->mem + AVAIL_GPA, &flags, 2);
    assert_false(virtq_no_interrupt(&f->vq, &f->ram));
    f->vq.avail_gpa = RAM_SIZE; /* not RAM: interrupt anyway, no crash */
    assert_false(virtq_no_interrupt(&f->vq, &f->ram));
}

/* ---- hostile chains ---- */

static void expect_bad(struct fixture *f, const char *fragment)
{
    uint16_t last = f->vq.last_avail;
    uint8_t used_before[6 + 8 * QSIZE];
    memcpy(used_before, f->mem + USED_GPA, sizeof(used_before));
    int rc = pop(f);
    if (rc != -EINVAL)
        fail_msg("pop returned %d, want -EINVAL (why '%s')", rc, f->why);
    if (!f->why[0] || !strstr(f->why, fragment))
        fail_msg("why '%s' lacks '%s'", f->why, fragment);
    assert_int_equal(f->vq.last_avail, last); /* not consumed */
    assert_memory_equal(f->mem + USED_GPA, used_before, sizeof(used_before));
    /* the why buffer is always terminated */
    assert_true(memchr(f->why, '\0', sizeof(f->why)) != NULL);
}

static void bad_head_index(void **state)
{
    struct fixture *f = *state;
    offer(f, QSIZE); /* just past the table, i.e. past the RAM */
    expect_bad(f, "index");
    /* the same again: still refused, nothing consumed */
    expect_bad(f, "index");
    f->vq.last_avail = 0;
    set_avail_idx(f, 0);
    offer(f, 0xffff);
    expect_bad(f, "index");
}

static void bad_next_index(void **state)
{
    struct fixture *f = *state;
    set_desc(f, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, QSIZE);
    offer(f, 0);
    expect_bad(f, "index");
    set_desc(f, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 200);
    expect_bad(f, "index");
}

static void loop_two(void **state)
{
    struct fixture *f = *state;
    set_desc(f, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
    set_desc(f, 1, DATA_GPA + 16, 16, VIRTQ_DESC_F_NEXT, 0);
    offer(f, 0);
    expect_bad(f, "loop");
    assert_true(f->chain.nseg <= QSIZE);
}

static void loop_self(void **state)
{
    struct fixture *f = *state;
    set_desc(f, 3, DATA_GPA, 16, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 3);
    offer(f, 3);
    expect_bad(f, "loop");
}

static void loop_max_queue(void **state)
{
    struct fixture *f = *state;
    /* a 256-entry queue whose chain cycles through every descriptor: the
     * chain's seg array is exactly VIRTQ_MAX_SIZE long */
    f->vq.num = VIRTQ_MAX_SIZE;
    f->vq.desc_gpa = RAM_SIZE - 16 * VIRTQ_MAX_SIZE;
    f->vq.avail_gpa = 0x4000;
    assert_int_equal(virtq_validate(&f->vq, &f->ram), 0);
    for (unsigned i = 0; i < VIRTQ_MAX_SIZE; i++)
        set_desc(f, i, DATA_GPA, 1, VIRTQ_DESC_F_NEXT,
                 (uint16_t)((i + 1) % VIRTQ_MAX_SIZE));
    offer(f, 17);
    assert_int_equal(pop(f), -EINVAL);
    assert_non_null(strstr(f->why, "loop"));
    assert_int_equal(f->chain.nseg, VIRTQ_MAX_SIZE);
}

static void addr_outside_ram(void **state)
{
    struct fixture *f = *state;
    offer(f, 0);
    set_desc(f, 0, RAM_SIZE, 1, 0, 0);
    expect_bad(f, "outside guest ram");
    set_desc(f, 0, RAM_SIZE - 10, 20, 0, 0); /* straddles the end */
    expect_bad(f, "outside guest ram");
    set_desc(f, 0, 0xfec00000ULL, 4, 0, 0);
    expect_bad(f, "outside guest ram");
    /* in the second descriptor of a chain */
    set_desc(f, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
    set_desc(f, 1, 1ULL << 40, 512, VIRTQ_DESC_F_WRITE, 0);
    expect_bad(f, "outside guest ram");
}

static void addr_len_overflow(void **state)
{
    struct fixture *f = *state;
    offer(f, 0);
    set_desc(f, 0, UINT64_MAX - 4, 16, 0, 0);
    expect_bad(f, "outside guest ram");
    set_desc(f, 0, UINT64_MAX, 1, VIRTQ_DESC_F_WRITE, 0);
    expect_bad(f, "outside guest ram");
    set_desc(f, 0, 16, UINT32_MAX, 0, 0);
    expect_bad(f, "outside guest ram");
}

static void readable_after_writable(void **state)
{
    struct fixture *f = *state;
    set_desc(f, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
    set_desc(f, 1, DATA_GPA + 16, 16, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
    set_desc(f, 2, DATA_GPA + 32, 16, 0, 0);
    offer(f, 0);
    expect_bad(f, "readable descriptor after writable");
    /* a zero-length writable descriptor still counts as writable */
    set_desc(f, 1, DATA_GPA + 16, 0, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
    expect_bad(f, "readable descriptor after writable");
    set_desc(f, 0, DATA_GPA, 0, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
    set_desc(f, 1, DATA_GPA + 16, 16, 0, 0);
    expect_bad(f, "readable descriptor after writable");
}

static void indirect(void **state)
{
    struct fixture *f = *state;
    set_desc(f, 0, DATA_GPA, 16 * 4, VIRTQ_DESC_F_INDIRECT, 0);
    offer(f, 0);
    expect_bad(f, "indirect");
    set_desc(f, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
    set_desc(f, 1, DATA_GPA, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0);
    expect_bad(f, "indirect");
}

static void avail_too_far_ahead(void **state)
{
    struct fixture *f = *state;
    set_desc(f, 0, DATA_GPA, 1, 0, 0);
    set_avail_idx(f, QSIZE + 1);
    expect_bad(f, "ahead");
    set_avail_idx(f, 0xffff); /* "behind" is far ahead modulo 2^16 */
    expect_bad(f, "ahead");
    f->vq.last_avail = 65530;
    set_avail_idx(f, (uint16_t)(65530 + QSIZE + 1)); /* wraps to 3 */
    expect_bad(f, "ahead");
}

static void queue_not_ready(void **state)
{
    struct fixture *f = *state;
    set_desc(f, 0, DATA_GPA, 1, 0, 0);
    offer(f, 0);
    f->vq.ready = 0;
    expect_bad(f, "not set up");
    /* ready but with rings moved outside RAM behind validate's back */
    f->vq.ready = 1;
    f->vq.avail_gpa = RAM_SIZE - 4;
    expect_bad(f, "not set up");
    f->vq.avail_gpa = AVAIL_GPA;
    f->vq.desc_gpa = RAM_SIZE - 16;
    expect_bad(f, "not set up");
}

static void why_buffer_optional(void **state)
{
    struct fixture *f = *state;
    offer(f, QSIZE);
    bool popped;
    assert_int_equal(virtq_pop(&f->vq, &f->ram, &f->chain, &popped, NULL, 0), -EINVAL);
    char tiny[4] = "xxx";
    assert_int_equal(virtq_pop(&f->vq, &f->ram, &f->chain, &popped, tiny, sizeof(tiny)),
                     -EINVAL);
    assert_int_equal(strlen(tiny), 3);
}

/* Two 3 GiB-ish descriptors whose lengths add up past 2^32 (layout in a
 * sparse reservation; only the ring pages are touched). */
static void chain_length_overflow(void **state)
{
    (void)state;
    const uint64_t size = GUEST_RAM_LOW_MAX;
    uint8_t *mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED)
        skip();
    struct guest_ram ram;
    assert_int_equal(guest_ram_init(&ram, mem, size), 0);
    struct virtq vq = {.num = QSIZE,
                       .ready = 1,
                       .desc_gpa = 0x1000,
                       .avail_gpa = 0x2000,
                       .used_gpa = 0x3000};
    assert_int_equal(virtq_validate(&vq, &ram), 0);
    struct desc d[2] = {
        {0x100000, 0xbff00000U, VIRTQ_DESC_F_NEXT, 1},
        {0x100000, 0xbff00000U, 0, 0},
    };
    memcpy(mem + 0x1000, d, sizeof(d));
    uint16_t idx = 1;
    memcpy(mem + 0x2002, &idx, 2);
    static struct virtq_chain chain;
    char why[128] = "";
    bool popped;
    assert_int_equal(virtq_pop(&vq, &ram, &chain, &popped, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "overflow"));
    guest_ram_release(&ram);
    munmap(mem, size);
}

/* ---- validate ---- */

static void validate_sizes(void **state)
{
    struct fixture *f = *state;
    struct virtq q = f->vq;
    q.desc_gpa = 0x20000; /* room for 256 descriptors */
    q.avail_gpa = 0x30000;
    q.used_gpa = 0x40000;
    static const uint16_t good[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};
    static const uint16_t bad[] = {0, 3, 6, 7, 100, 255, 257, 384, 512, 1024, 32768, 65535};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        q.num = good[i];
        if (virtq_validate(&q, &f->ram) != 0)
            fail_msg("size %u refused", good[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        q.num = bad[i];
        if (virtq_validate(&q, &f->ram) != -EINVAL)
            fail_msg("size %u accepted", bad[i]);
    }
}

static void validate_alignment(void **state)
{
    struct fixture *f = *state;
    struct virtq q = f->vq;
    assert_int_equal(virtq_validate(&q, &f->ram), 0);
    q.desc_gpa = DESC_GPA - 8; /* 8-aligned, not 16 */
    assert_int_equal(virtq_validate(&q, &f->ram), -EINVAL);
    q = f->vq;
    q.avail_gpa = AVAIL_GPA + 1;
    assert_int_equal(virtq_validate(&q, &f->ram), -EINVAL);
    q.avail_gpa = AVAIL_GPA + 2; /* 2-aligned is enough */
    assert_int_equal(virtq_validate(&q, &f->ram), 0);
    q = f->vq;
    q.used_gpa = USED_GPA + 2;
    assert_int_equal(virtq_validate(&q, &f->ram), -EINVAL);
    q.used_gpa = USED_GPA + 4; /* 4-aligned is enough */
    assert_int_equal(virtq_validate(&q, &f->ram), 0);
}

static void validate_outside_ram(void **state)
{
    struct fixture *f = *state;
    struct virtq q = f->vq;
    q.desc_gpa = DESC_GPA + 16; /* last descriptor past the end */
    assert_int_equal(virtq_validate(&q, &f->ram), -EINVAL);
    q = f->vq;
    q.avail_gpa = RAM_SIZE - (6 + 2 * QSIZE); /* ends exactly at the end */
    assert_int_equal(virtq_validate(&q, &f->ram), 0);
    q.avail_gpa += 2;
    assert_int_equal(virtq_validate(&q, &f->ram), -EINVAL);
    q = f->vq;
    q.used_gpa = RAM_SIZE - 72; /* 70 bytes, ends 2 short */
    assert_int_equal(virtq_validate(&q, &f->ram), 0);
    q.used_gpa += 4;
    assert_int_equal(virtq_validate(&q, &f->ram), -EINVAL);
    q = f->vq;
    q.used_gpa = UINT64_MAX - 3; /* aligned, wraps */
    assert_int_equal(virtq_validate(&q, &f->ram), -EINVAL);
    q = f->vq;
    q.desc_gpa = UINT64_MAX - 15;
    assert_int_equal(virtq_validate(&q, &f->ram), -EINVAL);
    q = f->vq;
    q.avail_gpa = 1ULL << 32;
    assert_int_equal(virtq_validate(&q, &f->ram), -EINVAL);
}

/* ---- random tables ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rng(void)
{
    /* xorshift64*: deterministic, so a failure reproduces */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

static uint64_t random_addr(void)
{
    static const uint64_t interesting[] = {
        0,
        1,
        DATA_GPA,
        RAM_SIZE - 1,
        RAM_SIZE,
        RAM_SIZE + 1,
        RAM_SIZE - 4096,
        GUEST_RAM_LOW_MAX,
        GUEST_RAM_HIGH_START,
        UINT64_MAX,
        UINT64_MAX - 4095,
        1ULL << 63,
        DESC_GPA,
    };
    switch (rng() % 3) {
    case 0: return interesting[rng() % (sizeof(interesting) / sizeof(interesting[0]))];
    case 1: return rng() % RAM_SIZE;
    default: return rng();
    }
}

static uint32_t random_len(void)
{
    static const uint32_t interesting[] = {
        0,          1, 16, 512, 4096, RAM_SIZE, RAM_SIZE + 1, UINT32_MAX, UINT32_MAX - 15,
        0x80000000U};
    return rng() & 1 ? interesting[rng() % (sizeof(interesting) / sizeof(interesting[0]))]
                     : (uint32_t)(rng() % 8192);
}

static void random_tables(void **state)
{
    struct fixture *f = *state;
    unsigned popped = 0, refused = 0;
    for (unsigned iter = 0; iter < 20000; iter++) {
        uint16_t num = (uint16_t)(1u << (rng() % 9)); /* 1..256 */
        f->vq = (struct virtq){.num = num,
                               .ready = 1,
                               .desc_gpa = RAM_SIZE - 16ULL * num,
                               .avail_gpa = AVAIL_GPA,
                               .used_gpa = USED_GPA,
                               .last_avail = (uint16_t)rng()};
        assert_int_equal(virtq_validate(&f->vq, &f->ram), 0);
        for (unsigned i = 0; i < num; i++) {
            uint16_t flags = (uint16_t)(rng() % 8);
            if (rng() % 4)
                flags &= (uint16_t)~VIRTQ_DESC_F_INDIRECT;
            uint16_t next = rng() % 8 ? (uint16_t)(rng() % num) : (uint16_t)rng();
            set_desc(f, i, random_addr(), random_len(), flags, next);
        }
        uint8_t *avail = f->mem + AVAIL_GPA;
        for (unsigned i = 0; i < num; i++) {
            uint16_t head = rng() % 8 ? (uint16_t)(rng() % num) : (uint16_t)rng();
            memcpy(avail + 4 + 2 * i, &head, 2);
        }
        uint16_t idx = rng() % 4 ? (uint16_t)(f->vq.last_avail + rng() % (num + 1u))
                                 : (uint16_t)rng();
        memcpy(avail + 2, &idx, 2);
        uint16_t last = f->vq.last_avail;
        int rc = pop(f);
        assert_true(rc == 1 || !rc || rc == -EINVAL);
        if (!rc) {
            assert_int_equal(idx, last);
            continue;
        }
        if (rc < 0) {
            refused++;
            assert_true(f->why[0] != '\0');
            assert_int_equal(f->vq.last_avail, last);
            continue;
        }
        popped++;
        assert_int_equal(f->vq.last_avail, (uint16_t)(last + 1));
        assert_true(f->chain.head < num);
        assert_true(f->chain.nseg >= 1 && f->chain.nseg <= num);
        uint64_t rlen = 0, wlen = 0;
        bool seen_writable = false;
        for (unsigned i = 0; i < f->chain.nseg; i++) {
            const struct virtq_seg *sg = &f->chain.seg[i];
            if (sg->len)
                assert_non_null(guest_ram_ptr(&f->ram, sg->gpa, sg->len));
            if (sg->writable) {
                seen_writable = true;
                wlen += sg->len;
            } else {
                assert_false(seen_writable);
                rlen += sg->len;
            }
        }
        assert_int_equal(rlen, f->chain.readable_len);
        assert_int_equal(wlen, f->chain.writable_len);
    }
    /* the generator exercises both outcomes */
    assert_true(popped > 100);
    assert_true(refused > 100);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(empty_queue),
        T(single_descriptor),
        T(three_descriptor_chain),
        T(longest_chain),
        T(several_in_order),
        T(avail_index_wraps),
        T(avail_exactly_num_ahead),
        T(push_used),
        T(push_wraps),
        T(push_used_ring_at_end),
        T(no_interrupt_flag),
        T(bad_head_index),
        T(bad_next_index),
        T(loop_two),
        T(loop_self),
        T(loop_max_queue),
        T(addr_outside_ram),
        T(addr_len_overflow),
        T(readable_after_writable),
        T(indirect),
        T(avail_too_far_ahead),
        T(queue_not_ready),
        T(why_buffer_optional),
        cmocka_unit_test(chain_length_overflow),
        T(validate_sizes),
        T(validate_alignment),
        T(validate_outside_ram),
        T(random_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
