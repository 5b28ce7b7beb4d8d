/* A kernel that triple-faults at once: it loads an empty IDT and executes
 * ud2, so #UD cannot be delivered, nor the #DF that follows. tern-vmm must
 * end with status 3 and name the vCPU, the exit reason and the RIP. */
.code64
.globl _start
_start:
    lidt idt_empty(%rip)
    ud2
1:  jmp 1b
.balign 8
idt_empty:
    .word 0
    .quad 0
