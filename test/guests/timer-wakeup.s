# Real mode (load at 0x7c00): HLT woken by a timer interrupt. Installs an
# IRQ0 handler in the interrupt vector table, remaps the 8259 PIC so IRQ0 is
# vector 0x20 and only IRQ0 is unmasked, starts PIT channel 0, then
# `sti; hlt`. Only the interrupt handler sets `ticks`, so seeing it set after
# the HLT means the timer woke the CPU. Exits with 0x11.
    .code16
    .set IRQ0_VECTOR, 0x20
    .set PIT_DIVISOR, 11932      # 1193182 Hz / 11932: about 100 Hz
    .globl _start
_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    movw $irq0, IRQ0_VECTOR * 4       # IVT entry: offset,
    movw %ax, IRQ0_VECTOR * 4 + 2     # segment 0 (this code runs with CS=0)

    mov $IRQ0_VECTOR, %al
    mov $0xfe, %ah               # only IRQ0
    call pic_setup

    # PIT channel 0: lobyte/hibyte access, mode 2 (rate generator).
    mov $0x34, %al
    out %al, $0x43
    mov $PIT_DIVISOR & 0xff, %al
    out %al, $0x40
    mov $PIT_DIVISOR >> 8, %al
    out %al, $0x40

    sti
    hlt
    cli
    cmpw $0, ticks
    je not_woken

    mov $woken, %si
    call puts
    mov $0x11, %al
    out %al, $0xf4
    hlt

not_woken:
    mov $spurious, %si
    call puts
    mov $0x12, %al
    out %al, $0xf4
    hlt

irq0:
    incw %cs:ticks
    push %ax
    mov $0x20, %al               # EOI to the master PIC
    out %al, $0x20
    pop %ax
    iret

    .include "lib/pic8259.inc"
    .include "lib/serial.inc"

ticks: .word 0
woken: .asciz "woken by the timer\n"
spurious: .asciz "HLT returned without a timer interrupt\n"
