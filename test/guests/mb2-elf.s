# Multiboot2 header for an ELF kernel: the loader places the kernel by its
# program headers, and hands it its section headers. Besides the tags every
# kernel has, it asks for a framebuffer but marks that tag optional, so a
# loader without one boots it anyway. mb2-report.s, included after it, does
# the work.
    .code32
    .include "lib/multiboot2-header.inc"
    .set OPTIONAL, 1
    mb2_header_begin
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
    mb2_header_end
_start:
    jmp mb2_report
    .include "mb2-report.s"
