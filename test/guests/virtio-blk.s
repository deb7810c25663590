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
    movw $6, 4(%r15)               # command: memory decoding, bus mastering
    mov 0x10(%r15), %r14d          # BAR0
    and $0xfffffff0, %r14d

    xor %r13, %r13                 # common configuration
    xor %r12, %r12                 # notify base
    xor %r10, %r10                 # device configuration
    movzbl 0x34(%r15), %eax
caps:
    test %eax, %eax
    jz caps_done
    lea (%r15,%rax), %rdi
    cmpb $9, (%rdi)                # vendor-specific: a virtio structure
    jne next_cap
    movzbl 3(%rdi), %ecx           # cfg_type
    mov 8(%rdi), %edx              # offset in the BAR
    lea (%r14,%rdx), %rdx
    cmp $1, %ecx
    jne 1f
    mov %rdx, %r13
    jmp next_cap
1:  cmp $4, %ecx
    jne 2f
    mov %rdx, %r10
    jmp next_cap
2:  cmp $2, %ecx
    jne next_cap
    mov %rdx, %r12
    mov 16(%rdi), %r11d            # notify_off_multiplier
next_cap:
    movzbl 1(%rdi), %eax
    jmp caps
caps_done:
    lea no_caps(%rip), %rsi
    test %r13, %r13
    jz fail
    test %r12, %r12
    jz fail
    test %r10, %r10
    jz fail

    mov 4(%r10), %eax              # capacity, high half
    shl $32, %rax
    mov (%r10), %ecx               # low half
    or %rcx, %rax
    mov %rax, %rbp
    lea capacity(%rip), %rsi
    call show64
    call newline

    movb $0, 0x14(%r13)            # reset
3:  cmpb $0, 0x14(%r13)
    jne 3b
    movb $1, 0x14(%r13)            # ACKNOWLEDGE
    movb $3, 0x14(%r13)            # DRIVER
    movl $0, 0x00(%r13)            # device_feature_select: bits 0-31
    mov 0x04(%r13), %eax
    lea no_flush(%rip), %rsi
    test $0x200, %eax              # VIRTIO_BLK_F_FLUSH
    jz fail
    movl $0, 0x08(%r13)
    movl $0x200, 0x0c(%r13)
    movl $1, 0x08(%r13)
    movl $1, 0x0c(%r13)            # VIRTIO_F_VERSION_1
    movb $0x0b, 0x14(%r13)         # FEATURES_OK
    movzbl 0x14(%r13), %eax
    lea features_refused(%rip), %rsi
    test $8, %eax
    jz fail

    movw $0, 0x16(%r13)            # queue_select
    movw $QSIZE, 0x18(%r13)
    movl $DESC, 0x20(%r13)
    movl $0, 0x24(%r13)
    movl $AVAIL, 0x28(%r13)
    movl $0, 0x2c(%r13)
    movl $USED, 0x30(%r13)
    movl $0, 0x34(%r13)
    mov $AVAIL, %rax
    movw $1, (%rax)                # VIRTQ_AVAIL_F_NO_INTERRUPT: this driver polls
    movzwl 0x1e(%r13), %eax        # queue_notify_off
    imul %r11d, %eax
    add %rax, %r12                 # queue 0's notify address
    movw $1, 0x1c(%r13)            # queue_enable
    movb $0x0f, 0x14(%r13)         # DRIVER_OK

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

fail:
    push %rsi
    lea failed(%rip), %rsi
    call puts
    pop %rsi
    call puts
    call newline
    mov $1, %al
    out %al, $0xf4
    hlt

    .include "lib/serial.inc"
    .include "lib/serial-hex64.inc"

failed: .asciz "fail: "
no_caps: .asciz "no common, notify or device capability"
no_flush: .asciz "no VIRTIO_BLK_F_FLUSH"
features_refused: .asciz "FEATURES_OK refused"
no_answer: .asciz "no answer"
capacity: .asciz "capacity="
id: .asciz "id="
read: .asciz "read="
write: .asciz "write="
flush: .asciz "flush="
past_end: .asciz "past-end="
message: .asciz "written by the guest"
message_end:
