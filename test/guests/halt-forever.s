# Long mode: vCPU 0 prints a line (the others keep quiet, so the line stays whole), then every
# vCPU halts with interrupts disabled. Nothing can wake them.
    .code64
    .globl _start
    .set LAPIC_ID, 0xfee00020
_start:
    mov $LAPIC_ID, %rax
    mov (%rax), %eax
    shr $24, %eax
    jnz sleep
    lea msg(%rip), %rsi
    call puts
sleep:
    cli
    hlt
    jmp _start
msg: .asciz "going to sleep for good\n"
    .include "lib/serial.inc"
