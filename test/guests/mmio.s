# 64-bit long mode, ring 0: MMIO exits. Writes values of 1, 2, 4 and 8 bytes
# to the test device (tsvmm run --test-device 0xc0000000), reads them back,
# reads its access counter (offset 0xff8), then reads and writes an address
# in the MMIO hole where no device is. Each result is printed on COM1 as
# "name=<16 hex digits>"; the guest exits with 0.
    .code64
    .set DEVICE, 0xc0000000
    .set NOWHERE, 0xd0000000     # in the MMIO hole, no device there
    .set COUNTER, 0xff8
    .globl _start
_start:
    mov $DEVICE, %rbx
    movb $0x5a, 0x00(%rbx)
    movw $0xbeef, 0x10(%rbx)
    movl $0xdeadbeef, 0x20(%rbx)
    movabs $0x0123456789abcdef, %rax
    mov %rax, 0x30(%rbx)

    movzbq 0x00(%rbx), %rax
    lea u8(%rip), %rsi
    call show64
    call newline
    movzwq 0x10(%rbx), %rax
    lea u16(%rip), %rsi
    call show64
    call newline
    mov 0x20(%rbx), %eax         # zero-extends to %rax
    lea u32(%rip), %rsi
    call show64
    call newline
    mov 0x30(%rbx), %rax
    lea u64(%rip), %rsi
    call show64
    call newline
    mov COUNTER(%rbx), %rax      # 4 writes + 4 reads + this read
    lea count(%rip), %rsi
    call show64
    call newline

    mov $NOWHERE, %rbx
    mov (%rbx), %rax             # nothing answers: the bus floats high
    lea absent(%rip), %rsi
    call show64
    call newline
    movq $0, (%rbx)              # goes nowhere
    mov (%rbx), %rax
    lea absent_after_write(%rip), %rsi
    call show64
    call newline

    mov $0, %al
    out %al, $0xf4
    hlt

    .include "lib/serial.inc"
    .include "lib/serial-hex64.inc"

u8: .asciz "u8="
u16: .asciz "u16="
u32: .asciz "u32="
u64: .asciz "u64="
count: .asciz "accesses="
absent: .asciz "absent="
absent_after_write: .asciz "absent-after-write="
