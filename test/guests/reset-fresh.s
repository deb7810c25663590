# Real mode: say whether this boot found RAM and the UART as a fresh machine has them, leave
# marks in both, then reset the machine through the keyboard controller (command 0xFE).
# A restart that reused the old machine would show the marks: "dirty-ram", "dirty-uart".
    .code16
    .globl _start
    .set RAM_MARK, 0x7000
    .set MARK, 0x5a
    .set UART_SCRATCH, 0x3ff
_start:
    xor %ax, %ax
    mov %ax, %ds
    mov $msg_boot, %si
    call puts

    mov $msg_clean_ram, %si
    cmpb $MARK, RAM_MARK
    jne 1f
    mov $msg_dirty_ram, %si
1:  call puts

    mov $UART_SCRATCH, %dx
    inb %dx, %al
    mov $msg_clean_uart, %si
    cmp $MARK, %al
    jne 2f
    mov $msg_dirty_uart, %si
2:  call puts

    movb $MARK, RAM_MARK
    mov $UART_SCRATCH, %dx
    mov $MARK, %al
    outb %al, %dx

    mov $0xfe, %al
    out %al, $0x64
    hlt

    .include "lib/serial.inc"

msg_boot: .asciz "boot"
msg_clean_ram: .asciz " clean-ram"
msg_dirty_ram: .asciz " dirty-ram"
msg_clean_uart: .asciz " clean-uart\n"
msg_dirty_uart: .asciz " dirty-uart\n"
