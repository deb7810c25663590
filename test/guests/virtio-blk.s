# 64-bit long mode, ring 0: a polling virtio-blk driver for the disk in PCI
# slot 1. It turns on memory decoding and bus mastering, finds the common,
# notify and device configuration structures through the capability list
# (ECAM), reads the capacity (two 32-bit reads, as the spec asks), resets
# the device, negotiates VIRTIO_F_VERSION_1 and VIRTIO_BLK_F_FLUSH, and sets
# up queue 0 with 8 entries and interrupts off. Then one request at a time,
# each a chain of header, data (if any) and status, waiting on the used
# index: GET_ID, a read of sector 1, a write of sector 2, a flush, and a
# read of the sector at the capacity. Prints
#   capacity=<16 hex digits>
#   id=<status> <ID string>
#   read=<status> <sector 1 as a string>
#   write=<status>
#   flush=<status>
#   past-end=<status>
# and exits with 0, or with 1 after "fail: <step>".
    .code64
    .set FUNCTION, 0xe0008000      # ECAM, bus 0, slot 1
    .set QSIZE, 8
    .set DESC, 0x300000
    .set AVAIL, 0x300100
    .set USED, 0x301000
    .set HEADER, 0x302000
    .set STATUS, 0x302100
    .set DATA, 0x303000
    .set SECTOR, 512
    .set T_IN, 0
    .set T_OUT, 1
    .set T_FLUSH, 4
    .set T_GET_ID, 8
    .set F_NEXT, 1
    .set F_WRITE, 2
    .set PATIENCE, 100000000       # polls before giving up
    .globl _start
_start:
    cli
    mov $FUNCTION, %r15
    call virtio_find
    lea no_caps(%rip), %rsi
    test %r13, %r13
    jz fail
    test %r12, %r12
    jz fail
    test %r8, %r8
    jz fail

    mov 4(%r8), %eax               # capacity, high half
    shl $32, %rax
    mov (%r8), %ecx                # low half
    or %rcx, %rax
    mov %rax, %rbp
    lea capacity(%rip), %rsi
    call show64
    call newline

    mov $0x200, %eax               # VIRTIO_BLK_F_FLUSH
    lea no_flush(%rip), %rsi
    call virtio_negotiate
    mov $AVAIL, %rax
    movw $1, (%rax)                # VIRTQ_AVAIL_F_NO_INTERRUPT: this driver polls
    call virtio_start

    mov $T_GET_ID, %eax
    xor %ebx, %ebx
    mov $20, %ecx
    mov $F_WRITE, %edx
    call request
    lea id(%rip), %rsi
    call show_data

    mov $T_IN, %eax
    mov $1, %ebx
    mov $SECTOR, %ecx
    mov $F_WRITE, %edx
    call request
    lea read(%rip), %rsi
    call show_data

    mov $DATA, %rdi                # sector 2: the message, then zeros
    mov $SECTOR, %ecx
    xor %eax, %eax
    rep stosb
    mov $DATA, %rdi
    lea message(%rip), %rsi
    mov $(message_end - message), %ecx
    rep movsb
    mov $T_OUT, %eax
    mov $2, %ebx
    mov $SECTOR, %ecx
    xor %edx, %edx
    call request
    lea write(%rip), %rsi
    call show_status

    mov $T_FLUSH, %eax
    xor %ebx, %ebx
    xor %ecx, %ecx
    call request
    lea flush(%rip), %rsi
    call show_status

    mov $T_IN, %eax
    mov %rbp, %rbx                 # the sector at the capacity: past the end
    mov $SECTOR, %ecx
    mov $F_WRITE, %edx
    call request
    lea past_end(%rip), %rsi
    call show_status

    mov $0, %al
    out %al, $0xf4
    hlt

# One request, descriptor 0 onwards: EAX = type, RBX = sector, ECX = data
# length at DATA (0: none), EDX = the data's flags (F_WRITE: device-writable).
# Waits for the device to use it; returns its status byte in EAX.
request:
    mov $HEADER, %rdi
    mov %eax, (%rdi)
    movl $0, 4(%rdi)
    mov %rbx, 8(%rdi)
    mov $STATUS, %rdi
    movb $0xff, (%rdi)
    mov $DESC, %rdi
    movq $HEADER, (%rdi)
    movl $16, 8(%rdi)
    movw $F_NEXT, 12(%rdi)
    movw $1, 14(%rdi)
    add $16, %rdi
    test %ecx, %ecx
    jz 4f
    movq $DATA, (%rdi)
    mov %ecx, 8(%rdi)
    or $F_NEXT, %edx
    mov %dx, 12(%rdi)
    movw $2, 14(%rdi)
    add $16, %rdi
4:  movq $STATUS, (%rdi)
    movl $1, 8(%rdi)
    movw $F_WRITE, 12(%rdi)
    movw $0, 14(%rdi)
    mov $AVAIL, %rax
    movzwl 2(%rax), %ecx           # avail idx
    mov %ecx, %edx
    and $(QSIZE - 1), %edx
    movw $0, 4(%rax,%rdx,2)        # ring[idx % QSIZE] = head 0
    inc %ecx
    mov %cx, 2(%rax)               # publish
    movw $0, (%r12)                # notify queue 0
    mov $PATIENCE, %r8d
    mov $USED, %rax
5:  cmp %cx, 2(%rax)               # used idx caught up?
    je 6f
    pause
    dec %r8d
    jnz 5b
    lea no_answer(%rip), %rsi
    jmp fail
6:  mov $STATUS, %rax
    movzbl (%rax), %eax
    ret

# Prints the label at RSI and the status in EAX, then " " and the string at DATA.
show_data:
    call show32
    mov $' ', %al
    mov $SERIAL_COM1, %dx
    out %al, %dx
    mov $DATA, %rsi
    call puts
    jmp newline

# Prints the label at RSI and the status in EAX.
show_status:
    call show32
    jmp newline

    .include "lib/virtio-pci.inc"
    .include "lib/serial.inc"
    .include "lib/serial-hex64.inc"

no_caps: .asciz "no common, notify or device capability"
no_flush: .asciz "no VIRTIO_BLK_F_FLUSH"
no_answer: .asciz "no answer"
capacity: .asciz "capacity="
id: .asciz "id="
read: .asciz "read="
write: .asciz "write="
flush: .asciz "flush="
past_end: .asciz "past-end="
message: .asciz "written by the guest"
message_end:
