# 64-bit long mode, ring 0: scans slots 0-3 of PCI bus 0, reading each
# function's vendor and device IDs through configuration mechanism #1
# (ports 0xCF8/0xCFC) and through ECAM at 0xe0000000, then sizes BAR0 of
# slot 1 (write all-ones, read the mask, put the address back). Prints
# "slotN cf8=<dword> ecam=<dword>" per slot, then slot 1's class dword,
# BAR0 and its size mask; exits with 0.
    .code64
    .set ECAM, 0xe0000000
    .globl _start
_start:
    xor %ebx, %ebx                 # slot
scan:
    lea slot(%rip), %rsi
    call puts
    mov %ebx, %eax
    add $'0', %al
    mov $0x3f8, %dx
    out %al, %dx

    mov %ebx, %edi
    xor %esi, %esi
    call config_read
    lea cf8(%rip), %rsi
    call show32

    mov %rbx, %rdi
    shl $15, %rdi
    mov $ECAM, %rax
    mov (%rax,%rdi), %eax
    lea ecam(%rip), %rsi
    call show32
    call newline
    inc %ebx
    cmp $4, %ebx
    jb scan

    mov $1, %edi
    mov $0x08, %esi
    call config_read
    lea class(%rip), %rsi
    call show32
    call newline

    mov $1, %edi
    mov $0x10, %esi
    call config_read
    mov %eax, %r12d                # BAR0 as assigned
    lea bar0(%rip), %rsi
    call show32
    call newline

    mov $1, %edi
    mov $0x10, %esi
    mov $0xffffffff, %ecx
    call config_write
    mov $1, %edi
    mov $0x10, %esi
    call config_read
    lea mask(%rip), %rsi
    call show32
    call newline
    mov $1, %edi
    mov $0x10, %esi
    mov %r12d, %ecx
    call config_write

    mov $0, %al
    out %al, $0xf4
    hlt

    .include "lib/pci-config.inc"
    .include "lib/serial.inc"
    .include "lib/serial-hex64.inc"

slot: .asciz "slot"
cf8: .asciz " cf8="
ecam: .asciz " ecam="
class: .asciz "class="
bar0: .asciz "bar0="
mask: .asciz "mask="
