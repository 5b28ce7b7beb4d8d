#include "vmm/boot.h"

#include <elf.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#define INITRD_ADDR_MAX 0x37ffffffULL
#define PAGE_2M (2ULL << 20)

static int check_elf_header(const uint8_t *file, size_t size, struct err *e)
{
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)file;
    if (size < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0)
        return err_set(e, ENOEXEC, "not an ELF file");
    if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_X86_64)
        return err_set(e, ENOEXEC, "not an x86-64 ELF64 file");
    if (eh->e_type != ET_EXEC)
        return err_set(e, ENOEXEC, "ELF is not an executable (type %u)", eh->e_type);
    if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 || eh->e_phoff > size ||
        (size - eh->e_phoff) / sizeof(Elf64_Phdr) < eh->e_phnum)
        return err_set(e, ENOEXEC, "ELF program headers are truncated");
    return 0;
}

static int load_segment(struct guest_ram *ram, const uint8_t *file, size_t size,
                        const Elf64_Phdr *ph, struct err *e)
{
    if (ph->p_filesz > ph->p_memsz || ph->p_offset > size ||
        ph->p_filesz > size - ph->p_offset)
        return err_set(e, ENOEXEC, "ELF segment at 0x%llx is truncated",
                       (unsigned long long)ph->p_paddr);
    if (ph->p_paddr < BOOT_KERNEL_MIN_ADDR)
        return err_set(e, ENOEXEC, "ELF segment at 0x%llx is below 1 MiB",
                       (unsigned long long)ph->p_paddr);
    uint8_t *dst = guest_ram_ptr(ram, ph->p_paddr, ph->p_memsz);
    if (!dst)
        return err_set(e, ENOMEM,
                       "ELF segment 0x%llx+0x%llx does not "
                       "fit in guest ram",
                       (unsigned long long)ph->p_paddr, (unsigned long long)ph->p_memsz);
    memcpy(dst, file + ph->p_offset, ph->p_filesz);
    memset(dst + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
    guest_ram_mark_dirty(ram, ph->p_paddr, ph->p_memsz);
    return 0;
}

int boot_load_elf(struct guest_ram *ram, const uint8_t *file, size_t size,
                  struct boot_image *img, struct err *e)
{
    int rc = check_elf_header(file, size, e);
    if (rc)
        return rc;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)file;
    memset(img, 0, sizeof(*img));
    img->low = UINT64_MAX;
    bool entry_loaded = false;
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, file + eh->e_phoff + i * sizeof(ph), sizeof(ph));
        if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
            continue;
        rc = load_segment(ram, file, size, &ph, e);
        if (rc)
            return rc;
        if (ph.p_paddr < img->low)
            img->low = ph.p_paddr;
        if (ph.p_paddr + ph.p_memsz > img->high)
            img->high = ph.p_paddr + ph.p_memsz;
        /* the segment fits in RAM, so p_paddr + p_memsz cannot wrap */
        if (eh->e_entry >= ph.p_paddr && eh->e_entry - ph.p_paddr < ph.p_memsz)
            entry_loaded = true;
    }
    if (img->low == UINT64_MAX)
        return err_set(e, ENOEXEC, "ELF has no loadable segment");
    img->entry = eh->e_entry;
    if (!entry_loaded) /* [low, high) may have gaps between segments */
        return err_set(e, ENOEXEC, "entry 0x%llx is outside its segments",
                       (unsigned long long)img->entry);
    return 0;
}

int boot_load_initrd(struct guest_ram *ram, const uint8_t *file, size_t size,
                     struct boot_image *img, struct err *e)
{
    uint64_t top = ram->region[0].size;
    if (top > INITRD_ADDR_MAX + 1)
        top = INITRD_ADDR_MAX + 1;
    uint64_t addr = size <= top ? ((top - size) & ~(GUEST_PAGE_SIZE - 1)) : 0;
    if (size == 0 || addr < img->high || addr < BOOT_HIMEM_ADDR)
        return err_set(e, ENOMEM,
                       "initrd of %zu bytes does not fit below "
                       "0x%llx above the kernel",
                       size, (unsigned long long)top);
    int rc = guest_ram_write(ram, addr, file, size);
    if (rc)
        return err_set(e, -rc, "initrd does not fit in guest ram");
    img->initrd_addr = addr;
    img->initrd_size = size;
    return 0;
}

unsigned boot_e820(const struct guest_ram *ram, struct e820_entry *map)
{
    unsigned n = 0;
    uint64_t low = ram->region[0].size;
    map[n++] = (struct e820_entry){0, BOOT_EBDA_ADDR, E820_RAM};
    map[n++] = (struct e820_entry){BOOT_EBDA_ADDR, 0xa0000 - BOOT_EBDA_ADDR, E820_RESERVED};
    map[n++] = (struct e820_entry){BOOT_BIOS_ADDR, BOOT_HIMEM_ADDR - BOOT_BIOS_ADDR,
                                   E820_RESERVED};
    if (low > BOOT_HIMEM_ADDR)
        map[n++] = (struct e820_entry){BOOT_HIMEM_ADDR, low - BOOT_HIMEM_ADDR, E820_RAM};
    if (ram->nregions > 1)
        map[n++] = (struct e820_entry){ram->region[1].gpa, ram->region[1].size, E820_RAM};
    return n;
}

static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}
static void put16(uint8_t *p, uint16_t v)
{
    memcpy(p, &v, 2);
}

static void fill_zero_page(uint8_t *zp, const struct guest_ram *ram,
                           const struct boot_image *img, size_t cmdline_len)
{
    memset(zp, 0, ZP_SIZE);
    put16(zp + ZP_BOOT_FLAG, 0xaa55);
    memcpy(zp + ZP_HEADER, "HdrS", 4);
    put16(zp + ZP_VERSION, 0x020f);
    zp[ZP_TYPE_OF_LOADER] = 0xff; /* undefined boot loader */
    zp[ZP_LOADFLAGS] = 0x01;      /* LOADED_HIGH */
    put32(zp + ZP_CMD_LINE_PTR, BOOT_CMDLINE_ADDR);
    put32(zp + ZP_CMDLINE_SIZE, (uint32_t)cmdline_len);
    put32(zp + ZP_INITRD_ADDR_MAX, (uint32_t)INITRD_ADDR_MAX);
    put32(zp + ZP_RAMDISK_IMAGE, (uint32_t)img->initrd_addr);
    put32(zp + ZP_RAMDISK_SIZE, (uint32_t)img->initrd_size);
    struct e820_entry map[E820_MAX];
    unsigned n = boot_e820(ram, map);
    zp[ZP_E820_ENTRIES] = (uint8_t)n;
    memcpy(zp + ZP_E820_TABLE, map, n * sizeof(map[0]));
}

/* Identity map of the first 4 GiB with 2 MiB pages: enough for the kernel to
 * reach its own page tables; both Linux and tern-guest build their own. */
static void fill_page_tables(uint8_t *low)
{
    uint64_t *pml4 = (uint64_t *)(low + BOOT_PML4_ADDR);
    uint64_t *pdpt = (uint64_t *)(low + BOOT_PDPT_ADDR);
    uint64_t *pd = (uint64_t *)(low + BOOT_PD_ADDR);
    memset(pml4, 0, GUEST_PAGE_SIZE);
    memset(pdpt, 0, GUEST_PAGE_SIZE);
    pml4[0] = BOOT_PDPT_ADDR | 0x3; /* present, writable */
    for (unsigned i = 0; i < 4; i++)
        pdpt[i] = (BOOT_PD_ADDR + i * GUEST_PAGE_SIZE) | 0x3;
    for (unsigned i = 0; i < 4 * 512; i++)
        pd[i] = (i * PAGE_2M) | 0x83; /* present, rw, 2 MiB */
}

static void fill_gdt(uint8_t *low)
{
    static const uint64_t gdt[] = {
        0,                     /* null */
        0,                     /* unused, Linux's __BOOT_CS is 0x10 */
        0x00af9b000000ffffULL, /* 0x10: 64-bit code */
        0x00cf93000000ffffULL, /* 0x18: data */
        0x00008b0000000067ULL, /* 0x20: TSS, 64-bit busy, base 0 */
        0,
    };
    memcpy(low + BOOT_GDT_ADDR, gdt, sizeof(gdt));
}

int boot_setup_memory(struct guest_ram *ram, const struct boot_image *img,
                      const char *cmdline, struct err *e)
{
    size_t len = strlen(cmdline);
    if (len >= BOOT_CMDLINE_MAX)
        return err_set(e, E2BIG, "kernel command line is %zu bytes, at most %d", len,
                       BOOT_CMDLINE_MAX - 1);
    uint8_t *low = guest_ram_ptr(ram, 0, BOOT_CMDLINE_ADDR + BOOT_CMDLINE_MAX);
    if (!low)
        return err_set(e, ENOMEM, "guest ram too small for boot structures");
    memcpy(low + BOOT_CMDLINE_ADDR, cmdline, len + 1);
    fill_zero_page(low + BOOT_ZERO_PAGE_ADDR, ram, img, len);
    fill_page_tables(low);
    fill_gdt(low);
    guest_ram_mark_dirty(ram, 0, BOOT_CMDLINE_ADDR + BOOT_CMDLINE_MAX);
    return 0;
}
