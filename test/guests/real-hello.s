# Real mode: print a line on COM1, then exit through the debug-exit port with 0x21.
    .code16
    .globl _start
_start:
    mov $msg, %si
    call puts
    mov $0x21, %al
    out %al, $0xf4
    hlt

    .include "lib/serial.inc"

msg: .asciz "hello from real mode\n"
