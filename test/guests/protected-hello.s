# 32-bit protected mode (flat segments from tsvmm's GDT): print a line on
# COM1, then exit through the debug-exit port with 0x32.
    .code32
    .globl _start
_start:
    mov $msg, %esi
    call puts
    mov $0x32, %al
    out %al, $0xf4
    hlt

    .include "lib/serial.inc"

msg: .asciz "hello from protected mode\n"
