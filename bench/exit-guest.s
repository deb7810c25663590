# The exit benchmark's guest: RCX round trips to the VMM, then the debug exit.
# The host sets RCX (how many) and RSI (which kind) before the first run;
# tsvmm and the C loop run this same image from the same register state.
#
#   RSI = 0  port I/O: an OUT to port 0x80, which no device claims (the VMM ignores it)
#   RSI = 1  MMIO: a 32-bit write to the test device at 0xc0000000
    .code64
    .globl _start
    .set UNCLAIMED_PORT, 0x80
    .set TEST_DEVICE, 0xc0000000
    .set DEBUG_EXIT, 0xf4

_start:
    xor %eax, %eax
    test %rsi, %rsi
    jnz mmio

pio:
    out %al, $UNCLAIMED_PORT
    dec %rcx
    jnz pio
    jmp done

mmio:
    mov $TEST_DEVICE, %rdi
mmio_loop:
    movl %eax, (%rdi)
    dec %rcx
    jnz mmio_loop

done:
    out %al, $DEBUG_EXIT        # AL = 0: the run succeeded
    jmp done                    # not reached: the VMM stops at the debug exit
