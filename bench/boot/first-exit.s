# The boot benchmark's guest: a multiboot (ELF32) kernel whose first
# instruction writes the debug-exit port, so the VMM's process ends as the
# guest starts. A multiboot loader enters with EAX = 0x2BADB002, so the
# byte written is AL = 0x02 and the process exits with (2 << 1) | 1 = 5:
# that status also shows the loader set EAX as the spec says.
    .code32
    .text
    .globl _start
    .set MAGIC, 0x1badb002
    .set FLAGS, (1 << 1)                # memory information (always given)
    .set DEBUG_EXIT, 0xf4
    .balign 4
multiboot_header:
    .long MAGIC, FLAGS, -(MAGIC + FLAGS)
_start:
    out %al, $DEBUG_EXIT
    hlt                                 # not reached: the VMM stops at the debug exit
    jmp _start
