# The demo guest: a few lines of 64-bit code that cause one VM exit of each
# common kind, so `tsvmm demo` can show them.
#
#   port I/O   - text on COM1 (0x3f8), a read of its line status (0x3fd)
#   MMIO       - a write and a read-back on the test device (0xc0000000)
#   debug exit - a write of 0 to port 0xf4 ends the VM: "success"
    .code64
    .globl _start
    .set COM1, 0x3f8
    .set TEST_DEVICE, 0xc0000000

_start:
    jmp begin
    .balign 8
rounds: .quad 1                 # how many times the exits below repeat (tsvmm demo --rounds sets it)

begin:
    lea hello(%rip), %rsi
    call print
    mov rounds(%rip), %rcx

round:
    mov $COM1 + 5, %dx          # line status: a port read, answered by the VMM
    in %dx, %al

    mov $TEST_DEVICE, %rbx      # MMIO: the VMM's test device stores what we write
    movl $0x600dcafe, (%rbx)
    mov (%rbx), %eax
    cmp $0x600dcafe, %eax
    jne fail
    dec %rcx
    jnz round

    lea mmio_ok(%rip), %rsi
    call print
    lea bye(%rip), %rsi
    call print
    xor %al, %al                # debug exit with 0: the demo passed
    out %al, $0xf4

fail:
    lea mmio_bad(%rip), %rsi
    call print
    mov $1, %al
    out %al, $0xf4

# Prints the NUL-terminated string at %rsi, one port write per byte.
print:
    mov $COM1, %dx
1:  lodsb
    test %al, %al
    jz 2f
    out %al, %dx
    jmp 1b
2:  ret

hello:    .asciz "Hello from a tsvmm guest in 64-bit long mode!\n"
mmio_ok:  .asciz "MMIO: wrote 0x600dcafe to the test device and read it back.\n"
mmio_bad: .asciz "MMIO: the test device returned something else!\n"
bye:      .asciz "Bye: writing 0 to the debug-exit port.\n"
