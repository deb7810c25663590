# A multiboot kernel that says so on COM1, then triple-faults: with an empty
# IDT (limit 0) a divide error cannot be delivered, nor the #GP that
# follows, nor the double fault, and the CPU shuts down. A PC (and QEMU)
# resets on that; with -no-reboot the run ends, status 0.
    .code32
    .include "lib/multiboot-header.inc"
_start:
    mov $stack_top, %esp
    mov $message, %esi
    call puts
    lidt empty_idt
    xor %ecx, %ecx
    div %ecx
    hlt

    .include "lib/serial.inc"

message: .asciz "triple fault next\n"
empty_idt:
    .word 0                             # limit
    .long 0                             # base

    .bss
    .balign 16
    .space 1024
stack_top:
