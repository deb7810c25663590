# Multiboot2 header for an ELF kernel: the loader places the kernel by its
# program headers, and hands it its section headers. Besides the tags every
# kernel has, it asks for a framebuffer but marks that tag optional, so a
# loader without one boots it anyway. mb2-report.s, included after it, does
# the work.
    .code32
    .text
    .globl _start
    .set MAGIC, 0xe85250d6
    .set ARCHITECTURE, 0                # i386, 32-bit protected mode
    .set LENGTH, header_end - header
    .set OPTIONAL, 1
    .balign 8
header:
    .long MAGIC, ARCHITECTURE, LENGTH, -(MAGIC + ARCHITECTURE + LENGTH)
    .balign 8
1:  .short 1, 0                         # information request, required: what the report prints
    .long 2f - 1b
    .long 1, 2, 3, 4, 6, 9, 14, 15
2:  .balign 8
    .short 5, OPTIONAL                  # framebuffer, any mode: optional
    .long 20
    .long 0, 0, 0
    .balign 8
    .short 6, 0                         # modules page-aligned
    .long 8
    .balign 8
    .short 0, 0                         # end
    .long 8
header_end:
_start:
    jmp mb2_report
    .include "mb2-report.s"
