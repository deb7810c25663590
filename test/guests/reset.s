# Real mode: print "boot", then reset the machine through the keyboard controller (command 0xFE).
    .code16
    .globl _start
_start:
    mov $msg, %si
    call puts
    mov $0xfe, %al
    out %al, $0x64
    hlt

    .include "lib/serial.inc"

msg: .asciz "boot\n"
