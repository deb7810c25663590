# 64-bit long mode, ring 0: a virtio driver for the entropy device in PCI
# slot 1, as small as it gets. It turns on memory decoding and bus
# mastering, finds its structures by walking the capability list (through
# ECAM), resets the device, negotiates VIRTIO_F_VERSION_1 alone and sets up
# queue 0 with 8 entries. Then it offers a 32-byte device-writable buffer
# and notifies, twice: first taking the interrupt through INTx (the I/O APIC
# input named by the interrupt line register, level-triggered; the handler
# reads ISR, which lowers the line), then through MSI-X (queue vector 1,
# message to APIC 0, vector 0x41). Prints "intx isr=<ISR> len=<used length>"
# and "msi len=<used length>", each followed by the buffer in hex; exits
# with 0, or with 1 after "fail: <step>".
    .code64
    .set FUNCTION, 0xe0008000      # ECAM, bus 0, slot 1
    .set LAPIC, 0xfee00000
    .set IOAPIC, 0xfec00000
    .set CODE64, 0x18
    .set MSI_VECTOR, 0x41
    .set INTX_VECTOR, 0x42
    .set QSIZE, 8
    .set IDT, 0x2f0000
    .set DESC, 0x300000
    .set AVAIL, 0x300100
    .set USED, 0x301000
    .set BUFFERS, 0x302000
    .set LENGTH, 32
    .set PATIENCE, 100000000       # polls before giving up
    .globl _start
_start:
    cli
    lea msi_handler(%rip), %rax
    mov $MSI_VECTOR, %ecx
    call set_gate
    lea intx_handler(%rip), %rax
    mov $INTX_VECTOR, %ecx
    call set_gate
    lidt idtr(%rip)
    mov $LAPIC, %rax
    movl $0x1ff, 0xf0(%rax)        # spurious vector register: APIC on

    mov $FUNCTION, %r15
    call virtio_find
    mov %r9, isr(%rip)

    # The I/O APIC input of INTA#: vector INTX_VECTOR, level-triggered, active low, to APIC 0.
    movzbl 0x3c(%r15), %ecx        # interrupt line
    lea 0x10(,%rcx,2), %edx        # its redirection entry
    mov $IOAPIC, %rax
    lea 1(%rdx), %ecx
    mov %ecx, (%rax)
    movl $0, 0x10(%rax)            # destination APIC 0
    mov %edx, (%rax)
    movl $(0xa000 | INTX_VECTOR), 0x10(%rax)

    lea no_caps(%rip), %rsi
    test %r13, %r13
    jz fail
    test %r12, %r12
    jz fail
    test %r10, %r10
    jz fail
    test %r9, %r9
    jz fail

    xor %eax, %eax                 # VIRTIO_F_VERSION_1 alone
    call virtio_negotiate
    call virtio_start

    xor %ebx, %ebx
    call request
    lea intx_count(%rip), %rdi
    call wait_for
    mov intx_isr(%rip), %eax
    lea intx(%rip), %rsi
    call show32
    call show_result

    # MSI-X: table entry 1 to APIC 0 with MSI_VECTOR, queue 0 on vector 1, then MSI-X on.
    mov 4(%r10), %eax              # table offset and BIR (0)
    and $0xfffffff8, %eax
    lea 16(%r14,%rax), %rax        # entry 1
    movl $LAPIC, 0(%rax)
    movl $0, 4(%rax)
    movl $MSI_VECTOR, 8(%rax)
    movl $0, 12(%rax)              # unmasked
    movw $1, 0x1a(%r13)            # queue_msix_vector
    lea no_vector(%rip), %rsi
    cmpw $1, 0x1a(%r13)
    jne fail
    orw $0x8000, 2(%r10)           # MSI-X enable

    mov $1, %ebx
    call request
    lea msi_count(%rip), %rdi
    call wait_for
    lea msi(%rip), %rsi
    call puts
    call show_result

    mov $0, %al
    out %al, $0xf4
    hlt

# Offers buffer %rbx (32 bytes at BUFFERS + %rbx * 256) in descriptor and ring entry %rbx, and notifies.
request:
    mov %rbx, %rdi
    shl $8, %rdi
    add $BUFFERS, %rdi
    mov %rbx, %rax
    shl $4, %rax
    add $DESC, %rax
    mov %rdi, (%rax)
    movl $LENGTH, 8(%rax)
    movw $2, 12(%rax)              # VIRTQ_DESC_F_WRITE
    movw $0, 14(%rax)
    mov $AVAIL, %rax
    mov %bx, 4(%rax,%rbx,2)        # ring[n] = n
    lea 1(%rbx), %ecx
    mov %cx, 2(%rax)               # idx = n + 1
    movw $0, (%r12)                # notify queue 0
    ret

# Waits, interrupts on, for the counter at %rdi to become 1; fails if it does not.
wait_for:
    mov $PATIENCE, %r8d
    sti
5:  cmpl $1, (%rdi)
    je 6f
    dec %r8d
    jnz 5b
    cli
    lea no_interrupt(%rip), %rsi
    jmp fail
6:  cli
    ret

# Prints " len=<used length of entry %rbx>" and buffer %rbx in hex, each on its line.
show_result:
    mov $USED, %rax
    mov 8(%rax,%rbx,8), %eax       # used ring[n].len
    lea len(%rip), %rsi
    call show32
    call newline
    mov %rbx, %r9
    shl $8, %r9
    add $BUFFERS, %r9
    xor %ecx, %ecx
7:  push %rcx
    movzbl (%r9,%rcx), %edi
    shl $56, %rdi
    mov $2, %ecx
    call hex_digits
    pop %rcx
    inc %ecx
    cmp $LENGTH, %ecx
    jb 7b
    jmp newline

msi_handler:
    push %rax
    incl msi_count(%rip)
    mov $LAPIC, %rax
    movl $0, 0xb0(%rax)            # EOI
    pop %rax
    iretq

intx_handler:
    push %rax
    mov isr(%rip), %rax
    movzbl (%rax), %eax            # reading ISR lowers INTx
    mov %eax, intx_isr(%rip)
    incl intx_count(%rip)
    mov $LAPIC, %rax
    movl $0, 0xb0(%rax)            # EOI, passed on to the I/O APIC
    pop %rax
    iretq

# Points IDT gate %ecx at %rax: a present ring-0 interrupt gate.
set_gate:
    mov $IDT, %rdi
    shl $4, %ecx
    add %rcx, %rdi
    mov %ax, (%rdi)
    movw $CODE64, 2(%rdi)
    movw $0x8e00, 4(%rdi)
    shr $16, %rax
    mov %ax, 6(%rdi)
    shr $16, %rax
    mov %eax, 8(%rdi)
    movl $0, 12(%rdi)
    ret

    .include "lib/virtio-pci.inc"
    .include "lib/serial.inc"
    .include "lib/serial-hex64.inc"

    .balign 8
idtr:
    .word 256 * 16 - 1
    .quad IDT
isr: .quad 0
intx_isr: .long 0
intx_count: .long 0
msi_count: .long 0
no_caps: .asciz "no MSI-X, common, notify or ISR capability"
no_vector: .asciz "queue_msix_vector refused"
no_interrupt: .asciz "no interrupt"
intx: .asciz "intx isr="
msi: .asciz "msi"
len: .asciz " len="
