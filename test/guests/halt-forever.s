# Long mode: print a line, then halt with interrupts disabled. Nothing can wake this vCPU.
    .code64
    .globl _start
_start:
    lea msg(%rip), %rsi
    call puts
    cli
    hlt
    jmp _start
msg: .asciz "going to sleep for good\n"
    .include "lib/serial.inc"
