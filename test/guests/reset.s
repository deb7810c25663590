# Real mode: print "boot", then reset the machine through the keyboard controller (command 0xFE).
    .code16
    .globl _start
_start:
    mov $msg, %si
    mov $0x3f8, %dx
1:  lodsb
    test %al, %al
    jz 2f
    out %al, %dx
    jmp 1b
2:  mov $0xfe, %al
    out %al, $0x64
    hlt
msg: .asciz "boot\n"
