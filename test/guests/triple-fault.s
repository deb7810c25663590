# 64-bit long mode, ring 0: a triple fault. With an empty IDT (limit 0) a
# divide error cannot be delivered (#GP), nor can that #GP (#DF), nor the
# double fault: the CPU shuts down. The DIV is at load address + 9.
    .code64
    .globl _start
_start:
    lidt empty_idt(%rip)         # 7 bytes
    xor %ecx, %ecx               # 2 bytes
    div %ecx                     # divide by zero
    mov $0x3f, %al               # not reached
    out %al, $0xf4
    hlt

empty_idt:
    .word 0                      # limit
    .quad 0                      # base
