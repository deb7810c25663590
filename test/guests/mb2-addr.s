# Multiboot2 header with the address and entry address tags: the loader
# takes the load addresses from the header, so the kernel is a flat binary.
# load_addr -1 says the file is loaded from its first byte. mb2-report.s,
# included after it, does the work.
    .code32
    .include "lib/multiboot2-header.inc"
    mb2_header_begin
    .short 2, 0                         # address
    .long 24
    .long mb2_header                    # header_addr
    .long -1                            # load_addr: from the file's first byte
    .long 0                             # load_end_addr: 0, the whole file
    .long _end                          # bss_end_addr: ld's end of .bss, zeroed by the loader
    .short 3, 0                         # entry address
    .long 12
    .long _start
    mb2_header_end
_start:
    jmp mb2_report
    .include "mb2-report.s"
