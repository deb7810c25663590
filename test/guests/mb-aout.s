# Multiboot header with the a.out kludge (flag 16): the loader takes the load
# addresses from the header, so the kernel is a flat binary. mb-report.s,
# included after it, does the work.
    .code32
    .text
    .globl _start
    .set MAGIC, 0x1badb002
    .set FLAGS, (1 << 0) | (1 << 1) | (1 << 16)
    .balign 4
multiboot_header:
    .long MAGIC, FLAGS, -(MAGIC + FLAGS)
    .long multiboot_header      # header_addr
    .long multiboot_header      # load_addr: the file starts with this header
    .long 0                     # load_end_addr: 0, the whole file
    .long _end                  # bss_end_addr: ld's end of .bss, zeroed by the loader
    .long _start                # entry_addr
_start:
    jmp mb_report
    .include "mb-report.s"
