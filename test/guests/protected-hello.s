# 32-bit protected mode (flat segments from tsvmm's GDT): print a line on
# COM1, then exit through the debug-exit port with 0x32.
    .code32
    .globl _start
_start:
    mov $msg, %esi
    mov $0x3f8, %dx
1:  lodsb
    test %al, %al
    jz 2f
    out %al, %dx
    jmp 1b
2:  mov $0x32, %al
    out %al, $0xf4
    hlt
msg: .asciz "hello from protected mode\n"
