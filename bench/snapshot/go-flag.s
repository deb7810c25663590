# The snapshot benchmark's guest, 64-bit long mode, one vCPU. It writes 'R'
# to COM1 (a cold boot's first exit, which the benchmark times), then spins
# until the byte at `go` (load address + 0x10) is set and writes 0x21 to the
# debug-exit port. The benchmark sets `go` in the paused guest's RAM before
# the snapshot, so a restored copy's first instructions end it: restore to
# that exit is restore to the first guest instruction, plus one exit.
    .code64
    .set COM1, 0x3f8
    .set DEBUG_EXIT, 0xf4
    .set DONE, 0x21
    .globl _start
_start:
    jmp main
    .org 0x10
go: .byte 0
main:
    mov $COM1, %dx
    mov $'R', %al
    out %al, %dx
1:  pause
    cmpb $0, go(%rip)
    je 1b
    mov $DEBUG_EXIT, %dx
    mov $DONE, %al
    out %al, %dx
2:  hlt
    jmp 2b
