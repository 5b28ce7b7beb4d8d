/* Boot entries' C halves (CPL0): copy the loader's command line and memory
 * map into our BSS, then set up the CPU and drop to CPL3. */
#include "guest.h"

#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_CMD_LINE_PTR 0x228
#define BP_E820_TABLE 0x2d0
#define BP_E820_MAX 128
#define E820_ENTRY_SIZE 20

#define PVH_MAGIC 0x336ec578
#define PVH_VERSION 4
#define PVH_CMDLINE 24
#define PVH_RSDP 32
#define PVH_MEMMAP 40
#define PVH_MEMMAP_COUNT 48
#define PVH_MEMMAP_ENTRY_SIZE 24

struct boot_info boot_info;
_Alignas(16) uint8_t user_stacks[MAX_CPUS][USTACK_SIZE];

void load_own_gdt_and_paging(void);
void user_main(uint32_t cpu) __attribute__((noreturn));

static uint32_t read_u32(uint64_t addr)
{
    return *(const volatile uint32_t *)addr;
}
static uint64_t read_u64(uint64_t addr)
{
    return *(const volatile uint64_t *)addr;
}

static void copy_cmdline(uint64_t addr)
{
    const char *src = (const char *)addr;
    size_t n = 0;
    if (addr)
        while (n < CMDLINE_MAX - 1 && src[n])
            n++;
    memcpy(boot_info.cmdline, src, n);
    boot_info.cmdline[n] = 0;
}

static void add_region(uint64_t addr, uint64_t size, uint32_t type)
{
    if (boot_info.nregions >= MAX_MEM_REGIONS)
        return;
    struct mem_region *r = &boot_info.regions[boot_info.nregions++];
    r->addr = addr;
    r->size = size;
    r->type = type;
}

static void __attribute__((noreturn)) kernel_main(void)
{
    cpu_init_local(0);
    map_high_ram();
    enter_user(user_main, (uint64_t)user_stacks[0] + USTACK_SIZE, 0);
}

/* Entry 1 (64-bit Linux boot protocol); bp = struct boot_params. */
void linux_main(uint64_t bp)
{
    uint64_t cmd = read_u32(bp + BP_CMD_LINE_PTR) |
                   (uint64_t)read_u32(bp + BP_EXT_CMD_LINE_PTR) << 32;
    uint32_t n = *(const volatile uint8_t *)(bp + BP_E820_ENTRIES);

    copy_cmdline(cmd);
    if (n > BP_E820_MAX)
        n = BP_E820_MAX;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t e = bp + BP_E820_TABLE + (uint64_t)i * E820_ENTRY_SIZE;
        add_region(read_u64(e), read_u64(e + 8), read_u32(e + 16));
    }
    load_own_gdt_and_paging();
    kernel_main();
}

/* Entry 2 (PVH); si = struct hvm_start_info, already on our GDT/paging. */
void pvh_main(uint64_t si)
{
    if (read_u32(si) != PVH_MAGIC) {
        kputs0("FATAL bad hvm_start_info magic\n");
        power_off0();
    }
    copy_cmdline(read_u64(si + PVH_CMDLINE));
    boot_info.rsdp = read_u64(si + PVH_RSDP);
    if (read_u32(si + PVH_VERSION) >= 1) {
        uint64_t map = read_u64(si + PVH_MEMMAP);
        uint32_t n = read_u32(si + PVH_MEMMAP_COUNT);
        for (uint32_t i = 0; i < n && map; i++) {
            uint64_t e = map + (uint64_t)i * PVH_MEMMAP_ENTRY_SIZE;
            add_region(read_u64(e), read_u64(e + 8), read_u32(e + 16));
        }
    }
    kernel_main();
}

void ap_kernel_main(uint32_t index)
{
    cpu_init_local(index);
    enter_user(ap_user_main, (uint64_t)user_stacks[index] + USTACK_SIZE, index);
}
