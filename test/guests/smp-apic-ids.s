# SMP, 64-bit long mode at CPL0. Every vCPU of a raw image starts here at the
# same time, with the same stack pointer, so nothing is pushed until each has
# its own stack. Each vCPU:
#   - reads its APIC id from the local APIC ID register (MMIO 0xfee00020,
#     bits 31:24) and from CPUID leaf 1 (EBX bits 31:24),
#   - takes a stack by that id,
#   - prints "cpu <local APIC id> apic <CPUID APIC id>" in one rep outsb,
#     holding a spinlock so lines do not mix,
#   - counts itself done; the last of the CPUID-reported logical processor
#     count (EBX bits 23:16) writes 0x12 to the debug-exit port (process
#     status 37), the others halt.
    .code64
    .set COM1, 0x3f8
    .set DEBUG_EXIT, 0xf4
    .set EXIT_OK, 0x12
    .set EXIT_TOO_MANY, 0x13
    .set LAPIC_ID, 0xfee00020
    .set STACK_SIZE, 4096
    .set MAX_CPUS, 16
    .set LINE_MAX, 64

    .text
    .globl _start
_start:
    mov $LAPIC_ID, %rax
    mov (%rax), %r12d
    shr $24, %r12d                      # R12: local APIC id
    mov $1, %eax
    cpuid
    mov %ebx, %r13d
    shr $24, %r13d                      # R13: CPUID initial APIC id
    shr $16, %ebx
    movzbl %bl, %r14d                   # R14: logical processors
    cmp $MAX_CPUS, %r12d
    jae too_many

    lea stacks(%rip), %rsp
    lea 1(%r12), %rax
    imul $STACK_SIZE, %rax
    add %rax, %rsp

    sub $LINE_MAX, %rsp                 # the line, built on this vCPU's stack
    mov %rsp, %rdi
    lea cpu_text(%rip), %rsi
    call append
    mov %r12d, %eax
    call append_decimal
    lea apic_text(%rip), %rsi
    call append
    mov %r13d, %eax
    call append_decimal
    movb $'\n', (%rdi)
    inc %rdi

1:  mov $1, %eax                        # take the console lock
    xchg %eax, console_lock(%rip)
    test %eax, %eax
    jz 2f
    pause
    jmp 1b
2:  mov %rdi, %rcx
    sub %rsp, %rcx
    mov %rsp, %rsi
    mov $COM1, %dx
    rep outsb
    movl $0, console_lock(%rip)         # a plain store releases it on x86

    mov $1, %eax
    lock xadd %eax, cpus_done(%rip)
    inc %eax
    cmp %r14d, %eax
    jne halt
    mov $EXIT_OK, %al
    out %al, $DEBUG_EXIT
halt:
    cli
    hlt
    jmp halt

too_many:
    mov $EXIT_TOO_MANY, %al
    out %al, $DEBUG_EXIT
    jmp halt

# Copies the NUL-terminated string at RSI to RDI, advancing RDI.
append:
    lodsb
    test %al, %al
    jz 1f
    stosb
    jmp append
1:  ret

# Writes EAX in decimal at RDI, advancing RDI.
append_decimal:
    mov $10, %ecx
    xor %r8d, %r8d
1:  xor %edx, %edx
    div %ecx
    push %rdx
    inc %r8d
    test %eax, %eax
    jnz 1b
2:  pop %rax
    add $'0', %al
    stosb
    dec %r8d
    jnz 2b
    ret

cpu_text:  .asciz "cpu "
apic_text: .asciz " apic "

    .bss
    .balign 4
console_lock: .long 0
cpus_done:    .long 0
    .balign 16
stacks: .space MAX_CPUS * STACK_SIZE
