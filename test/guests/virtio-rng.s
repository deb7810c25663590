# 64-bit long mode, ring 0: a virtio driver for the entropy device in PCI
# slot 1, as small as it gets. It turns on memory decoding and bus
# mastering, finds the common and notify structures by walking the
# capability list (through ECAM), resets the device, negotiates
# VIRTIO_F_VERSION_1 alone, sets up queue 0 (8 entries, no interrupts
# wanted), then twice offers a 32-byte device-writable buffer, notifies,
# and polls the used ring. Prints "len=<used length>" and the bytes of each
# buffer in hex; exits with 0, or with 1 after "fail: <step>".
    .code64
    .set FUNCTION, 0xe0008000      # ECAM, bus 0, slot 1
    .set QSIZE, 8
    .set DESC, 0x300000
    .set AVAIL, 0x300100
    .set USED, 0x301000
    .set BUFFERS, 0x302000
    .set LENGTH, 32
    .globl _start
_start:
    mov $FUNCTION, %r15
    movw $6, 4(%r15)               # command: memory decoding, bus mastering
    mov 0x10(%r15), %r14d          # BAR0
    and $0xfffffff0, %r14d

    xor %r13, %r13                 # common configuration
    xor %r12, %r12                 # notify base
    movzbl 0x34(%r15), %eax
caps:
    test %eax, %eax
    jz caps_done
    lea (%r15,%rax), %rdi
    cmpb $9, (%rdi)                # vendor-specific: a virtio structure
    jne next_cap
    movzbl 3(%rdi), %ecx           # cfg_type
    mov 8(%rdi), %edx              # offset in the BAR
    cmp $1, %ecx
    jne 1f
    lea (%r14,%rdx), %r13
    jmp next_cap
1:  cmp $2, %ecx
    jne next_cap
    lea (%r14,%rdx), %r12
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

    movb $0, 0x14(%r13)            # reset
2:  cmpb $0, 0x14(%r13)
    jne 2b
    movb $1, 0x14(%r13)            # ACKNOWLEDGE
    movb $3, 0x14(%r13)            # DRIVER
    movl $1, 0x00(%r13)            # device_feature_select: bits 32-63
    mov 0x04(%r13), %eax
    lea no_version_1(%rip), %rsi
    test $1, %eax
    jz fail
    movl $1, 0x08(%r13)
    movl $1, 0x0c(%r13)            # VIRTIO_F_VERSION_1
    movl $0, 0x08(%r13)
    movl $0, 0x0c(%r13)
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
    movzwl 0x1e(%r13), %eax        # queue_notify_off
    imul %r11d, %eax
    add %rax, %r12                 # queue 0's notify address
    movw $1, 0x1c(%r13)            # queue_enable
    movb $0x0f, 0x14(%r13)         # DRIVER_OK

    mov $AVAIL, %rax
    movw $1, (%rax)                # VIRTQ_AVAIL_F_NO_INTERRUPT
    xor %ebx, %ebx
request:
    mov %rbx, %rdi
    shl $8, %rdi
    add $BUFFERS, %rdi             # buffer n at BUFFERS + n * 256
    mov %rbx, %rax
    shl $4, %rax
    add $DESC, %rax                # descriptor n
    mov %rdi, (%rax)
    movl $LENGTH, 8(%rax)
    movw $2, 12(%rax)              # VIRTQ_DESC_F_WRITE
    movw $0, 14(%rax)
    mov $AVAIL, %rax
    mov %bx, 4(%rax,%rbx,2)        # ring[n] = n
    lea 1(%rbx), %ecx
    mov %cx, 2(%rax)               # idx = n + 1
    movw $0, (%r12)                # notify queue 0

    mov $USED, %rax
    mov $100000000, %r8d
3:  movzwl 2(%rax), %edx
    cmp %ecx, %edx
    je 4f
    dec %r8d
    jnz 3b
    lea no_answer(%rip), %rsi
    jmp fail
4:  lea len(%rip), %rsi
    call puts
    mov $USED, %rax
    mov 8(%rax,%rbx,8), %eax       # used ring[n].len
    call hex8
    call newline
    mov %rbx, %r9
    shl $8, %r9
    add $BUFFERS, %r9
    xor %r10d, %r10d
5:  movzbl (%r9,%r10), %edi
    shl $24, %edi
    mov $2, %ecx
    call hex_digits
    inc %r10d
    cmp $LENGTH, %r10d
    jb 5b
    call newline
    inc %ebx
    cmp $2, %ebx
    jb request

    mov $0, %al
    out %al, $0xf4
    hlt

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

puts:
    mov $0x3f8, %dx
1:  lodsb
    test %al, %al
    jz 2f
    out %al, %dx
    jmp 1b
2:  ret

newline:
    mov $'\n', %al
    mov $0x3f8, %dx
    out %al, %dx
    ret

# %eax as 8 hex digits.
hex8:
    mov %eax, %edi
    mov $8, %ecx
# The top %ecx nibbles of %edi as hex digits.
hex_digits:
    mov $0x3f8, %dx
6:  rol $4, %edi
    mov %edi, %eax
    and $0xf, %al
    add $'0', %al
    cmp $'9', %al
    jbe 7f
    add $('a' - '9' - 1), %al
7:  out %al, %dx
    loop 6b
    ret

failed: .asciz "fail: "
no_caps: .asciz "no common or notify capability"
no_version_1: .asciz "no VIRTIO_F_VERSION_1"
features_refused: .asciz "FEATURES_OK refused"
no_answer: .asciz "no used buffer"
len: .asciz "len="
