# Body of the multiboot2 test kernels, included by mb2-elf.s or mb2-addr.s
# whose entry jumps to mb2_report with the boot loader's EAX and EBX intact.
#
# Checks the boot loader magic in EAX, then walks the boot information tags
# at EBX and prints each on COM1, one item per line:
#   cmdline=, boot_loader_name=, module ..., mem_lower= mem_upper=,
#   mmap ... (one line per entry), elf_sections ... and one line per section
#   with its name read from the loaded section-name table, acpi_old and
#   acpi_new (the RSDP copies: signature, revision, checksums), and
#   `tag type=N` for any other tag.
# Exits through the debug-exit port with 0x10 (process status 33), or 0x11
# (status 35) when the magic is wrong.
    .code32
    .include "lib/print32.inc"
    .include "lib/mb-report-common.inc"
    .set BOOTLOADER_MAGIC, 0x36d76289

# Boot information tag types.
    .set TAG_END, 0
    .set TAG_CMDLINE, 1
    .set TAG_LOADER_NAME, 2
    .set TAG_MODULE, 3
    .set TAG_BASIC_MEMINFO, 4
    .set TAG_MMAP, 6
    .set TAG_ELF_SECTIONS, 9
    .set TAG_ACPI_OLD, 14
    .set TAG_ACPI_NEW, 15
# Every tag: type at +0, size at +4, its fields from +8.
    .set TAG_BODY, 8
# ELF32 section header fields.
    .set SH_NAME, 0
    .set SH_ADDR, 12
# RSDP fields.
    .set RSDP_REVISION, 15
    .set RSDP_LENGTH, 20
    .set RSDP_V1_SIZE, 20

    .text
mb2_report:
    mov $stack_top, %esp
    cmp $BOOTLOADER_MAGIC, %eax
    jne report_bad_magic
    say "multiboot2 magic ok"
    call newline
    lea 8(%ebx), %ebp                   # EBP: the current tag, past total_size and reserved
next_tag:
    mov (%ebp), %eax
    cmp $TAG_END, %eax
    je report_done
    cmp $TAG_CMDLINE, %eax
    je show_cmdline
    cmp $TAG_LOADER_NAME, %eax
    je show_loader_name
    cmp $TAG_MODULE, %eax
    je show_module
    cmp $TAG_BASIC_MEMINFO, %eax
    je show_meminfo
    cmp $TAG_MMAP, %eax
    je show_mmap
    cmp $TAG_ELF_SECTIONS, %eax
    je show_elf_sections
    cmp $TAG_ACPI_OLD, %eax
    je show_acpi_old
    cmp $TAG_ACPI_NEW, %eax
    je show_acpi_new
    say "tag type="
    call putdec
    call newline
tag_shown:
    mov 4(%ebp), %eax                   # the next tag starts 8-byte aligned after this one
    lea 7(%ebp, %eax), %ebp
    and $~7, %ebp
    jmp next_tag

show_cmdline:
    say "cmdline="
    lea TAG_BODY(%ebp), %esi
    call puts
    call newline
    jmp tag_shown

show_loader_name:
    say "boot_loader_name="
    lea TAG_BODY(%ebp), %esi
    call puts
    call newline
    jmp tag_shown

# mod_start, mod_end, then the module's command line.
show_module:
    mov 8(%ebp), %eax
    mov 12(%ebp), %edx
    lea 16(%ebp), %esi
    call print_module
    jmp tag_shown

show_meminfo:
    say "mem_lower="
    mov 8(%ebp), %eax
    call putdec
    say " mem_upper="
    mov 12(%ebp), %eax
    call putdec
    call newline
    jmp tag_shown

# entry_size and entry_version, then the entries up to the tag's end.
show_mmap:
    say "mmap entry_size="
    mov 8(%ebp), %eax
    call putdec
    say " entry_version="
    mov 12(%ebp), %eax
    call putdec
    call newline
    lea 16(%ebp), %ebx                  # EBX: current entry, EDI: end of the tag
    mov %ebp, %edi
    add 4(%ebp), %edi
1:  cmp %edi, %ebx
    jae tag_shown
    say "mmap base=0x"
    mov 4(%ebx), %eax
    call puthex32
    mov (%ebx), %eax
    call puthex32
    say " length=0x"
    mov 12(%ebx), %eax
    call puthex32
    mov 8(%ebx), %eax
    call puthex32
    say " type="
    mov 16(%ebx), %eax
    call putdec
    call newline
    add 8(%ebp), %ebx
    jmp 1b

# num, entsize, shndx (32-bit each, as GRUB writes them), then the section
# headers. Each section's name is read from the section-name table at the
# address the loader gave it, which proves that table was loaded.
show_elf_sections:
    say "elf_sections num="
    mov 8(%ebp), %eax
    call putdec
    say " entsize="
    mov 12(%ebp), %eax
    call putdec
    say " shndx="
    mov 16(%ebp), %eax
    call putdec
    call newline
    mov 16(%ebp), %eax                  # EDX: the loaded section-name table
    mull 12(%ebp)
    mov 20 + SH_ADDR(%ebp, %eax), %edx
    lea 20(%ebp), %ebx                  # EBX: current section header, ECX: sections left
    mov 8(%ebp), %ecx
1:  test %ecx, %ecx
    jz tag_shown
    say "section name="
    mov SH_NAME(%ebx), %esi
    add %edx, %esi
    call puts
    say " addr="
    cmpl $0, SH_ADDR(%ebx)
    je 2f
    say "set"
    jmp 3f
2:  say "zero"
3:  call newline
    add 12(%ebp), %ebx
    dec %ecx
    jmp 1b

show_acpi_old:
    say "acpi_old"
    call show_rsdp_v1
    call newline
    jmp tag_shown

show_acpi_new:
    say "acpi_new"
    call show_rsdp_v1
    say " length="
    mov TAG_BODY + RSDP_LENGTH(%ebp), %eax
    call putdec
    say " extended_checksum="
    lea TAG_BODY(%ebp), %esi
    mov %eax, %ecx
    call checksum_word
    call newline
    jmp tag_shown

# The first 20 bytes of the RSDP copy in the tag at EBP: signature,
# revision and whether they sum to zero.
show_rsdp_v1:
    pusha
    say " signature="
    lea TAG_BODY(%ebp), %esi
    mov $8, %ecx
1:  lodsb
    call putc
    loop 1b
    say " revision="
    movzbl TAG_BODY + RSDP_REVISION(%ebp), %eax
    call putdec
    say " checksum="
    lea TAG_BODY(%ebp), %esi
    mov $RSDP_V1_SIZE, %ecx
    call checksum_word
    popa
    ret

# Prints "ok" if the ECX bytes at ESI sum to zero (mod 256), else "bad".
checksum_word:
    pusha
    xor %eax, %eax
1:  add (%esi), %al
    inc %esi
    loop 1b
    test %al, %al
    jnz 2f
    say "ok"
    jmp 3f
2:  say "bad"
3:  popa
    ret

    .bss
    .balign 16
stack:
    .space 4096
stack_top:
