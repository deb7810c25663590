# 64-bit long mode, ring 0 or ring 3 (--user): what CPUID says. Prints on
# COM1 the vendor string (leaf 0), leaf 1 EBX, ECX, EDX, EBX bits 31:24 (the
# initial APIC id) and the hypervisor signature (leaf 0x40000000); exits
# with 0.
    .code64
    .globl _start
_start:
    xor %eax, %eax
    cpuid                        # vendor in EBX, EDX, ECX order
    lea vendor_text(%rip), %rdi
    mov %ebx, 0(%rdi)
    mov %edx, 4(%rdi)
    mov %ecx, 8(%rdi)
    lea vendor(%rip), %rsi
    call puts

    mov $1, %eax
    cpuid
    mov %ebx, %r12d              # printing clobbers %ecx and %edx
    mov %ecx, %r13d
    mov %edx, %r14d
    mov %r12d, %eax
    lea leaf1_ebx(%rip), %rsi
    call show32
    call newline
    mov %r13d, %eax
    lea leaf1_ecx(%rip), %rsi
    call show32
    call newline
    mov %r14d, %eax
    lea leaf1_edx(%rip), %rsi
    call show32
    call newline
    mov %r12d, %eax
    shr $24, %eax
    lea apic_id(%rip), %rsi
    call show32
    call newline

    mov $0x40000000, %eax
    cpuid                        # signature in EBX, ECX, EDX order
    lea hv_text(%rip), %rdi
    mov %ebx, 0(%rdi)
    mov %ecx, 4(%rdi)
    mov %edx, 8(%rdi)
    lea hypervisor(%rip), %rsi
    call puts                    # stops at the signature's first NUL, if any
    call newline

    mov $0, %al
    out %al, $0xf4
    hlt

    .include "lib/serial.inc"
    .include "lib/serial-hex64.inc"

vendor: .ascii "vendor="
vendor_text: .asciz "............\n"
leaf1_ebx: .asciz "leaf1-ebx="
leaf1_ecx: .asciz "leaf1-ecx="
leaf1_edx: .asciz "leaf1-edx="
apic_id: .asciz "apic-id="
hypervisor: .ascii "hypervisor="
hv_text: .asciz "............"
