# 64-bit long mode: print a line on COM1, then exit with 0x2a.
    .code64
    .globl _start
_start:
    lea msg(%rip), %rsi
    mov $0x3f8, %dx
    mov $msglen, %rcx
    rep outsb
    mov $0x2a, %al
    out %al, $0xf4
    hlt
msg: .ascii "hello from long mode\n"
    .set msglen, . - msg
