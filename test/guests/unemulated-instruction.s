# 64-bit long mode, ring 0: an x87 add whose operand is in the MMIO hole.
# The CPU itself could run it, but an MMIO operand makes KVM emulate the
# instruction, and KVM's instruction emulator has no x87 arithmetic: KVM
# stops with KVM_EXIT_INTERNAL_ERROR (suberror 1, EMULATION). On a software
# backend, where all ring-0 code is emulated, tsvmm's emulation assist gets
# it next and lacks it too. The instruction is at load address + 5.
    .code64
    .set NOWHERE, 0xd0000000     # in the MMIO hole, no device there
    .globl _start
_start:
    mov $NOWHERE, %ebx           # 5 bytes; zero-extends into %rbx
    fadds (%rbx)
    mov $0x3f, %al               # not reached
    out %al, $0xf4
    hlt
