# 64-bit long mode at CPL3 (tsvmm run --mode long --user): a compute loop
# in ring 3. Fills a 4 MiB buffer at 0x400000 with xorshift32 words (seed
# 2463534242), hashes its bytes with 32-bit FNV-1a, prints "fnv1a=<8 hex
# digits>" on COM1 and exits with 0. Ports work from ring 3 because tsvmm
# starts --user guests with IOPL 3.
    .code64
    .set BUFFER, 0x400000
    .set WORDS, 0x100000         # 4 MiB
    .globl _start
_start:
    mov $BUFFER, %rdi
    mov $WORDS, %ecx
    mov $2463534242, %eax
fill:
    mov %eax, %edx               # x ^= x << 13; x ^= x >> 17; x ^= x << 5
    shl $13, %edx
    xor %edx, %eax
    mov %eax, %edx
    shr $17, %edx
    xor %edx, %eax
    mov %eax, %edx
    shl $5, %edx
    xor %edx, %eax
    stosl
    dec %ecx
    jnz fill

    mov $BUFFER, %rsi
    mov $WORDS * 4, %ecx
    mov $0x811c9dc5, %ebx        # FNV offset basis
hash:
    movzbl (%rsi), %eax
    xor %eax, %ebx
    imul $0x01000193, %ebx       # FNV prime
    inc %rsi
    dec %ecx
    jnz hash

    mov %ebx, %eax
    lea label(%rip), %rsi
    call show32
    call newline

    mov $0, %al
    out %al, $0xf4               # the VM ends here (HLT would fault in ring 3)

    .include "lib/serial.inc"
    .include "lib/serial-hex64.inc"

label: .asciz "fnv1a="
