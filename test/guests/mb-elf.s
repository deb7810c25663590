# Multiboot header for an ELF kernel: the loader places the kernel by its
# program headers. mb-report.s, included after it, does the work.
    .code32
    .text
    .globl _start
    .set MAGIC, 0x1badb002
    .set FLAGS, (1 << 0) | (1 << 1)     # page-aligned modules, memory information
    .balign 4
multiboot_header:
    .long MAGIC, FLAGS, -(MAGIC + FLAGS)
_start:
    jmp mb_report
    .include "mb-report.s"
