# 64-bit long mode: reads QEMU's fw_cfg the two ways a kernel would, and
# prints what it found on COM1, then exits through debug-exit with 0x10.
# Only the vCPU with APIC id 0 reports; the others park.
#
#   sig=      the signature item through the data port (4 bytes, "QEMU" = 0x554d4551)
#   features= FW_CFG_ID (3: traditional and DMA)
#   cpus=     FW_CFG_NB_CPUS
#   ram=      FW_CFG_RAM_SIZE
#   dmasig=   the DMA address register's two halves ("QEMU CFG")
#   file=     item 0x21 (the first user file, after etc/e820) read by DMA
#   dma=      the control word the device wrote back (0: done)
    .code64
    .globl _start
    .set FW_CFG_DMA_HIGH, 0x514
    .set FW_CFG_DMA_LOW, 0x518
    .set DEBUG_EXIT, 0xf4
    .set FIRST_USER_FILE, 0x21
    .set DMA_SELECT_READ, (FIRST_USER_FILE << 16) | 8 | 2
    .set FILE_BYTES, 32

_start:
    # Every vCPU of a raw guest starts here: all but the first (APIC id 0) park.
    mov $1, %eax
    cpuid
    shr $24, %ebx
    jnz park
    lea stack_top(%rip), %rsp
    mov $FW_CFG_SIGNATURE, %ebx
    call fw_cfg_select_read32
    lea sig_label(%rip), %rsi
    call show32
    call newline
    mov $FW_CFG_ID, %ebx
    call fw_cfg_select_read32
    lea features_label(%rip), %rsi
    call show32
    call newline
    mov $FW_CFG_NB_CPUS, %ebx
    call fw_cfg_select_read32
    and $0xffff, %eax
    lea cpus_label(%rip), %rsi
    call show32
    call newline
    mov $FW_CFG_RAM_SIZE, %ebx
    call fw_cfg_select_read32           # RAM size: low half, then high half
    mov %eax, %r12d
    call fw_cfg_read32
    shl $32, %rax
    or %r12, %rax
    lea ram_label(%rip), %rsi
    call show64
    call newline

    mov $FW_CFG_DMA_HIGH, %dx
    in %dx, %eax
    bswap %eax
    mov %eax, %r12d
    mov $FW_CFG_DMA_LOW, %dx
    in %dx, %eax
    bswap %eax
    shl $32, %r12
    or %r12, %rax
    lea dmasig_label(%rip), %rsi
    call show64
    call newline

    # FWCfgDmaAccess (big-endian): select the first user file and read FILE_BYTES into file_buffer.
    lea dma_access(%rip), %rdi
    mov $DMA_SELECT_READ, %eax
    bswap %eax
    mov %eax, (%rdi)
    mov $FILE_BYTES, %eax
    bswap %eax
    mov %eax, 4(%rdi)
    lea file_buffer(%rip), %rax
    bswap %rax
    mov %rax, 8(%rdi)
    mov %rdi, %rax
    shr $32, %rax
    bswap %eax
    mov $FW_CFG_DMA_HIGH, %dx
    out %eax, %dx
    mov %edi, %eax
    bswap %eax
    mov $FW_CFG_DMA_LOW, %dx
    out %eax, %dx                       # runs the transfer
    lea file_label(%rip), %rsi
    call puts
    lea file_buffer(%rip), %rsi
    call puts
    call newline
    mov dma_access(%rip), %eax
    bswap %eax
    lea dma_label(%rip), %rsi
    call show32
    call newline

    mov $0x10, %al
    out %al, $DEBUG_EXIT
park:
    cli
    hlt
    jmp park

    .include "lib/fw-cfg.inc"
    .include "lib/serial.inc"
    .include "lib/serial-hex64.inc"

sig_label: .asciz "sig="
features_label: .asciz "features="
cpus_label: .asciz "cpus="
ram_label: .asciz "ram="
dmasig_label: .asciz "dmasig="
file_label: .asciz "file="
dma_label: .asciz "dma="
    .balign 16
dma_access: .fill 16, 1, 0
file_buffer: .fill FILE_BYTES + 1, 1, 0
    .balign 16
    .fill 1024, 1, 0
stack_top:
