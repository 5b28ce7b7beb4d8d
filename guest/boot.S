/* tern-guest entry points, boot-time tables and the AP trampoline.
 *
 * Everything here runs at CPL0 or in real/32-bit mode, which kvm_pvm
 * emulates instruction by instruction: keep it to the fewest instructions.
 * That is why the page tables and the GDT are static data instead of being
 * built at run time.
 */
#include "guest.h"

#define CR0_PE 0x00000001
#define CR0_PG 0x80000000
#define CR4_PAE 0x20
#define MSR_EFER 0xc0000080
#define EFER_LME 0x100
#define PTE_PRESENT_RW_USER 0x7
#define PDE_2M_WB 0x87  /* present, writable, user, 2 MiB */
#define PDE_2M_UC 0x9f  /* same plus PWT|PCD, for the MMIO hole */

/* ---------------------------------------------------------------- entries */
    .section .text.entry, "ax"
    .code64
/* Entry 1: 64-bit Linux boot protocol.  Long mode, identity-mapped, RSI =
 * struct boot_params.  linux_main copies what it needs while the VMM's
 * tables are still live, then switches to ours. */
    .globl linux_entry64
linux_entry64:
    cli
    mov $(kernel_stacks + KSTACK_SIZE), %rsp
    mov %rsi, %rdi
    call linux_main
    jmp halt_forever

/* Entry 2: PVH (32-bit protected mode, paging off, EBX = hvm_start_info). */
    .code32
    .globl pvh_entry32
pvh_entry32:
    cli
    mov %ebx, %esi
    mov %cr4, %eax
    or $CR4_PAE, %eax
    mov %eax, %cr4
    mov $pml4, %eax
    mov %eax, %cr3
    mov $MSR_EFER, %ecx
    rdmsr
    or $EFER_LME, %eax
    wrmsr
    mov %cr0, %eax
    or $(CR0_PG | CR0_PE), %eax
    mov %eax, %cr0
    lgdt gdt_ptr
    ljmp $SEL_KCODE, $pvh_entry64

    .code64
pvh_entry64:
    mov $SEL_KDATA, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov $(kernel_stacks + KSTACK_SIZE), %rsp
    mov %esi, %edi
    call pvh_main
    jmp halt_forever

/* Entered from the trampoline in 64-bit mode on our GDT and page tables. */
ap_entry64:
    mov $SEL_KDATA, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov $1, %eax
    lock xaddl %eax, ap_next_index(%rip)
    cmp $MAX_CPUS, %eax
    jae halt_forever
    mov %eax, %edi
    lea 1(%rax), %rsp
    shl $13, %rsp            /* KSTACK_SIZE == 8192 */
    add $kernel_stacks, %rsp
    call ap_kernel_main
halt_forever:
    cli
    hlt
    jmp halt_forever

/* Load our GDT, CS/DS/SS and page tables; returns to the caller. */
    .globl load_own_gdt_and_paging
load_own_gdt_and_paging:
    lgdt gdt_ptr(%rip)
    mov $pml4, %eax
    mov %rax, %cr3
    mov $SEL_KDATA, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    pop %rax
    push $SEL_KCODE
    push %rax
    lretq

/* enter_user(entry, stack_top, arg): iretq to CPL3 with IF=0, IOPL=0. */
    .globl enter_user
enter_user:
    sub $8, %rsi             /* as if called: rsp % 16 == 8 at entry */
    push $SEL_UDATA
    push %rsi
    push $2
    push $SEL_UCODE
    push %rdi
    mov %edx, %edi
    iretq

/* -------------------------------------------------------- AP trampoline
 * Copied to AP_TRAMPOLINE_ADDR and started by SIPI vector 0x08 in real mode
 * with CS = 0x0800, IP = 0.  Addresses inside it are rebased by hand. */
#define TRAMP(x) ((x) - ap_trampoline_start + AP_TRAMPOLINE_ADDR)
    .globl ap_trampoline_start, ap_trampoline_end
    .code16
ap_trampoline_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    lgdtl TRAMP(tramp_gdtr)
    mov %cr0, %eax
    or $CR0_PE, %eax
    mov %eax, %cr0
    ljmpl $SEL_KCODE32, $TRAMP(tramp32)
    .code32
tramp32:
    mov $SEL_KDATA, %eax
    mov %eax, %ds
    mov %eax, %ss
    mov %cr4, %eax
    or $CR4_PAE, %eax
    mov %eax, %cr4
    mov $pml4, %eax
    mov %eax, %cr3
    mov $MSR_EFER, %ecx
    rdmsr
    or $EFER_LME, %eax
    wrmsr
    mov %cr0, %eax
    or $CR0_PG, %eax
    mov %eax, %cr0
    ljmp $SEL_KCODE, $ap_entry64
    .balign 8
tramp_gdtr:
    .word gdt_end - gdt - 1
    .long gdt
ap_trampoline_end:
    .code64

/* ------------------------------------------------------------------ data */
    .data
    .balign 4
ap_next_index:
    .long 1

    .balign 16
    .globl gdt
gdt:
    .quad 0
    .quad 0x00af9a000000ffff    /* 0x08 kernel code, 64-bit */
    .quad 0x00cf92000000ffff    /* 0x10 kernel data */
    .quad 0x00cf9a000000ffff    /* 0x18 kernel code, 32-bit (trampoline) */
    .quad 0x00cff2000000ffff    /* 0x20 user data, DPL 3 */
    .quad 0x00affa000000ffff    /* 0x28 user code, 64-bit, DPL 3 */
    .fill MAX_CPUS * 2, 8, 0    /* 0x30.. one 16-byte TSS descriptor per CPU */
gdt_end:
    .balign 8
gdt_ptr:
    .word gdt_end - gdt - 1
    .quad gdt

/* Identity map of the first 4 GiB with 2 MiB pages, everything user and
 * writable; 3-4 GiB (MMIO, LAPIC) uncached.  RAM above 4 GiB is added to
 * pdpt at run time (map_high_ram). */
.macro pd_fill base, flags
    .set pd_addr, \base
    .rept 512
    .quad pd_addr + \flags
    .set pd_addr, pd_addr + 0x200000
    .endr
.endm

    .section .data.pagetables, "aw"
    .balign 4096
    .globl pml4, pdpt
pml4:
    .quad pdpt + PTE_PRESENT_RW_USER
    .fill 511, 8, 0
pdpt:
    .quad pd0 + PTE_PRESENT_RW_USER
    .quad pd1 + PTE_PRESENT_RW_USER
    .quad pd2 + PTE_PRESENT_RW_USER
    .quad pd3 + PTE_PRESENT_RW_USER
    .fill 508, 8, 0
pd0:
    pd_fill 0x00000000, PDE_2M_WB
pd1:
    pd_fill 0x40000000, PDE_2M_WB
pd2:
    pd_fill 0x80000000, PDE_2M_WB
pd3:
    pd_fill 0xc0000000, PDE_2M_UC

/* ------------------------------------------------------------- PVH note
 * QEMU reads the descriptor as a 64-bit value and aligns the name by the
 * segment's p_align, so: 4-byte alignment and an 8-byte descriptor (as
 * Linux does). */
    .section .note.Xen, "a", @note
    .balign 4
    .long 4
    .long 8
    .long 18                    /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .quad pvh_entry32

    .section .note.GNU-stack, "", @progbits
