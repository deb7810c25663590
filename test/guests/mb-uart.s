# A multiboot kernel written as for QEMU rather than for tsvmm: it loads its
# own GDT, drives COM1 as a 16550 UART (interrupts off, 38400 baud through
# the divisor latch, 8N1 in the line control register, FIFOs on), checks the
# chip with a loopback self-test as the common hobby-OS serial driver does,
# reads the settings back, and waits for the transmit holding register to be
# empty (line status bit 5) before each byte. It prints its command line and
# exits through the debug-exit port with 0x20 (process status 65), or 0x21
# (status 67) when the UART failed its self-test or lost its settings.
    .code32
    .set BOOTLOADER_MAGIC, 0x2badb002
    .set INFO_CMDLINE, 1 << 2
    .set CMDLINE, 16
    .set DEBUG_EXIT, 0xf4
    .set EXIT_OK, 0x20
    .set EXIT_UART_BROKEN, 0x21

# 16550 registers, as offsets from COM1.
    .set COM1, 0x3f8
    .set DATA, COM1 + 0                 # transmit holding / receive buffer; divisor low with DLAB
    .set IER, COM1 + 1                  # interrupt enable; divisor high with DLAB
    .set FCR, COM1 + 2
    .set LCR, COM1 + 3
    .set MCR, COM1 + 4
    .set LSR, COM1 + 5
    .set LCR_DLAB, 0x80
    .set LCR_8N1, 0x03
    .set FCR_ENABLE_CLEAR_14, 0xc7      # FIFOs on, both cleared, 14-byte trigger
    .set MCR_DTR_RTS_OUT2, 0x0b
    .set MCR_LOOPBACK_TEST, 0x1e        # loopback, OUT1, OUT2, RTS
    .set MCR_NORMAL, 0x0f               # DTR, RTS, OUT1, OUT2
    .set LOOPBACK_BYTE, 0xae
    .set LSR_THR_EMPTY, 0x20
    .set DIVISOR_38400, 3

    .include "lib/multiboot-header.inc"

_start:
    cli
    mov $stack_top, %esp
    cmp $BOOTLOADER_MAGIC, %eax
    jne halt                            # not booted by a multiboot loader: nothing to report to
    mov %ebx, %ebp
    lgdt gdt_descriptor
    ljmp $CODE_SELECTOR, $1f
1:  mov $DATA_SELECTOR, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %fs
    mov %ax, %gs
    mov %ax, %ss

    call uart_init
    call uart_loopback_test
    jne uart_broken
    call uart_check
    jne uart_broken

    mov $hello, %esi
    call uart_puts
    testl $INFO_CMDLINE, (%ebp)
    jz 1f
    mov CMDLINE(%ebp), %esi
    call uart_puts
1:  mov $'\n', %al
    call uart_putc
    mov $EXIT_OK, %al
    out %al, $DEBUG_EXIT
    jmp halt

uart_broken:
    mov $EXIT_UART_BROKEN, %al
    out %al, $DEBUG_EXIT
halt:
    cli
    hlt
    jmp halt

uart_init:
    mov $IER, %dx
    xor %al, %al
    out %al, %dx
    mov $LCR, %dx
    mov $LCR_DLAB, %al
    out %al, %dx
    mov $DATA, %dx
    mov $DIVISOR_38400, %al
    out %al, %dx
    mov $IER, %dx
    xor %al, %al
    out %al, %dx
    mov $LCR, %dx
    mov $LCR_8N1, %al
    out %al, %dx
    mov $FCR, %dx
    mov $FCR_ENABLE_CLEAR_14, %al
    out %al, %dx
    mov $MCR, %dx
    mov $MCR_DTR_RTS_OUT2, %al
    out %al, %dx
    ret

# Sets ZF when a byte sent in loopback mode comes back; leaves the modem lines up.
uart_loopback_test:
    mov $MCR, %dx
    mov $MCR_LOOPBACK_TEST, %al
    out %al, %dx
    mov $DATA, %dx
    mov $LOOPBACK_BYTE, %al
    out %al, %dx
    in %dx, %al
    mov %al, %ah
    mov $MCR, %dx
    mov $MCR_NORMAL, %al
    out %al, %dx
    cmp $LOOPBACK_BYTE, %ah
    ret

# Sets ZF when the UART reads back the divisor, line and modem control settings.
uart_check:
    mov $LCR, %dx
    mov $LCR_DLAB | LCR_8N1, %al
    out %al, %dx
    mov $DATA, %dx
    in %dx, %al
    cmp $DIVISOR_38400, %al
    jne 1f
    mov $IER, %dx
    in %dx, %al
    test %al, %al
    jne 1f
    mov $LCR, %dx
    mov $LCR_8N1, %al
    out %al, %dx
    in %dx, %al
    cmp $LCR_8N1, %al
    jne 1f
    mov $MCR, %dx
    in %dx, %al
    cmp $MCR_NORMAL, %al
1:  ret

# Prints the NUL-terminated string at ESI.
uart_puts:
    lodsb
    test %al, %al
    jz 1f
    call uart_putc
    jmp uart_puts
1:  ret

# Prints AL once the transmitter can take it.
uart_putc:
    push %eax
    mov $LSR, %dx
1:  in %dx, %al
    test $LSR_THR_EMPTY, %al
    jz 1b
    pop %eax
    mov $DATA, %dx
    out %al, %dx
    ret

    .set CODE_SELECTOR, 0x08
    .set DATA_SELECTOR, 0x10
    .balign 8
gdt:
    .quad 0
    .quad 0x00cf9a000000ffff            # flat 4 GiB code, ring 0
    .quad 0x00cf92000000ffff            # flat 4 GiB data, ring 0
gdt_end:
gdt_descriptor:
    .word gdt_end - gdt - 1
    .long gdt

hello:
    .asciz "uart kernel: "

    .bss
    .balign 16
    .space 4096
stack_top:
