# Multiboot header for an ELF kernel: the loader places the kernel by its
# program headers. mb-report.s, included after it, does the work.
    .code32
    .include "lib/multiboot-header.inc"
_start:
    jmp mb_report
    .include "mb-report.s"
