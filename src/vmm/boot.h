/* Loading a kernel the way the Linux x86-64 64-bit boot protocol says: ELF
 * segments at their physical addresses, a zero page (struct boot_params) with
 * the e820 map, command line and initrd, identity-mapped page tables and a
 * flat GDT, entered in long mode with RSI pointing at the zero page.
 * Pure functions over guest RAM, so the unit tests run them without KVM. */
#ifndef TERN_VMM_BOOT_H
#define TERN_VMM_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/guest_ram.h"

/* Fixed low-memory layout of what the VMM writes before the guest runs. */
#define BOOT_GDT_ADDR 0x500
#define BOOT_ZERO_PAGE_ADDR 0x7000
#define BOOT_STACK_TOP 0x8ff0
#define BOOT_PML4_ADDR 0x9000
#define BOOT_PDPT_ADDR 0xa000
#define BOOT_PD_ADDR 0xb000 /* four pages: 4 GiB of 2 MiB mappings */
#define BOOT_CMDLINE_ADDR 0x20000
#define BOOT_CMDLINE_MAX 0x10000
#define BOOT_EBDA_ADDR 0x9fc00 /* MP table lives here */
#define BOOT_BIOS_ADDR 0xf0000
#define BOOT_HIMEM_ADDR 0x100000
#define BOOT_KERNEL_MIN_ADDR 0x100000

#define BOOT_SEL_CODE 0x10
#define BOOT_SEL_DATA 0x18
#define BOOT_SEL_TSS 0x20

#define E820_RAM 1
#define E820_RESERVED 2
#define E820_MAX 16

struct e820_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
} __attribute__((packed));

struct boot_image {
    uint64_t entry;     /* physical entry point */
    uint64_t low, high; /* physical range the segments occupy */
    uint64_t initrd_addr, initrd_size;
};

/* Checks and loads an ELF64 x86-64 executable from memory into guest RAM. The
 * segments must lie in RAM at or above 1 MiB. */
int boot_load_elf(struct guest_ram *ram, const uint8_t *file, size_t size,
                  struct boot_image *img, struct err *e);
/* Places the initrd at the top of low RAM below 896 MiB, above the kernel. */
int boot_load_initrd(struct guest_ram *ram, const uint8_t *file, size_t size,
                     struct boot_image *img, struct err *e);
/* Fills the e820 map for this RAM layout; returns the entry count. */
unsigned boot_e820(const struct guest_ram *ram, struct e820_entry *map);
/* Writes zero page, command line, GDT and page tables. */
int boot_setup_memory(struct guest_ram *ram, const struct boot_image *img,
                      const char *cmdline, struct err *e);

/* Offsets in struct boot_params used here (Documentation/arch/x86/zero-page). */
#define ZP_EXT_CMD_LINE_PTR 0x0c8
#define ZP_E820_ENTRIES 0x1e8
#define ZP_SETUP_HEADER 0x1f1
#define ZP_BOOT_FLAG 0x1fe
#define ZP_HEADER 0x202
#define ZP_VERSION 0x206
#define ZP_TYPE_OF_LOADER 0x210
#define ZP_LOADFLAGS 0x211
#define ZP_RAMDISK_IMAGE 0x218
#define ZP_RAMDISK_SIZE 0x21c
#define ZP_CMD_LINE_PTR 0x228
#define ZP_INITRD_ADDR_MAX 0x22c
#define ZP_CMDLINE_SIZE 0x238
#define ZP_E820_TABLE 0x2d0
#define ZP_SIZE 0x1000

#endif
