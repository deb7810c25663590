# 64-bit long mode, one vCPU: counts in R12, and each time the count passes
# a multiple of 2^25 prints "count NN" (NN = count >> 25, in hex) on COM1.
# At count 0x10 << 25 it writes 0x33 to the debug-exit port (status 103).
# The count lives in the CPU: a snapshot restored in another process goes
# on from where it was, never from 01 again. Each step is also stored at
# STEP_STORE (a page of RAM the guest writes, for diff snapshots).
    .code64
    .set COM1, 0x3f8
    .set DEBUG_EXIT, 0xf4
    .set STEP_SHIFT, 25
    .set LAST, 0x10
    .set EXIT_DONE, 0x33
    .set STEP_STORE, 0x200000
    .globl _start
_start:
    xor %r12, %r12
1:  inc %r12
    test $((1 << STEP_SHIFT) - 1), %r12d
    jnz 1b
    mov %r12, %r13
    shr $STEP_SHIFT, %r13               # R13: how many steps so far
    mov %r13, STEP_STORE
    lea message(%rip), %rsi
    mov $COM1, %dx
    mov $message_prefix_length, %rcx
    rep outsb
    mov %r13, %rax
    shr $4, %rax
    call put_hex_digit
    mov %r13, %rax
    call put_hex_digit
    mov $'\n', %al
    out %al, %dx
    cmp $LAST, %r13
    jne 1b
    mov $EXIT_DONE, %al
    out %al, $DEBUG_EXIT
    hlt

# Prints the low 4 bits of RAX as a hex digit on the port in DX.
put_hex_digit:
    and $0xf, %rax
    lea digits(%rip), %rbx
    mov (%rbx, %rax), %al
    out %al, %dx
    ret

message: .ascii "count "
    .set message_prefix_length, . - message
digits: .ascii "0123456789abcdef"
