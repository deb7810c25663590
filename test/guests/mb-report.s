# Body of the multiboot test kernels, assembled after mb-elf.s or mb-aout.s
# whose entry jumps to mb_report with the boot loader's EAX and EBX intact.
#
# Checks the boot loader magic in EAX, then prints on COM1 what the multiboot
# information structure at EBX holds, one item per line, and exits through
# the debug-exit port with 0x10 (process status 33), or 0x11 (status 35) when
# the magic is wrong.
    .code32
    .include "lib/print32.inc"
    .include "lib/mb-report-common.inc"
    .set BOOTLOADER_MAGIC, 0x2badb002

# Multiboot information structure: flags and field offsets.
    .set INFO_MEMORY, 1 << 0
    .set INFO_CMDLINE, 1 << 2
    .set INFO_MODS, 1 << 3
    .set INFO_MMAP, 1 << 6
    .set INFO_LOADER_NAME, 1 << 9
    .set FLAGS, 0
    .set MEM_LOWER, 4
    .set MEM_UPPER, 8
    .set CMDLINE, 16
    .set MODS_COUNT, 20
    .set MODS_ADDR, 24
    .set MMAP_LENGTH, 44
    .set MMAP_ADDR, 48
    .set LOADER_NAME, 64

    .text
mb_report:
    mov $stack_top, %esp
    cmp $BOOTLOADER_MAGIC, %eax
    jne report_bad_magic
    mov %ebx, %ebp                      # EBP: the information structure, for the whole report
    say "multiboot magic ok"
    call newline
    say "flags=0x"
    mov FLAGS(%ebp), %eax
    call puthex32
    call newline

    testl $INFO_CMDLINE, FLAGS(%ebp)
    jz 1f
    say "cmdline="
    mov CMDLINE(%ebp), %esi
    call puts
    call newline
1:
    testl $INFO_MEMORY, FLAGS(%ebp)
    jz 1f
    say "mem_lower="
    mov MEM_LOWER(%ebp), %eax
    call putdec
    say " mem_upper="
    mov MEM_UPPER(%ebp), %eax
    call putdec
    call newline
1:
    testl $INFO_MMAP, FLAGS(%ebp)
    jz 1f
    mov MMAP_ADDR(%ebp), %ebx           # EBX: current entry, EDI: end of the map
    mov %ebx, %edi
    add MMAP_LENGTH(%ebp), %edi
2:  cmp %edi, %ebx
    jae 1f
    say "mmap base=0x"
    mov 8(%ebx), %eax
    call puthex32
    mov 4(%ebx), %eax
    call puthex32
    say " length=0x"
    mov 16(%ebx), %eax
    call puthex32
    mov 12(%ebx), %eax
    call puthex32
    say " type="
    mov 20(%ebx), %eax
    call putdec
    call newline
    mov (%ebx), %eax                    # `size` does not count itself
    lea 4(%ebx, %eax), %ebx
    jmp 2b
1:
    testl $INFO_MODS, FLAGS(%ebp)
    jz 1f
    say "mods_count="
    mov MODS_COUNT(%ebp), %eax
    call putdec
    call newline
    mov MODS_ADDR(%ebp), %ebx           # EBX: current module entry, EDI: modules left
    mov MODS_COUNT(%ebp), %edi
2:  test %edi, %edi
    jz 1f
    mov (%ebx), %eax                    # start, end, command line
    mov 4(%ebx), %edx
    mov 8(%ebx), %esi
    call print_module
    add $16, %ebx
    dec %edi
    jmp 2b
1:
    testl $INFO_LOADER_NAME, FLAGS(%ebp)
    jz 1f
    say "boot_loader_name="
    mov LOADER_NAME(%ebp), %esi
    call puts
    call newline
1:
    jmp report_done

    .bss
    .balign 16
stack:
    .space 4096
stack_top:
