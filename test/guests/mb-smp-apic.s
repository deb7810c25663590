# A multiboot (v1) kernel written as for QEMU's PC, in 32-bit protected mode,
# that checks the platform an SMP operating system starts from, so that tsvmm
# can be compared with `qemu-system-x86_64 -kernel` byte for byte:
#
#   1. fw_cfg (I/O ports): the "QEMU" signature, then the CPU count and the
#      RAM size, printed.
#   2. SMP: the boot CPU copies a real-mode trampoline to TRAMPOLINE and
#      starts every other CPU with INIT, SIPI, SIPI (broadcast to all but
#      itself); the trampoline loads this kernel's GDT and jumps to 32-bit
#      code. Every CPU takes a stack by its local APIC id, records its role
#      (from IA32_APIC_BASE's BSP flag) and the initial APIC id CPUID
#      reports, and checks in. The boot CPU waits until as many have checked
#      in as fw_cfg said, or a timeout, and prints one line per CPU in APIC
#      id order, so the output does not depend on which AP ran first.
#   3. The local APIC timer: one-shot, on TIMER_VECTOR through a 32-bit
#      interrupt gate, acknowledged with an EOI.
#   4. The I/O APIC: with the 8259s masked, redirection entry COM1_PIN sends
#      the UART's interrupt (ISA IRQ 4; transmitter empty, enabled in the
#      IER with OUT2 set) to the boot CPU on UART_VECTOR. Not the PIT's: QEMU
#      wires its IRQ 0 to pin 2, KVM's default routing (tsvmm's) to pin 0.
#
# Waits are bounded by the TSC (see arm_deadline). The kernel ends through
# the debug-exit port: EXIT_PASS after a last line "pass", or one code per
# failure after a line "FAIL: ...". Any other vector, exceptions included,
# is a failure too.
    .code32
    .include "lib/print32.inc"

    .set BOOTLOADER_MAGIC, 0x2badb002

    .set DEBUG_EXIT, 0xf4
    .set EXIT_PASS, 0x30                # process status 97
    .set EXIT_BAD_MAGIC, 0x31           # not started by a multiboot loader
    .set EXIT_NO_FW_CFG, 0x32           # no fw_cfg signature
    .set EXIT_TOO_MANY_CPUS, 0x33       # more CPUs, or a larger APIC id, than MAX_CPUS
    .set EXIT_CPUS_MISSING, 0x34        # not every CPU checked in before the timeout
    .set EXIT_NO_TIMER, 0x35            # the LAPIC timer's interrupt did not come
    .set EXIT_NO_UART_IRQ, 0x36         # the UART's interrupt did not come through the I/O APIC
    .set EXIT_UNEXPECTED, 0x37          # an interrupt or exception nobody asked for

    .set CODE_SELECTOR, 0x08
    .set DATA_SELECTOR, 0x10
    .set CR0_PE, 1
    .set IA32_APIC_BASE, 0x1b
    .set APIC_BASE_BSP, 1 << 8

    .set MAX_CPUS, 16
    .set STACK_SIZE, 4096
    .set ROLE_AP, 1                     # cpu_role values; 0: not checked in
    .set ROLE_BSP, 2

# The trampoline's place: conventional RAM in both QEMU and tsvmm, above what
# either loader uses low down (tsvmm's GDT at 0x500, QEMU's multiboot
# information from 0x500), page-aligned as the SIPI vector needs.
    .set TRAMPOLINE, 0x8000
    .set SIPI_VECTOR, TRAMPOLINE >> 12

# TSC-bounded waits, in units of 4096 TSC cycles: a microsecond at 4 GHz.
    .set TSC_UNIT_SHIFT, 12
    .set INIT_DELAY, 10000              # 10 ms after INIT, as Intel's MP start-up asks
    .set SIPI_DELAY, 200                # 200 us after each SIPI
    .set TIMEOUT, 5000000               # 5 s (longer on a slower TSC): give up waiting

# Local APIC (xAPIC MMIO), its registers and the values written to them.
    .set LAPIC, 0xfee00000
    .set LAPIC_ID, LAPIC + 0x20         # bits 31:24
    .set LAPIC_EOI, LAPIC + 0xb0
    .set LAPIC_SVR, LAPIC + 0xf0
    .set LAPIC_ICR_LOW, LAPIC + 0x300   # writing it sends the IPI
    .set LAPIC_ICR_HIGH, LAPIC + 0x310
    .set LAPIC_LVT_TIMER, LAPIC + 0x320
    .set LAPIC_TIMER_INITIAL, LAPIC + 0x380
    .set LAPIC_TIMER_CURRENT, LAPIC + 0x390
    .set LAPIC_TIMER_DIVIDE, LAPIC + 0x3e0
    .set SVR_ENABLE, 1 << 8
    .set SPURIOUS_VECTOR, 0xff
    .set ICR_ALL_BUT_SELF, 3 << 18
    .set ICR_ASSERT, 1 << 14
    .set ICR_SEND_PENDING, 1 << 12
    .set ICR_INIT, 5 << 8
    .set ICR_STARTUP, 6 << 8
    .set TIMER_DIVIDE_BY_1, 0xb
    .set TIMER_TICKS, 1000000           # 1 ms on QEMU's and KVM's 1 GHz APIC timer clock
    .set TIMER_VECTOR, 0x40             # LVT timer: one-shot (mode 0), unmasked

# I/O APIC: an index register and a window onto the register it selects.
    .set IOAPIC_IOREGSEL, 0xfec00000
    .set IOAPIC_IOWIN, 0xfec00010
    .set IOAPIC_VERSION, 0x01           # bits 23:16: the highest redirection entry
    .set IOAPIC_REDIRECTION, 0x10       # entry n: registers 0x10 + 2n (low) and + 1 (high)
    .set REDIRECTION_MASKED, 1 << 16
    .set COM1_PIN, 4                    # ISA IRQ 4, the same pin in QEMU and tsvmm
    .set UART_VECTOR, 0x41              # fixed, physical, edge, active high

# The 8259 PICs' data ports: writing the interrupt mask.
    .set PIC_MASTER_MASK, 0x21
    .set PIC_SLAVE_MASK, 0xa1

# COM1's 16550 registers.
    .set UART_IER, SERIAL_COM1 + 1
    .set UART_IIR, SERIAL_COM1 + 2      # read: interrupt identification; write: FIFO control
    .set UART_LCR, SERIAL_COM1 + 3
    .set UART_MCR, SERIAL_COM1 + 4
    .set IER_THR_EMPTY, 0x02
    .set IIR_THR_EMPTY, 0x02            # with the FIFOs off, the whole IIR
    .set LCR_8N1, 0x03
    .set MCR_DTR_RTS_OUT2, 0x0b         # OUT2 gates the UART's interrupt onto the ISA bus

    .set IDT_ENTRIES, 256
    .set STUB_SIZE, 16
    .set GATE_INTERRUPT32, 0x8e00       # present, ring 0, 32-bit interrupt gate

# Ends the run: prints "FAIL: TEXT" and writes CODE to the debug-exit port.
    .macro fail code, text
    say "FAIL: \text"
    call newline
    mov $\code, %al
    jmp exit
    .endm

    .include "lib/multiboot-header.inc"

_start:
    cli
    mov %eax, boot_magic                # checked once there is a stack to report with
    lgdt gdt_descriptor
    ljmp $CODE_SELECTOR, $cpu_entry

# Every CPU comes here, the APs from the trampoline, with no stack yet.
cpu_entry:
    mov $DATA_SELECTOR, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %fs
    mov %ax, %gs
    mov %ax, %ss
    mov LAPIC_ID, %ebx
    shr $24, %ebx                       # EBX: this CPU's local APIC id
    cmp $MAX_CPUS, %ebx
    jae too_many_cpus
    lea 1(%ebx), %esp
    imul $STACK_SIZE, %esp, %esp
    add $stacks, %esp                   # ESP: the top of stack slot EBX
    mov $IA32_APIC_BASE, %ecx
    rdmsr
    test $APIC_BASE_BSP, %eax
    jnz bsp_main
    mov $ROLE_AP, %al
    call check_in
park:
    cli
    hlt
    jmp park

# Without a stack to print with, and maybe from an AP: no message.
too_many_cpus:
    mov $EXIT_TOO_MANY_CPUS, %al
    out %al, $DEBUG_EXIT
    jmp park

bsp_main:
    cmpl $BOOTLOADER_MAGIC, boot_magic
    je 1f
    fail EXIT_BAD_MAGIC, "not started by a multiboot loader"
1:  mov $ROLE_BSP, %al
    call check_in
    call read_fw_cfg
    call install_idt
    call mask_pics
    movl $SVR_ENABLE | SPURIOUS_VECTOR, LAPIC_SVR
    call start_aps
    call report_cpus
    call lapic_timer_test
    call ioapic_uart_test
    say "pass"
    call newline
    mov $EXIT_PASS, %al
exit:
    out %al, $DEBUG_EXIT
    jmp park

# Records this CPU by its local APIC id: its role and the initial APIC id
# CPUID reports; then counts it in cpus_up (a locked add: what it recorded is
# visible before the count). in: EBX = local APIC id, AL = its role.
# Clobbers EAX, ECX, EDX.
check_in:
    push %ebx
    mov %al, cpu_role(%ebx)
    mov $1, %eax
    cpuid
    shr $24, %ebx
    mov (%esp), %eax
    mov %bl, cpu_cpuid_id(%eax)
    lock incl cpus_up
    pop %ebx
    ret

# Checks the fw_cfg signature, then reads and prints the CPU count (into
# cpu_count) and the RAM size. Clobbers EAX, EBX, ECX, EDX, ESI, EDI.
read_fw_cfg:
    mov $FW_CFG_SIGNATURE, %ebx
    call fw_cfg_select_read32
    cmp $FW_CFG_QEMU, %eax
    je 1f
    fail EXIT_NO_FW_CFG, "no fw_cfg signature"
1:  say "fw_cfg: signature QEMU"
    call newline
    mov $FW_CFG_NB_CPUS, %ebx
    call fw_cfg_select_read32
    and $0xffff, %eax
    mov %eax, cpu_count
    say "fw_cfg: cpus "
    mov cpu_count, %eax
    call putdec
    call newline
    cmpl $MAX_CPUS, cpu_count
    jbe 1f
    fail EXIT_TOO_MANY_CPUS, "more cpus than this kernel has stacks for"
1:  mov $FW_CFG_RAM_SIZE, %ebx
    call fw_cfg_select_read32
    mov %eax, %edi
    call fw_cfg_read32                  # EAX:EDI, the 64-bit size
    mov %eax, %ebx
    say "fw_cfg: ram 0x"
    mov %ebx, %eax
    call puthex32
    mov %edi, %eax
    call puthex32
    say " bytes ("
    mov %edi, %eax
    shrd $20, %ebx, %eax
    call putdec
    say " MiB)"
    call newline
    ret

# Fills the IDT with a stub per vector that reports it (unexpected), then
# points the two vectors this kernel uses at their handlers and loads it.
# Clobbers EAX, ECX, EDI.
install_idt:
    mov $idt, %edi
    mov $vector_stubs, %eax
    mov $IDT_ENTRIES, %ecx
1:  call set_gate
    add $8, %edi
    add $STUB_SIZE, %eax
    loop 1b
    mov $idt + TIMER_VECTOR * 8, %edi
    mov $timer_interrupt, %eax
    call set_gate
    mov $idt + UART_VECTOR * 8, %edi
    mov $uart_interrupt, %eax
    call set_gate
    lidt idt_descriptor
    ret

# Writes a 32-bit interrupt gate to handler EAX at the IDT entry EDI.
set_gate:
    push %eax
    mov %ax, (%edi)
    movw $CODE_SELECTOR, 2(%edi)
    shr $16, %eax
    mov %ax, 6(%edi)
    movw $GATE_INTERRUPT32, 4(%edi)
    pop %eax
    ret

# Masks every 8259 input: QEMU's BIOS leaves the timer and keyboard unmasked
# there, and ISA interrupts are to arrive through the I/O APIC only.
mask_pics:
    mov $0xff, %al
    out %al, $PIC_MASTER_MASK
    out %al, $PIC_SLAVE_MASK
    ret

# Copies the trampoline down and starts the other CPUs (if fw_cfg says there
# are any), then waits for them all to check in. Clobbers EAX, ECX, EDX,
# ESI, EDI.
start_aps:
    cmpl $1, cpu_count
    je 1f
    mov $trampoline, %esi
    mov $TRAMPOLINE, %edi
    mov $trampoline_end - trampoline, %ecx
    rep movsb
    mov $ICR_ALL_BUT_SELF | ICR_ASSERT | ICR_INIT, %eax
    call send_ipi
    mov $INIT_DELAY, %ecx
    call delay
    call send_sipi
    call send_sipi                      # the second, which a CPU the first started ignores
    mov $cpus_up, %edi
    mov cpu_count, %eax
    call wait_for
1:  ret

# Sends a start-up IPI to the other CPUs, then gives them SIPI_DELAY.
# Clobbers EAX, ECX, EDX.
send_sipi:
    mov $ICR_ALL_BUT_SELF | ICR_ASSERT | ICR_STARTUP | SIPI_VECTOR, %eax
    call send_ipi
    mov $SIPI_DELAY, %ecx
    jmp delay

# Sends the IPI whose ICR low word is EAX (its shorthand says to whom) and
# waits until the local APIC has sent it.
send_ipi:
    movl $0, LAPIC_ICR_HIGH
    mov %eax, LAPIC_ICR_LOW
1:  testl $ICR_SEND_PENDING, LAPIC_ICR_LOW
    jz 2f
    pause
    jmp 1b
2:  ret

# Prints how many CPUs checked in, and a line for each in APIC id order;
# fails unless all of them did. Clobbers EAX, EBX, EDX, ESI.
report_cpus:
    say "smp: "
    mov cpus_up, %eax
    call putdec
    say " of "
    mov cpu_count, %eax
    call putdec
    say " cpus up"
    call newline
    xor %ebx, %ebx
1:  cmpb $0, cpu_role(%ebx)
    je 3f
    say "cpu apic id "
    mov %ebx, %eax
    call putdec
    say ": "
    cmpb $ROLE_BSP, cpu_role(%ebx)
    jne 2f
    say "bsp"
    jmp 4f
2:  say "ap"
4:  say ", cpuid apic id "
    movzbl cpu_cpuid_id(%ebx), %eax
    call putdec
    call newline
3:  inc %ebx
    cmp $MAX_CPUS, %ebx
    jb 1b
    mov cpus_up, %eax
    cmp cpu_count, %eax
    je 5f
    fail EXIT_CPUS_MISSING, "not every cpu checked in"
5:  ret

# Arms the local APIC timer once and waits, interrupts on, for its interrupt.
# Clobbers EAX, ECX, EDX, ESI, EDI.
lapic_timer_test:
    movl $TIMER_DIVIDE_BY_1, LAPIC_TIMER_DIVIDE
    movl $TIMER_VECTOR, LAPIC_LVT_TIMER
    movl $TIMER_TICKS, LAPIC_TIMER_INITIAL   # starts the count down
    sti
    mov $timer_interrupts, %edi
    mov $1, %eax
    call wait_for
    cli
    je 1f
    fail EXIT_NO_TIMER, "no interrupt from the lapic timer"
1:  say "lapic timer: one-shot of "
    mov $TIMER_TICKS, %eax
    call putdec
    say " ticks fired on vector 0x"
    mov $TIMER_VECTOR, %al
    call puthex8
    say ", count now "
    mov LAPIC_TIMER_CURRENT, %eax
    call putdec
    call newline
    ret

# Routes COM1's pin to this CPU and lets the UART raise its transmitter-empty
# interrupt (the handler turns it off again); waits for it with interrupts on.
# Clobbers EAX, ECX, EDX, ESI, EDI.
ioapic_uart_test:
    movl $IOAPIC_VERSION, IOAPIC_IOREGSEL
    mov IOAPIC_IOWIN, %eax
    shr $16, %eax
    movzbl %al, %edi
    inc %edi                            # EDI: the number of pins
    movl $IOAPIC_REDIRECTION + 2 * COM1_PIN + 1, IOAPIC_IOREGSEL
    mov LAPIC_ID, %eax                  # destination: this CPU, in bits 31:24 as in LAPIC_ID
    mov %eax, IOAPIC_IOWIN
    movl $IOAPIC_REDIRECTION + 2 * COM1_PIN, IOAPIC_IOREGSEL
    movl $UART_VECTOR, IOAPIC_IOWIN

    mov $UART_IIR, %dx
    xor %al, %al                        # FIFOs off: the IIR then reads exactly IIR_THR_EMPTY
    out %al, %dx
    mov $UART_LCR, %dx
    mov $LCR_8N1, %al
    out %al, %dx
    mov $UART_MCR, %dx
    mov $MCR_DTR_RTS_OUT2, %al
    out %al, %dx
    mov $UART_IER, %dx
    mov $IER_THR_EMPTY, %al
    out %al, %dx                        # the holding register is empty: the interrupt is due now
    sti
    push %edi
    mov $uart_interrupts, %edi
    mov $1, %eax
    call wait_for
    pop %edi
    cli
    movl $IOAPIC_REDIRECTION + 2 * COM1_PIN, IOAPIC_IOREGSEL
    movl $REDIRECTION_MASKED | UART_VECTOR, IOAPIC_IOWIN
    jne 1f
    cmpb $IIR_THR_EMPTY, uart_iir
    je 2f
1:  fail EXIT_NO_UART_IRQ, "no transmitter-empty interrupt from COM1 through the ioapic"
2:  say "ioapic: "
    mov %edi, %eax
    call putdec
    say " pins; COM1 irq 4 came through pin "
    mov $COM1_PIN, %eax
    call putdec
    say " on vector 0x"
    mov $UART_VECTOR, %al
    call puthex8
    say ", iir 0x"
    mov uart_iir, %al
    call puthex8
    call newline
    ret

# Sets `deadline` ECX units (TSC_UNIT_SHIFT) from now. The TSC's rate is not
# known; at up to 4 GHz a unit is a microsecond or more, so every wait is at
# least as long as asked. Clobbers EAX, EDX.
arm_deadline:
    push %ecx
    rdtsc
    push %ecx
    shl $TSC_UNIT_SHIFT, %ecx
    add %ecx, %eax
    pop %ecx
    shr $32 - TSC_UNIT_SHIFT, %ecx
    adc %ecx, %edx
    mov %eax, deadline
    mov %edx, deadline + 4
    pop %ecx
    ret

# Sets CF while the deadline is still ahead. Clobbers EAX, EDX.
before_deadline:
    rdtsc
    sub deadline, %eax
    sbb deadline + 4, %edx
    ret

# Waits ECX units. Clobbers EAX, EDX.
delay:
    call arm_deadline
1:  pause
    call before_deadline
    jc 1b
    ret

# Waits until the dword at EDI equals EAX (another CPU or an interrupt
# handler sets it), or TIMEOUT. out: ZF set when it does. Clobbers ECX, EDX.
wait_for:
    push %eax
    mov $TIMEOUT, %ecx
    call arm_deadline
1:  mov (%esp), %eax
    cmp %eax, (%edi)
    je 2f
    pause
    call before_deadline
    jc 1b
2:  pop %eax
    cmp %eax, (%edi)
    ret

# Interrupt handlers: each keeps every register.

timer_interrupt:
    incl timer_interrupts
    movl $0, LAPIC_EOI
    iret

# Reading the IIR acknowledges the transmitter-empty interrupt; clearing the
# IER keeps the UART from raising it again with each byte printed.
uart_interrupt:
    push %eax
    push %edx
    mov $UART_IIR, %dx
    in %dx, %al
    mov %al, uart_iir
    mov $UART_IER, %dx
    xor %al, %al
    out %al, %dx
    incl uart_interrupts
    movl $0, LAPIC_EOI
    pop %edx
    pop %eax
    iret

# One stub per vector, STUB_SIZE bytes apart, each pushing its vector number.
    .balign STUB_SIZE
vector_stubs:
    .set vector, 0
    .rept IDT_ENTRIES
    .balign STUB_SIZE
    push $vector
    jmp unexpected_vector
    .set vector, vector + 1
    .endr

unexpected_vector:
    say "FAIL: unexpected interrupt or exception, vector 0x"
    pop %eax
    call puthex8
    call newline
    mov $EXIT_UNEXPECTED, %al
    jmp exit

# Copied to TRAMPOLINE, where each AP starts in real mode with CS =
# TRAMPOLINE >> 4 and IP = 0: offsets in it are from `trampoline`. The GDT's
# descriptor lives here, so the AP can load it with a 16-bit offset; the
# boot CPU loads the same descriptor at its place in the kernel.
    .code16
    .balign 16
trampoline:
    cli
    mov %cs, %ax
    mov %ax, %ds
    lgdtl gdt_descriptor - trampoline
    mov %cr0, %eax
    or $CR0_PE, %eax
    mov %eax, %cr0
    ljmpl $CODE_SELECTOR, $cpu_entry
    .balign 8
gdt_descriptor:
    .word gdt_end - gdt - 1
    .long gdt
trampoline_end:
    .code32

    .include "lib/fw-cfg.inc"

    .section .rodata
    .balign 8
gdt:
    .quad 0
    .quad 0x00cf9a000000ffff            # CODE_SELECTOR: flat 4 GiB code, ring 0
    .quad 0x00cf92000000ffff            # DATA_SELECTOR: flat 4 GiB data, ring 0
gdt_end:
idt_descriptor:
    .word IDT_ENTRIES * 8 - 1
    .long idt

    .bss
    .balign 8
idt: .space IDT_ENTRIES * 8
deadline: .quad 0
boot_magic: .long 0
cpu_count: .long 0
cpus_up: .long 0
timer_interrupts: .long 0
uart_interrupts: .long 0
uart_iir: .byte 0
cpu_role: .space MAX_CPUS
cpu_cpuid_id: .space MAX_CPUS
    .balign 16
stacks: .space MAX_CPUS * STACK_SIZE
