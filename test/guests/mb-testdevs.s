# A multiboot kernel (ELF, linked at 1 MiB) that uses QEMU's test devices as
# kvm-unit-tests do and prints what it reads on COM1, so that its output under
# tsvmm and under qemu-system-x86_64 -device pc-testdev -device pci-testdev
# can be compared:
#
#   pc-testdev   the scratch register at port 0xe0 (a dword, then a byte and
#                a word written into it; its byte view at 0xe8), the
#                flush-page port 0xe4, iomem at 0xff000000, and IRQ-line port
#                0x2005 raising and lowering ISA IRQ 5, made level-triggered
#                in the PIC's ELCR so that its IRR bit follows the line
#   pci-testdev  found by scanning bus 0 (QEMU has other devices before it),
#                its IDs, BAR size masks, then the three tests of each BAR:
#                the header, and the count after a ring with the test's data
#                byte and after one with another byte
#
# Exits through the debug-exit port with 0x30 (status 97), or 0x31 (status 99)
# when bus 0 has no pci-testdev.
    .code32
    .set DEBUG_EXIT, 0xf4
    .set EXIT_OK, 0x30
    .set EXIT_NO_PCI_TESTDEV, 0x31

# pc-testdev
    .set SCRATCH, 0xe0
    .set FLUSH_PAGE, 0xe4
    .set SCRATCH_BYTES, 0xe8
    .set IRQ_LINE, 0x2000
    .set IOMEM, 0xff000000
    .set TEST_IRQ, 5
    .set PIC_MASTER, 0x20
    .set OCW3_READ_IRR, 0x0a
    .set ELCR_MASTER, 0x4d0

# pci-testdev: config registers, and a test's header in its BAR
    .set PCI_TESTDEV_ID, 0x00051b36     # device 0x0005, vendor 0x1b36
    .set REG_ID, 0x00
    .set REG_COMMAND, 0x04
    .set REG_CLASS, 0x08
    .set REG_BAR0, 0x10
    .set REG_BAR1, 0x14
    .set REG_SUBSYSTEM, 0x2c
    .set REG_INTERRUPT, 0x3c
    .set COMMAND_IO_MEMORY, 0x3
    .set SLOTS, 32
    .set HDR_TEST, 0
    .set HDR_WIDTH, 1
    .set HDR_OFFSET, 4
    .set HDR_DATA, 8
    .set HDR_COUNT, 12
    .set HDR_NAME, 16
    .set TESTS_PER_BAR, 3

# A BAR's accessors (below): its base, then read a byte, read a dword, write
# a byte, each at the offset in ECX (AL or EAX in or out; clobbers DX).
    .set OPS_BASE, 0
    .set OPS_READB, 4
    .set OPS_READL, 8
    .set OPS_WRITEB, 12

    .include "lib/multiboot-header.inc"

_start:
    cli
    mov $stack_top, %esp
    call scratch_register
    call flush_page
    call iomem
    call irq_line
    call find_pci_testdev
    jc no_pci_testdev
    call show_function
    call size_bars
    mov $mmio_ops, %ebp
    call run_tests
    mov $pio_ops, %ebp
    call run_tests
    mov $EXIT_OK, %al
exit:
    out %al, $DEBUG_EXIT
halt:
    cli
    hlt
    jmp halt

no_pci_testdev:
    mov $no_testdev, %esi
    call puts
    call newline
    mov $EXIT_NO_PCI_TESTDEV, %al
    jmp exit

scratch_register:
    mov $0x12345678, %eax
    out %eax, $SCRATCH
    in $SCRATCH, %eax
    mov $l_ioport, %esi
    call show32
    mov $0xab, %al
    out %al, $SCRATCH + 1
    in $SCRATCH, %eax
    mov $l_byte1, %esi
    call show32
    mov $0xcdef, %ax
    out %ax, $SCRATCH + 2
    in $SCRATCH, %eax
    mov $l_word2, %esi
    call show32
    in $SCRATCH + 3, %al
    mov $l_in3, %esi
    call show8
    mov $0x99, %al
    out %al, $SCRATCH_BYTES + 3
    in $SCRATCH_BYTES, %eax
    mov $l_view, %esi
    call show32
    jmp newline

flush_page:
    mov $stack, %eax
    out %eax, $FLUSH_PAGE
    in $FLUSH_PAGE, %eax
    mov $l_flush, %esi
    call show32
    jmp newline

iomem:
    mov IOMEM + 0x100, %eax
    mov $l_iomem, %esi
    call show32
    movl $0xdeadbeef, IOMEM
    movb $0x5a, IOMEM + 1
    movw $0x1357, IOMEM + 0xfffe
    mov IOMEM, %eax
    mov $l_dword, %esi
    call show32
    movzbl IOMEM + 1, %eax
    mov $l_byte, %esi
    call show8
    movzwl IOMEM + 0xfffe, %eax
    mov $l_top, %esi
    call show32
    jmp newline

irq_line:
    mov $ELCR_MASTER, %dx
    in %dx, %al
    or $(1 << TEST_IRQ), %al
    out %al, %dx
    mov $OCW3_READ_IRR, %al
    out %al, $PIC_MASTER
    mov $1, %al
    mov $l_raised, %esi
    call drive_test_irq
    xor %al, %al
    mov $l_lowered, %esi
    call drive_test_irq
    jmp newline

# Drives the test IRQ's line to AL through pc-testdev, then prints the label
# at ESI and the line's bit in the PIC's interrupt request register.
drive_test_irq:
    mov $IRQ_LINE + TEST_IRQ, %dx
    out %al, %dx
    in $PIC_MASTER, %al
    shr $TEST_IRQ, %al
    and $1, %al
    jmp show8

# EDI = the slot of bus 0 that holds the pci-testdev; CF set when none does.
find_pci_testdev:
    xor %edi, %edi
1:  mov $REG_ID, %esi
    call config_read
    cmp $PCI_TESTDEV_ID, %eax
    je 2f
    inc %edi
    cmp $SLOTS, %edi
    jb 1b
    stc
2:  ret

# Slot EDI's IDs, class, subsystem and interrupt pin.
show_function:
    mov $REG_ID, %esi
    call config_read
    mov $l_id, %esi
    call show32
    mov $REG_CLASS, %esi
    call config_read
    mov $l_class, %esi
    call show32
    mov $REG_SUBSYSTEM, %esi
    call config_read
    mov $l_subsystem, %esi
    call show32
    mov $REG_INTERRUPT, %esi
    call config_read
    shr $8, %eax
    mov $l_pin, %esi
    call show8
    jmp newline

# Sizes BAR0 and BAR1 of slot EDI with decoding off, keeps their addresses
# for the accessors, then turns memory and I/O decoding on.
size_bars:
    xor %ecx, %ecx
    mov $REG_COMMAND, %esi
    call config_write
    mov $REG_BAR0, %esi
    mov $l_bar0_mask, %ebx
    call size_bar
    and $0xfffffff0, %eax
    mov %eax, mmio_ops + OPS_BASE
    mov $REG_BAR1, %esi
    mov $l_bar1_mask, %ebx
    call size_bar
    and $0xfffffffc, %eax
    mov %eax, pio_ops + OPS_BASE
    call newline
    mov $COMMAND_IO_MEMORY, %ecx
    mov $REG_COMMAND, %esi
    jmp config_write

# Writes all-ones to the BAR at register ESI, prints the label at EBX and the
# size mask read back, puts the BAR back; EAX = the BAR as it was.
size_bar:
    call config_read
    push %eax
    mov $0xffffffff, %ecx
    call config_write
    call config_read
    push %esi
    mov %ebx, %esi
    call show32
    pop %esi
    mov (%esp), %ecx
    call config_write
    pop %eax
    ret

# The three tests of the BAR whose accessors EBP points at, then a number
# past them, which selects none.
run_tests:
    xor %ebx, %ebx
1:  call run_test
    inc %ebx
    cmp $TESTS_PER_BAR, %ebx
    jb 1b
    mov %ebx, %eax
    call select
    mov $HDR_WIDTH, %ecx
    call *OPS_READB(%ebp)
    mov $l_none, %esi
    call show8
    jmp newline

# Writes AL to the BAR's test register.
select:
    mov $HDR_TEST, %ecx
    jmp *OPS_WRITEB(%ebp)

# Selects test EBX of the BAR and prints its header, and its count after a
# ring with its data byte and after a ring with another byte.
run_test:
    mov %ebx, %eax
    call select
    mov $HDR_TEST, %ecx
    call *OPS_READB(%ebp)
    mov $l_test, %esi
    call show8
    mov $HDR_WIDTH, %ecx
    call *OPS_READB(%ebp)
    mov $l_width, %esi
    call show8
    mov $HDR_OFFSET, %ecx
    call *OPS_READL(%ebp)
    mov %eax, doorbell
    mov $l_offset, %esi
    call show32
    mov $HDR_DATA, %ecx
    call *OPS_READB(%ebp)
    mov %al, data
    mov $l_data, %esi
    call show8
    mov $l_count, %esi
    call show_count
    mov data, %al
    mov $l_rung, %esi
    call ring
    mov data, %al
    xor $1, %al
    mov $l_other, %esi
    call ring
    mov $l_name, %esi
    call puts
    mov $HDR_NAME, %ecx
1:  call *OPS_READB(%ebp)
    test %al, %al
    jz 2f
    mov $SERIAL_COM1, %dx
    out %al, %dx
    inc %ecx
    jmp 1b
2:  jmp newline

# Writes AL to the selected test's doorbell, then prints the label at ESI and the count.
ring:
    mov doorbell, %ecx
    call *OPS_WRITEB(%ebp)
show_count:
    mov $HDR_COUNT, %ecx
    call *OPS_READL(%ebp)
    jmp show32

mmio_readb:
    mov OPS_BASE(%ebp), %edx
    movzbl (%edx,%ecx), %eax
    ret
mmio_readl:
    mov OPS_BASE(%ebp), %edx
    mov (%edx,%ecx), %eax
    ret
mmio_writeb:
    mov OPS_BASE(%ebp), %edx
    mov %al, (%edx,%ecx)
    ret
pio_readb:
    mov OPS_BASE(%ebp), %edx
    add %ecx, %edx
    xor %eax, %eax
    in %dx, %al
    ret
pio_readl:
    mov OPS_BASE(%ebp), %edx
    add %ecx, %edx
    in %dx, %eax
    ret
pio_writeb:
    mov OPS_BASE(%ebp), %edx
    add %ecx, %edx
    out %al, %dx
    ret

# Prints the label at ESI, then EAX as 8 hex digits (show32) or AL as 2
# (show8). Keeps every register.
show8:
    pusha
    shl $24, %eax
    mov $2, %ecx
    jmp 1f
show32:
    pusha
    mov $8, %ecx
1:  mov %eax, %ebx
    call puts
2:  rol $4, %ebx
    mov %bl, %al
    and $0xf, %al
    cmp $10, %al                        # 0-9 to '0'-'9', 10-15 to 'A'-'F'
    sbb $0x69, %al
    das
    or $0x20, %al                       # lower case ('0'-'9' have the bit already)
    out %al, %dx
    loop 2b
    popa
    ret

    .include "lib/serial.inc"
    .include "lib/pci-config.inc"

    .data
    .balign 4
mmio_ops:
    .long 0, mmio_readb, mmio_readl, mmio_writeb
pio_ops:
    .long 0, pio_readb, pio_readl, pio_writeb
doorbell:
    .long 0
data:
    .byte 0

    .section .rodata
no_testdev: .asciz "no pci-testdev on bus 0"
l_ioport: .asciz "ioport="
l_byte1: .asciz " byte1="
l_word2: .asciz " word2="
l_in3: .asciz " in3="
l_view: .asciz " view="
l_flush: .asciz "flush="
l_iomem: .asciz "iomem="
l_dword: .asciz " dword="
l_byte: .asciz " byte="
l_top: .asciz " top="
l_raised: .asciz "irq5 raised irr="
l_lowered: .asciz " lowered irr="
l_id: .asciz "pci-testdev id="
l_class: .asciz " class="
l_subsystem: .asciz " subsystem="
l_pin: .asciz " pin="
l_bar0_mask: .asciz "bar0 mask="
l_bar1_mask: .asciz " bar1 mask="
l_test: .asciz "test="
l_width: .asciz " width="
l_offset: .asciz " offset="
l_data: .asciz " data="
l_count: .asciz " count="
l_rung: .asciz " rung="
l_other: .asciz " other="
l_name: .asciz " name="
l_none: .asciz "none width="

    .bss
    .balign 4096
stack:
    .space 4096
stack_top:
