/**
 * Kernels written for QEMU's PC run on tsvmm as they do on
 * `qemu-system-x86_64 -kernel`: the same output, byte for byte, and the same
 * exit status, for the same flags. test/guests/mb-smp-apic.s reads the CPU
 * count and RAM size from fw_cfg, starts the other CPUs with INIT/SIPI,
 * takes a local APIC timer interrupt and the UART's interrupt through the
 * I/O APIC; its output is checked line by line, then against QEMU's.
 */
import assert from 'node:assert/strict';
import { runCli } from '../helpers/cli.js';
import { guestFile } from '../helpers/guests.js';
import { kvmTest } from '../helpers/kvm.js';
import { runQemuKernel } from '../helpers/qemu.js';
import { GiB, MiB } from '../../src/memory/layout.js';

/** mb-smp-apic.s writes 0x30 to the debug-exit port when every check passed. */
const PASS_STATUS = (0x30 << 1) | 1;

/** What mb-smp-apic.s prints on a machine with `cpus` CPUs (APIC ids 0 to cpus-1) and `mem` bytes of RAM. */
function expectedReport(cpus: number, mem: number): string {
  return [
    'fw_cfg: signature QEMU',
    `fw_cfg: cpus ${cpus}`,
    `fw_cfg: ram 0x${mem.toString(16).padStart(16, '0')} bytes (${mem / MiB} MiB)`,
    `smp: ${cpus} of ${cpus} cpus up`,
    ...Array.from({ length: cpus }, (_, id) => `cpu apic id ${id}: ${id === 0 ? 'bsp' : 'ap'}, cpuid apic id ${id}`),
    'lapic timer: one-shot of 1000000 ticks fired on vector 0x40, count now 0',
    'ioapic: 24 pins; COM1 irq 4 came through pin 4 on vector 0x41, iir 0x02',
    'pass',
    '',
  ].join('\n');
}

// 4 GiB: RAM on both sides of the MMIO hole below 4 GiB, and a size that needs fw_cfg's 64 bits.
for (const { cpus, mem } of [{ cpus: 1, mem: 128 * MiB }, { cpus: 2, mem: 128 * MiB }, { cpus: 4, mem: 128 * MiB }, { cpus: 2, mem: 4 * GiB }]) {
  kvmTest(`with ${cpus} cpu(s) and ${mem / MiB} MiB, an SMP kernel for QEMU finds fw_cfg, starts its APs, takes LAPIC timer and I/O APIC interrupts, as under QEMU`, async () => {
    const kernel = guestFile('mb-smp-apic.s', { address: 0x100000, format: 'elf32' });
    const size = `${mem / MiB}M`;
    const ours = await runCli(['run', '--kernel', kernel, '--cpus', String(cpus), '--mem', size]);
    assert.equal(ours.stderr, '');
    assert.deepEqual({ stdout: ours.stdout, status: ours.status }, { stdout: expectedReport(cpus, mem), status: PASS_STATUS });
    assert.deepEqual(await runQemuKernel(kernel, ['-smp', String(cpus), '-m', size]), { stdout: ours.stdout, status: ours.status });
  });
}
