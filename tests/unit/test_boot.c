/* Unit tests for src/vmm/boot.c: ELF loading with hostile headers, initrd
 * placement, the e820 map, zero page, page tables and GDT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "vmm/boot.h"

#define RAM_SIZE (256ULL << 20)
#define FILL 0xcc

struct fixture {
    uint8_t *mem;
    uint64_t size;
    struct guest_ram ram;
};

static struct fixture *fixture_new(uint64_t size)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->size = size;
    f->mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (f->mem == MAP_FAILED || guest_ram_init(&f->ram, f->mem, size)) {
        if (f->mem != MAP_FAILED)
            munmap(f->mem, size);
        free(f);
        return NULL;
    }
    return f;
}

static void fixture_free(struct fixture *f)
{
    guest_ram_release(&f->ram);
    munmap(f->mem, f->size);
    free(f);
}

static int setup(void **state)
{
    *state = fixture_new(RAM_SIZE);
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    fixture_free(*state);
    return 0;
}

/* ---- ELF images built in memory ---- */

#define SEG1_PADDR 0x100000ULL
#define SEG1_OFF 0x1000
#define SEG1_FILESZ 0x100
#define SEG2_PADDR 0x200000ULL
#define SEG2_OFF 0x2000
#define SEG2_FILESZ 0x80
#define SEG2_MEMSZ 0x3000
#define ELF_SIZE 0x2080
#define ENTRY (SEG1_PADDR + 0x10)

struct elf_image {
    union {
        uint8_t bytes[ELF_SIZE];
        Elf64_Ehdr eh; /* keeps the buffer aligned for the header */
    } u;
};

static Elf64_Ehdr *ehdr(struct elf_image *im)
{
    return &im->u.eh;
}
static Elf64_Phdr *phdr(struct elf_image *im, unsigned i)
{
    return (Elf64_Phdr *)(im->u.bytes + sizeof(Elf64_Ehdr)) + i;
}

/* Valid image: a text segment, a non-PT_LOAD note, a data segment with bss. */
static void build_elf(struct elf_image *im)
{
    memset(im, 0, sizeof(*im));
    Elf64_Ehdr *eh = ehdr(im);
    memcpy(eh->e_ident, ELFMAG, SELFMAG);
    eh->e_ident[EI_CLASS] = ELFCLASS64;
    eh->e_ident[EI_DATA] = ELFDATA2LSB;
    eh->e_ident[EI_VERSION] = EV_CURRENT;
    eh->e_type = ET_EXEC;
    eh->e_machine = EM_X86_64;
    eh->e_version = EV_CURRENT;
    eh->e_entry = ENTRY;
    eh->e_phoff = sizeof(Elf64_Ehdr);
    eh->e_ehsize = sizeof(Elf64_Ehdr);
    eh->e_phentsize = sizeof(Elf64_Phdr);
    eh->e_phnum = 3;

    Elf64_Phdr *p = phdr(im, 0);
    p->p_type = PT_LOAD;
    p->p_flags = PF_R | PF_X;
    p->p_offset = SEG1_OFF;
    p->p_vaddr = 0xffffffff80000000ULL + SEG1_PADDR;
    p->p_paddr = SEG1_PADDR;
    p->p_filesz = SEG1_FILESZ;
    p->p_memsz = SEG1_FILESZ;
    p->p_align = 0x1000;

    p = phdr(im, 1);
    p->p_type = PT_NOTE; /* ignored: paddr would be refused */
    p->p_offset = 0x40;
    p->p_paddr = 0x1000;
    p->p_filesz = 8;
    p->p_memsz = 8;

    p = phdr(im, 2);
    p->p_type = PT_LOAD;
    p->p_flags = PF_R | PF_W;
    p->p_offset = SEG2_OFF;
    p->p_vaddr = 0xffffffff80000000ULL + SEG2_PADDR;
    p->p_paddr = SEG2_PADDR;
    p->p_filesz = SEG2_FILESZ;
    p->p_memsz = SEG2_MEMSZ;
    p->p_align = 0x1000;

    for (unsigned i = 0; i < SEG1_FILESZ; i++)
        im->u.bytes[SEG1_OFF + i] = (uint8_t)(i ^ 0x5a);
    for (unsigned i = 0; i < SEG2_FILESZ; i++)
        im->u.bytes[SEG2_OFF + i] = (uint8_t)(0x80 + i);
}

static void load_valid_elf(void **state)
{
    struct fixture *f = *state;
    struct elf_image im;
    build_elf(&im);
    memset(f->mem + SEG1_PADDR - 0x1000, FILL, 0x3000);
    memset(f->mem + SEG2_PADDR - 0x1000, FILL, SEG2_MEMSZ + 0x2000);
    struct boot_image img;
    memset(&img, 0xee, sizeof(img));
    struct err e = {""};
    assert_int_equal(boot_load_elf(&f->ram, im.u.bytes, ELF_SIZE, &img, &e), 0);
    assert_int_equal(img.entry, ENTRY);
    assert_int_equal(img.low, SEG1_PADDR);
    assert_int_equal(img.high, SEG2_PADDR + SEG2_MEMSZ);
    assert_int_equal(img.initrd_addr, 0);
    assert_int_equal(img.initrd_size, 0);

    /* the file bytes landed at p_paddr */
    assert_memory_equal(f->mem + SEG1_PADDR, im.u.bytes + SEG1_OFF, SEG1_FILESZ);
    assert_memory_equal(f->mem + SEG2_PADDR, im.u.bytes + SEG2_OFF, SEG2_FILESZ);
    /* bss zeroed */
    for (uint64_t a = SEG2_PADDR + SEG2_FILESZ; a < SEG2_PADDR + SEG2_MEMSZ; a++)
        if (f->mem[a] != 0)
            fail_msg("bss byte at 0x%llx is 0x%02x", (unsigned long long)a, f->mem[a]);
    /* nothing written around the segments */
    assert_int_equal(f->mem[SEG1_PADDR - 1], FILL);
    assert_int_equal(f->mem[SEG1_PADDR + SEG1_FILESZ], FILL);
    assert_int_equal(f->mem[SEG2_PADDR - 1], FILL);
    assert_int_equal(f->mem[SEG2_PADDR + SEG2_MEMSZ], FILL);
    /* the note at 0x1000 was not loaded */
    assert_int_equal(f->mem[0x1000], 0);

    /* loaded pages are dirty for migration: 0x100000 (1 page) + 0x200000 (3) */
    uint64_t w[2] = {0, 0};
    guest_ram_collect_dirty(&f->ram, SEG1_PADDR / 4096 / 64, 1, &w[0]);
    guest_ram_collect_dirty(&f->ram, SEG2_PADDR / 4096 / 64, 1, &w[1]);
    assert_int_equal(w[0], 1ULL);
    assert_int_equal(w[1], 7ULL);
}

static void load_minimal_one_segment(void **state)
{
    struct fixture *f = *state;
    struct elf_image im;
    build_elf(&im);
    ehdr(&im)->e_phnum = 1;
    /* entry on the last byte of the segment is inside it */
    ehdr(&im)->e_entry = SEG1_PADDR + SEG1_FILESZ - 1;
    struct boot_image img;
    struct err e = {""};
    assert_int_equal(boot_load_elf(&f->ram, im.u.bytes, ELF_SIZE, &img, &e), 0);
    assert_int_equal(img.entry, SEG1_PADDR + SEG1_FILESZ - 1);
    assert_int_equal(img.high, SEG1_PADDR + SEG1_FILESZ);
    /* a segment ending exactly at the end of RAM is fine */
    Elf64_Phdr *p = phdr(&im, 0);
    p->p_paddr = RAM_SIZE - SEG1_FILESZ;
    ehdr(&im)->e_entry = p->p_paddr;
    assert_int_equal(boot_load_elf(&f->ram, im.u.bytes, ELF_SIZE, &img, &e), 0);
    assert_memory_equal(f->mem + RAM_SIZE - SEG1_FILESZ, im.u.bytes + SEG1_OFF,
                        SEG1_FILESZ);
}

typedef void (*elf_mutator)(struct elf_image *im, size_t *size);

static void expect_refused(struct fixture *f, elf_mutator mutate, int want_rc,
                           const char *fragment, const char *what)
{
    struct elf_image im;
    build_elf(&im);
    size_t size = ELF_SIZE;
    mutate(&im, &size);
    struct boot_image img;
    struct err e = {""};
    int rc = boot_load_elf(&f->ram, im.u.bytes, size, &img, &e);
    if (rc != want_rc)
        fail_msg("%s: rc %d, want %d (msg '%s')", what, rc, want_rc, e.msg);
    if (!strstr(e.msg, fragment))
        fail_msg("%s: message '%s' lacks '%s'", what, e.msg, fragment);
}

static void m_magic(struct elf_image *im, size_t *s)
{
    (void)s;
    im->u.bytes[1] = 'F';
}
static void m_short(struct elf_image *im, size_t *s)
{
    (void)im;
    *s = sizeof(Elf64_Ehdr) - 1;
}
static void m_empty(struct elf_image *im, size_t *s)
{
    (void)im;
    *s = 0;
}
static void m_class32(struct elf_image *im, size_t *s)
{
    (void)s;
    ehdr(im)->e_ident[EI_CLASS] = ELFCLASS32;
}
static void m_machine(struct elf_image *im, size_t *s)
{
    (void)s;
    ehdr(im)->e_machine = EM_386;
}
static void m_aarch64(struct elf_image *im, size_t *s)
{
    (void)s;
    ehdr(im)->e_machine = EM_AARCH64;
}
static void m_dyn(struct elf_image *im, size_t *s)
{
    (void)s;
    ehdr(im)->e_type = ET_DYN;
}
static void m_rel(struct elf_image *im, size_t *s)
{
    (void)s;
    ehdr(im)->e_type = ET_REL;
}
static void m_phoff_past(struct elf_image *im, size_t *s)
{
    ehdr(im)->e_phoff = *s + 1;
}
static void m_phoff_huge(struct elf_image *im, size_t *s)
{
    (void)s;
    ehdr(im)->e_phoff = UINT64_MAX - 8;
}
static void m_phoff_tail(struct elf_image *im, size_t *s)
{
    /* first header fits, the other two run past the end */
    ehdr(im)->e_phoff = *s - sizeof(Elf64_Phdr);
}
static void m_phnum_overflow(struct elf_image *im, size_t *s)
{
    (void)s;
    ehdr(im)->e_phnum = 0xffff;
}
static void m_phnum_zero(struct elf_image *im, size_t *s)
{
    (void)s;
    ehdr(im)->e_phnum = 0;
}
static void m_phentsize(struct elf_image *im, size_t *s)
{
    (void)s;
    ehdr(im)->e_phentsize = 32;
}
static void m_filesz_gt_memsz(struct elf_image *im, size_t *s)
{
    (void)s;
    phdr(im, 0)->p_memsz = SEG1_FILESZ - 1;
}
static void m_seg_past_end(struct elf_image *im, size_t *s)
{
    (void)s;
    phdr(im, 2)->p_filesz = SEG2_FILESZ + 1; /* one byte past the file */
    phdr(im, 2)->p_memsz = SEG2_MEMSZ;
}
static void m_seg_offset_past(struct elf_image *im, size_t *s)
{
    phdr(im, 2)->p_offset = *s + 0x1000;
}
static void m_seg_offset_wrap(struct elf_image *im, size_t *s)
{
    (void)s;
    phdr(im, 2)->p_offset = UINT64_MAX - 0x10; /* offset + filesz wraps */
}
static void m_below_1m(struct elf_image *im, size_t *s)
{
    (void)s;
    phdr(im, 0)->p_paddr = BOOT_KERNEL_MIN_ADDR - 0x1000;
    ehdr(im)->e_entry = phdr(im, 0)->p_paddr;
}
static void m_below_1m_zero(struct elf_image *im, size_t *s)
{
    (void)s;
    phdr(im, 0)->p_paddr = 0; /* would overwrite the zero page etc. */
}
static void m_beyond_ram(struct elf_image *im, size_t *s)
{
    (void)s;
    phdr(im, 2)->p_paddr = RAM_SIZE;
}
static void m_straddle_ram(struct elf_image *im, size_t *s)
{
    (void)s;
    phdr(im, 2)->p_paddr = RAM_SIZE - 0x1000; /* memsz 0x3000 */
}
static void m_in_hole(struct elf_image *im, size_t *s)
{
    (void)s;
    phdr(im, 2)->p_paddr = 0xfec00000ULL;
}
static void m_paddr_overflow(struct elf_image *im, size_t *s)
{
    (void)s;
    phdr(im, 2)->p_paddr = UINT64_MAX - 0x1000; /* + memsz 0x3000 wraps */
}
static void m_memsz_huge(struct elf_image *im, size_t *s)
{
    (void)s;
    phdr(im, 2)->p_memsz = UINT64_MAX; /* zeroing would wrap */
}
static void m_entry_below(struct elf_image *im, size_t *s)
{
    (void)s;
    ehdr(im)->e_entry = SEG1_PADDR - 1;
}
static void m_entry_above(struct elf_image *im, size_t *s)
{
    (void)s;
    ehdr(im)->e_entry = SEG2_PADDR + SEG2_MEMSZ; /* one past the end */
}
static void m_entry_zero(struct elf_image *im, size_t *s)
{
    (void)s;
    ehdr(im)->e_entry = 0;
}
static void m_entry_virtual(struct elf_image *im, size_t *s)
{
    (void)s;
    ehdr(im)->e_entry = phdr(im, 0)->p_vaddr; /* virtual, not physical */
}
static void m_entry_in_gap(struct elf_image *im, size_t *s)
{
    (void)s;
    /* between the end of the text segment and the start of data: inside
     * [low, high) but in no segment */
    ehdr(im)->e_entry = SEG1_PADDR + 0x80000;
}
static void m_no_load(struct elf_image *im, size_t *s)
{
    (void)s;
    phdr(im, 0)->p_type = PT_NOTE;
    phdr(im, 2)->p_type = PT_GNU_STACK;
}
static void m_only_empty_load(struct elf_image *im, size_t *s)
{
    (void)s;
    phdr(im, 0)->p_memsz = 0;
    phdr(im, 0)->p_filesz = 0;
    phdr(im, 2)->p_type = PT_NULL;
}

#define REFUSE(m, rc, frag) expect_refused(f, m, rc, frag, #m)

static void refuse_header(void **state)
{
    struct fixture *f = *state;
    REFUSE(m_magic, -ENOEXEC, "not an ELF");
    REFUSE(m_short, -ENOEXEC, "not an ELF");
    REFUSE(m_empty, -ENOEXEC, "not an ELF");
    REFUSE(m_class32, -ENOEXEC, "ELF64");
    REFUSE(m_machine, -ENOEXEC, "x86-64");
    REFUSE(m_aarch64, -ENOEXEC, "x86-64");
    REFUSE(m_dyn, -ENOEXEC, "not an executable");
    REFUSE(m_rel, -ENOEXEC, "not an executable");
}

static void refuse_program_headers(void **state)
{
    struct fixture *f = *state;
    REFUSE(m_phoff_past, -ENOEXEC, "program headers are truncated");
    REFUSE(m_phoff_huge, -ENOEXEC, "program headers are truncated");
    REFUSE(m_phoff_tail, -ENOEXEC, "program headers are truncated");
    REFUSE(m_phnum_overflow, -ENOEXEC, "program headers are truncated");
    REFUSE(m_phnum_zero, -ENOEXEC, "program headers");
    REFUSE(m_phentsize, -ENOEXEC, "program headers");
}

static void refuse_segments(void **state)
{
    struct fixture *f = *state;
    REFUSE(m_filesz_gt_memsz, -ENOEXEC, "truncated");
    REFUSE(m_seg_past_end, -ENOEXEC, "truncated");
    REFUSE(m_seg_offset_past, -ENOEXEC, "truncated");
    REFUSE(m_seg_offset_wrap, -ENOEXEC, "truncated");
    REFUSE(m_below_1m, -ENOEXEC, "below 1 MiB");
    REFUSE(m_below_1m_zero, -ENOEXEC, "below 1 MiB");
    REFUSE(m_beyond_ram, -ENOMEM, "does not fit in guest ram");
    REFUSE(m_straddle_ram, -ENOMEM, "does not fit in guest ram");
    REFUSE(m_in_hole, -ENOMEM, "does not fit in guest ram");
    REFUSE(m_paddr_overflow, -ENOMEM, "does not fit in guest ram");
    REFUSE(m_memsz_huge, -ENOMEM, "does not fit in guest ram");
}

static void refuse_entry_and_empty(void **state)
{
    struct fixture *f = *state;
    REFUSE(m_entry_below, -ENOEXEC, "outside its segments");
    REFUSE(m_entry_above, -ENOEXEC, "outside its segments");
    REFUSE(m_entry_zero, -ENOEXEC, "outside its segments");
    REFUSE(m_entry_virtual, -ENOEXEC, "outside its segments");
    REFUSE(m_entry_in_gap, -ENOEXEC, "outside its segments");
    REFUSE(m_no_load, -ENOEXEC, "no loadable segment");
    REFUSE(m_only_empty_load, -ENOEXEC, "no loadable segment");
}

/* ---- e820 ---- */

static void check_e820_sane(const struct e820_entry *map, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        assert_true(map[i].size > 0);
        assert_true(map[i].type == E820_RAM || map[i].type == E820_RESERVED);
        assert_true(map[i].addr + map[i].size > map[i].addr);
        if (i)
            assert_true(map[i - 1].addr + map[i - 1].size <= map[i].addr);
    }
}

static void e820_256m(void **state)
{
    struct fixture *f = *state;
    struct e820_entry map[E820_MAX];
    unsigned n = boot_e820(&f->ram, map);
    assert_int_equal(n, 4);
    check_e820_sane(map, n);
    assert_int_equal(map[0].addr, 0);
    assert_int_equal(map[0].size, BOOT_EBDA_ADDR);
    assert_int_equal(map[0].type, E820_RAM);
    assert_int_equal(map[1].addr, BOOT_EBDA_ADDR);
    assert_int_equal(map[1].size, 0xa0000 - BOOT_EBDA_ADDR);
    assert_int_equal(map[1].type, E820_RESERVED);
    assert_int_equal(map[2].addr, BOOT_BIOS_ADDR);
    assert_int_equal(map[2].size, 0x10000);
    assert_int_equal(map[2].type, E820_RESERVED);
    assert_int_equal(map[3].addr, BOOT_HIMEM_ADDR);
    assert_int_equal(map[3].size, RAM_SIZE - BOOT_HIMEM_ADDR);
    assert_int_equal(map[3].type, E820_RAM);
    /* no RAM entry reaches past the end of RAM */
    for (unsigned i = 0; i < n; i++)
        if (map[i].type == E820_RAM)
            assert_true(map[i].addr + map[i].size <= RAM_SIZE);
    assert_int_equal(sizeof(struct e820_entry), 20);
}

static void e820_5g(void **state)
{
    (void)state;
    /* Layout only: boot_e820 never touches the memory. */
    struct guest_ram ram;
    const uint64_t size = 5ULL << 30;
    assert_int_equal(guest_ram_init(&ram, (uint8_t *)(uintptr_t)0x1000, size), 0);
    struct e820_entry map[E820_MAX];
    unsigned n = boot_e820(&ram, map);
    assert_int_equal(n, 5);
    check_e820_sane(map, n);
    assert_int_equal(map[3].addr, BOOT_HIMEM_ADDR);
    assert_int_equal(map[3].size, GUEST_RAM_LOW_MAX - BOOT_HIMEM_ADDR);
    assert_int_equal(map[3].type, E820_RAM);
    assert_int_equal(map[4].addr, GUEST_RAM_HIGH_START);
    assert_int_equal(map[4].size, size - GUEST_RAM_LOW_MAX);
    assert_int_equal(map[4].type, E820_RAM);
    /* the MMIO hole (IOAPIC, LAPIC, virtio) is not RAM */
    for (unsigned i = 0; i < n; i++) {
        uint64_t end = map[i].addr + map[i].size;
        assert_false(map[i].addr <= 0xfec00000ULL && 0xfec00000ULL < end);
        assert_false(map[i].addr <= 0xd0000000ULL && 0xd0000000ULL < end);
    }
    /* RAM entries add up to the RAM minus the reserved 0x9fc00..1 MiB */
    uint64_t total = 0;
    for (unsigned i = 0; i < n; i++)
        if (map[i].type == E820_RAM)
            total += map[i].size;
    assert_int_equal(total, size - (BOOT_HIMEM_ADDR - BOOT_EBDA_ADDR));
    guest_ram_release(&ram);
}

/* ---- initrd ---- */

static void initrd_placement(void **state)
{
    struct fixture *f = *state;
    struct boot_image img = {
        .entry = ENTRY, .low = SEG1_PADDR, .high = SEG2_PADDR + SEG2_MEMSZ};
    size_t size = 100000; /* not a page multiple */
    uint8_t *data = malloc(size);
    assert_non_null(data);
    for (size_t i = 0; i < size; i++)
        data[i] = (uint8_t)(i * 7);
    struct err e = {""};
    assert_int_equal(boot_load_initrd(&f->ram, data, size, &img, &e), 0);
    assert_int_equal(img.initrd_size, size);
    assert_int_equal(img.initrd_addr % GUEST_PAGE_SIZE, 0);
    assert_true(img.initrd_addr >= img.high);
    assert_true(img.initrd_addr + size <= RAM_SIZE);
    /* at the top: no room for another page above it */
    assert_true(img.initrd_addr + size + GUEST_PAGE_SIZE > RAM_SIZE);
    assert_int_equal(img.initrd_addr, (RAM_SIZE - size) & ~(GUEST_PAGE_SIZE - 1));
    assert_memory_equal(f->mem + img.initrd_addr, data, size);
    /* its pages are dirty */
    uint64_t first = img.initrd_addr / GUEST_PAGE_SIZE;
    uint64_t word = 0;
    guest_ram_collect_dirty(&f->ram, first / 64, 1, &word);
    assert_true(word >> (first % 64) & 1);
    free(data);
}

static void initrd_capped_below_896m(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(2ULL << 30); /* 2 GiB, mostly untouched */
    if (!f)
        skip();
    struct boot_image img = {
        .entry = ENTRY, .low = SEG1_PADDR, .high = SEG2_PADDR + SEG2_MEMSZ};
    uint8_t data[5000];
    memset(data, 0x42, sizeof(data));
    struct err e = {""};
    assert_int_equal(boot_load_initrd(&f->ram, data, sizeof(data), &img, &e), 0);
    assert_int_equal(img.initrd_addr % GUEST_PAGE_SIZE, 0);
    assert_true(img.initrd_addr + sizeof(data) - 1 <= 0x37ffffffULL);
    assert_int_equal(img.initrd_addr, (0x38000000ULL - sizeof(data)) & ~0xfffULL);
    assert_memory_equal(f->mem + img.initrd_addr, data, sizeof(data));
    fixture_free(f);
}

static void initrd_refused(void **state)
{
    struct fixture *f = *state;
    uint8_t small[16] = {0};
    struct err e = {""};
    /* kernel reaches almost to the top of RAM */
    struct boot_image img = {.entry = ENTRY, .low = SEG1_PADDR, .high = RAM_SIZE - 0x1000};
    assert_int_equal(boot_load_initrd(&f->ram, small, sizeof(small), &img, &e), 0);
    assert_int_equal(img.initrd_addr, RAM_SIZE - 0x1000);

    img.high = RAM_SIZE - 0x1000 + 1; /* the last page overlaps the kernel */
    img.initrd_addr = img.initrd_size = 0;
    e.msg[0] = '\0';
    assert_int_equal(boot_load_initrd(&f->ram, small, sizeof(small), &img, &e), -ENOMEM);
    assert_non_null(strstr(e.msg, "does not fit"));
    assert_int_equal(img.initrd_addr, 0);
    assert_int_equal(img.initrd_size, 0);

    /* bigger than all of RAM (never read past 16 bytes: refused first) */
    img.high = SEG2_PADDR + SEG2_MEMSZ;
    e.msg[0] = '\0';
    assert_int_equal(boot_load_initrd(&f->ram, small, RAM_SIZE + 1, &img, &e), -ENOMEM);
    assert_non_null(strstr(e.msg, "does not fit"));
    /* fits RAM but would have to go below the kernel's end */
    e.msg[0] = '\0';
    assert_int_equal(boot_load_initrd(&f->ram, small, RAM_SIZE - SEG2_PADDR, &img, &e),
                     -ENOMEM);
    assert_non_null(strstr(e.msg, "does not fit"));
    /* empty initrd */
    e.msg[0] = '\0';
    assert_int_equal(boot_load_initrd(&f->ram, small, 0, &img, &e), -ENOMEM);
}

/* ---- zero page, page tables, GDT ---- */

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
static uint64_t rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Walks the boot page tables in guest RAM; returns the physical address or
 * UINT64_MAX when not mapped. Checks the intermediate entries are present. */
static uint64_t walk(const uint8_t *mem, uint64_t va)
{
    uint64_t cr3 = BOOT_PML4_ADDR;
    uint64_t pml4e = rd64(mem + cr3 + 8 * ((va >> 39) & 511));
    if (!(pml4e & 1))
        return UINT64_MAX;
    uint64_t pdpte = rd64(mem + (pml4e & 0xffffffffff000ULL) + 8 * ((va >> 30) & 511));
    if (!(pdpte & 1))
        return UINT64_MAX;
    assert_false(pdpte & 0x80); /* no 1 GiB pages */
    uint64_t pde = rd64(mem + (pdpte & 0xffffffffff000ULL) + 8 * ((va >> 21) & 511));
    if (!(pde & 1))
        return UINT64_MAX;
    assert_true(pde & 0x80); /* 2 MiB page */
    assert_true(pde & 0x2);  /* writable */
    return (pde & 0xfffffffe00000ULL) | (va & 0x1fffff);
}

static void setup_memory_zero_page(void **state)
{
    struct fixture *f = *state;
    memset(f->mem, FILL, 0x40000);
    const char *cmdline = "console=ttyS0 root=/dev/vda rw";
    struct boot_image img = {.entry = ENTRY,
                             .low = SEG1_PADDR,
                             .high = SEG2_PADDR + SEG2_MEMSZ,
                             .initrd_addr = 0x0f000000,
                             .initrd_size = 0x12345};
    struct err e = {""};
    assert_int_equal(boot_setup_memory(&f->ram, &img, cmdline, &e), 0);
    const uint8_t *zp = f->mem + BOOT_ZERO_PAGE_ADDR;
    assert_int_equal(rd16(zp + ZP_BOOT_FLAG), 0xaa55);
    assert_memory_equal(zp + ZP_HEADER, "HdrS", 4);
    assert_true(rd16(zp + ZP_VERSION) >= 0x020c);
    assert_int_equal(zp[ZP_TYPE_OF_LOADER], 0xff);
    assert_true(zp[ZP_LOADFLAGS] & 0x01);
    uint32_t cmd_ptr = rd32(zp + ZP_CMD_LINE_PTR);
    assert_int_equal(cmd_ptr, BOOT_CMDLINE_ADDR);
    assert_int_equal(rd32(zp + ZP_EXT_CMD_LINE_PTR), 0);
    assert_string_equal((const char *)f->mem + cmd_ptr, cmdline);
    assert_int_equal(rd32(zp + ZP_RAMDISK_IMAGE), 0x0f000000);
    assert_int_equal(rd32(zp + ZP_RAMDISK_SIZE), 0x12345);
    assert_int_equal(rd32(zp + ZP_INITRD_ADDR_MAX), 0x37ffffff);

    struct e820_entry map[E820_MAX];
    unsigned n = boot_e820(&f->ram, map);
    assert_int_equal(zp[ZP_E820_ENTRIES], n);
    assert_memory_equal(zp + ZP_E820_TABLE, map, n * sizeof(map[0]));
    /* the rest of the e820 table is zero (the whole page was cleared) */
    for (unsigned i = ZP_E820_TABLE + n * 20; i < ZP_E820_TABLE + 128 * 20; i++)
        assert_int_equal(zp[i], 0);
    /* first bytes of the zero page are zero, not left-over fill */
    for (unsigned i = 0; i < ZP_EXT_CMD_LINE_PTR; i++)
        assert_int_equal(zp[i], 0);

    /* everything written is dirty: zero page, cmdline, page tables */
    uint64_t w = 0;
    guest_ram_collect_dirty(&f->ram, 0, 1, &w);
    assert_true(w >> (BOOT_ZERO_PAGE_ADDR / 4096) & 1);
    assert_true(w >> (BOOT_PML4_ADDR / 4096) & 1);
    assert_true(w >> (BOOT_CMDLINE_ADDR / 4096) & 1);
    assert_true(w & 1); /* GDT page */
}

static void setup_memory_page_tables(void **state)
{
    struct fixture *f = *state;
    memset(f->mem, FILL, 0x40000);
    struct boot_image img = {.entry = ENTRY, .low = SEG1_PADDR, .high = SEG2_PADDR};
    struct err e = {""};
    assert_int_equal(boot_setup_memory(&f->ram, &img, "", &e), 0);
    static const uint64_t addrs[] = {
        0,          0x1234,     0x100000,   0x200000,   0x3fffff,   ENTRY,      0x40000000,
        0x7fe12345, 0xbfffffff, 0xc0000000, 0xfec00000, 0xfee00000, 0xffffffff,
    };
    for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
        uint64_t pa = walk(f->mem, addrs[i]);
        if (pa != addrs[i])
            fail_msg("va 0x%llx maps to 0x%llx", (unsigned long long)addrs[i],
                     (unsigned long long)pa);
    }
    /* only the first 4 GiB is mapped */
    assert_int_equal(walk(f->mem, 0x100000000ULL), UINT64_MAX);
    assert_int_equal(walk(f->mem, 0x8000000000ULL), UINT64_MAX);
    /* tables are page aligned and do not overlap the zero page or GDT */
    assert_int_equal(BOOT_PML4_ADDR % 4096, 0);
    assert_true(BOOT_ZERO_PAGE_ADDR + ZP_SIZE <= BOOT_PML4_ADDR);
    assert_true(BOOT_PD_ADDR + 4 * 4096 <= BOOT_CMDLINE_ADDR);
}

static void setup_memory_gdt(void **state)
{
    struct fixture *f = *state;
    memset(f->mem, FILL, 0x40000);
    struct boot_image img = {.entry = ENTRY, .low = SEG1_PADDR, .high = SEG2_PADDR};
    struct err e = {""};
    assert_int_equal(boot_setup_memory(&f->ram, &img, "quiet", &e), 0);
    const uint8_t *gdt = f->mem + BOOT_GDT_ADDR;
    assert_int_equal(rd64(gdt), 0); /* null descriptor */
    uint64_t cs = rd64(gdt + BOOT_SEL_CODE);
    assert_true(cs >> 47 & 1);         /* present */
    assert_true(cs >> 44 & 1);         /* code/data, not system */
    assert_true(cs >> 43 & 1);         /* executable */
    assert_true(cs >> 53 & 1);         /* L: 64-bit */
    assert_false(cs >> 54 & 1);        /* D must be 0 with L */
    assert_int_equal(cs >> 45 & 3, 0); /* DPL 0 */
    uint64_t ds = rd64(gdt + BOOT_SEL_DATA);
    assert_true(ds >> 47 & 1);
    assert_true(ds >> 44 & 1);
    assert_false(ds >> 43 & 1); /* data */
    assert_true(ds >> 41 & 1);  /* writable */
    uint64_t tss = rd64(gdt + BOOT_SEL_TSS);
    assert_true(tss >> 47 & 1);
    assert_false(tss >> 44 & 1);            /* system descriptor */
    assert_int_equal(tss >> 40 & 0xf, 0xb); /* busy 64-bit TSS */
}

static void setup_memory_cmdline_limits(void **state)
{
    struct fixture *f = *state;
    struct boot_image img = {.entry = ENTRY, .low = SEG1_PADDR, .high = SEG2_PADDR};
    char *line = malloc(BOOT_CMDLINE_MAX + 1);
    assert_non_null(line);
    memset(line, 'a', BOOT_CMDLINE_MAX);
    line[BOOT_CMDLINE_MAX] = '\0';
    struct err e = {""};
    memset(f->mem + BOOT_CMDLINE_ADDR, FILL, BOOT_CMDLINE_MAX);
    assert_int_equal(boot_setup_memory(&f->ram, &img, line, &e), -E2BIG);
    assert_non_null(strstr(e.msg, "command line"));
    assert_int_equal(f->mem[BOOT_CMDLINE_ADDR], FILL); /* nothing written */

    /* the longest allowed line fits with its terminator */
    line[BOOT_CMDLINE_MAX - 1] = '\0';
    assert_int_equal(boot_setup_memory(&f->ram, &img, line, &e), 0);
    assert_int_equal(strlen((const char *)f->mem + BOOT_CMDLINE_ADDR),
                     BOOT_CMDLINE_MAX - 1);
    free(line);
}

static void setup_memory_tiny_ram(void **state)
{
    (void)state;
    /* 64 KiB of RAM cannot hold the command line area at 0x20000 */
    uint8_t *mem = aligned_alloc(4096, 0x10000);
    assert_non_null(mem);
    memset(mem, 0, 0x10000);
    struct guest_ram ram;
    assert_int_equal(guest_ram_init(&ram, mem, 0x10000), 0);
    struct boot_image img = {0};
    struct err e = {""};
    assert_int_equal(boot_setup_memory(&ram, &img, "x", &e), -ENOMEM);
    assert_non_null(strstr(e.msg, "too small"));
    guest_ram_release(&ram);
    free(mem);
}

static void full_sequence(void **state)
{
    struct fixture *f = *state;
    struct elf_image im;
    build_elf(&im);
    struct boot_image img;
    struct err e = {""};
    assert_int_equal(boot_load_elf(&f->ram, im.u.bytes, ELF_SIZE, &img, &e), 0);
    uint8_t rd[8192];
    memset(rd, 0x11, sizeof(rd));
    assert_int_equal(boot_load_initrd(&f->ram, rd, sizeof(rd), &img, &e), 0);
    assert_int_equal(boot_setup_memory(&f->ram, &img, "console=ttyS0", &e), 0);
    const uint8_t *zp = f->mem + BOOT_ZERO_PAGE_ADDR;
    assert_int_equal(rd32(zp + ZP_RAMDISK_IMAGE), img.initrd_addr);
    assert_int_equal(rd32(zp + ZP_RAMDISK_SIZE), sizeof(rd));
    assert_int_equal(img.initrd_addr, RAM_SIZE - sizeof(rd));
    /* the kernel bytes were not disturbed by the boot structures */
    assert_memory_equal(f->mem + SEG1_PADDR, im.u.bytes + SEG1_OFF, SEG1_FILESZ);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(load_valid_elf),
        T(load_minimal_one_segment),
        T(refuse_header),
        T(refuse_program_headers),
        T(refuse_segments),
        T(refuse_entry_and_empty),
        T(e820_256m),
        cmocka_unit_test(e820_5g),
        T(initrd_placement),
        cmocka_unit_test(initrd_capped_below_896m),
        T(initrd_refused),
        T(setup_memory_zero_page),
        T(setup_memory_page_tables),
        T(setup_memory_gdt),
        T(setup_memory_cmdline_limits),
        cmocka_unit_test(setup_memory_tiny_ram),
        T(full_sequence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
