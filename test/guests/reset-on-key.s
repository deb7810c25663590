# Real mode: say "boot", then wait for a key on COM1 (polling the line status register):
# "r" resets the machine through the keyboard controller; any other key is ignored.
# A guest whose reboot waits on the user, for the web console's test of a reboot.
    .code16
    .globl _start
    .set COM1_DATA, 0x3f8
    .set COM1_LSR, 0x3fd
    .set LSR_DATA_READY, 0x01
_start:
    xor %ax, %ax
    mov %ax, %ds
    mov $msg_boot, %si
    call puts
wait_key:
    mov $COM1_LSR, %dx
    inb %dx, %al
    test $LSR_DATA_READY, %al
    jz wait_key
    mov $COM1_DATA, %dx
    inb %dx, %al
    cmp $'r', %al
    jne wait_key
    mov $0xfe, %al
    out %al, $0x64
    hlt

    .include "lib/serial.inc"

msg_boot: .asciz "boot, press r to reset\r\n"
