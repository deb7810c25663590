# SMP, 64-bit long mode, meant for CPL3 (--user), where a software KVM
# backend runs guest code natively. Every vCPU of a raw image starts here.
# Each reads its APIC id from the local APIC ID register (MMIO 0xfee00020,
# bits 31:24) and from CPUID leaf 1 (EBX bits 31:24), records them in its
# entry of the report table, then counts up forever without a VM exit. The
# host reads the table and the counters from guest memory and stops the VM.
#
# Report table at 0x200000, 32 bytes per vCPU, indexed by local APIC id:
#   +0 u32 ready (1 once the ids are written)  +4 u32 local APIC id
#   +8 u32 CPUID APIC id                        +16 u64 counter
    .code64
    .set LAPIC_ID, 0xfee00020
    .set REPORT, 0x200000
    .set ENTRY_SIZE, 32

    .text
    .globl _start
_start:
    mov $LAPIC_ID, %rax
    mov (%rax), %r12d
    shr $24, %r12d
    mov $1, %eax
    cpuid
    shr $24, %ebx
    mov %r12d, %edi
    imul $ENTRY_SIZE, %edi
    add $REPORT, %rdi
    mov %r12d, 4(%rdi)
    mov %ebx, 8(%rdi)
    movl $1, (%rdi)                     # stores are seen in order on x86: ids first
1:  incq 16(%rdi)
    jmp 1b
