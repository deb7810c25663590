/**
 * QEMU's test devices from inside a guest: a multiboot kernel that uses
 * pc-testdev and pci-testdev as kvm-unit-tests do, run by tsvmm with the
 * devices added through the library's device list, and by QEMU with
 * `-device pc-testdev -device pci-testdev`, and by `tsvmm qemu` given that
 * command line: the same output, the same status.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { guestFile } from '../helpers/guests.js';
import { kvmTest } from '../helpers/kvm.js';
import { runBounded } from '../helpers/machine.js';
import { KERNEL_HARNESS_FLAGS, runQemuKernel, underBoth } from '../helpers/qemu.js';
import { MiB } from '../../src/memory/layout.js';
import { buildMachine } from '../../src/vmm/builder.js';
import { defaultDevicesFor, type BootSource } from '../../src/vmm/config.js';

const TEST_DEVICES = ['-device', 'pc-testdev', '-device', 'pci-testdev'];

/** mb-testdevs.s writes 0x30 to the debug-exit port when it has printed everything. */
const DONE_STATUS = (0x30 << 1) | 1;

/** A ring with the test's data byte counts only where no ioeventfd takes it: in the no-eventfd tests. */
const test = (index: number, offset: number, data: number, name: string) => {
  const counted = name.endsWith('-no-eventfd') ? 1 : 0;
  const hex = (n: number, digits: number) => n.toString(16).padStart(digits, '0');
  return `test=${hex(index, 2)} width=01 offset=${hex(offset, 8)} data=${hex(data, 2)} count=00000000 rung=${hex(counted, 8)} other=${hex(counted, 8)} name=${name}`;
};

const EXPECTED = [
  'ioport=12345678 byte1=1234ab78 word2=cdefab78 in3=cd view=99efab78',
  'flush=00000000',
  'iomem=00000000 dword=dead5aef byte=5a top=00001357',
  'irq5 raised irr=01 lowered irr=00',
  'pci-testdev id=00051b36 class=00ff0000 subsystem=11001af4 pin=00',
  'bar0 mask=fffff000 bar1 mask=ffffff01',
  test(0, 0x800, 0xfa, 'mmio-no-eventfd'),
  test(1, 0x801, 0xce, 'mmio-wildcard-eventfd'),
  test(2, 0x802, 0xfa, 'mmio-datamatch-eventfd'),
  'none width=00',
  test(3, 0x83, 0xfa, 'portio-no-eventfd'),
  test(4, 0x84, 0xce, 'portio-wildcard-eventfd'),
  test(5, 0x85, 0xfa, 'portio-datamatch-eventfd'),
  'none width=00',
  '',
].join('\n');

let kernelPath: string | undefined;
/** The kernel, linked at 1 MiB as QEMU's loader wants it; assembled when a test first needs it. */
const kernel = () => (kernelPath ??= guestFile('mb-testdevs.s', { address: 0x10_0000, format: 'elf32' }));

let ours: Promise<{ status: number; stdout: string }> | undefined;

/** The kernel under tsvmm, with the multiboot defaults and both test devices; run once for both tests. */
function runUnderTsvmm() {
  ours ??= (async () => {
    const boot: BootSource = { kind: 'multiboot', image: readFileSync(kernel()) };
    let stdout = '';
    const machine = buildMachine({
      memory: 64 * MiB, cpus: 1, boot,
      devices: [...defaultDevicesFor(boot), { kind: 'pc-testdev' }, { kind: 'pci-testdev' }],
      console: (d) => (stdout += Buffer.from(d).toString('latin1')),
    });
    try {
      const stop = await runBounded(machine);
      assert.equal(stop.kind, 'debug-exit', `${stop.message}\n${stdout}`);
      return { status: stop.exitCode, stdout };
    } finally {
      await machine.destroy();
    }
  })();
  return ours;
}

kvmTest('a kernel drives pc-testdev (scratch ports, flush-page, iomem, an IRQ line) and reads and rings the pci-testdev table', async () => {
  assert.deepEqual(await runUnderTsvmm(), { status: DONE_STATUS, stdout: EXPECTED });
});

kvmTest('the same kernel prints the same and exits alike under qemu-system-x86_64 -device pc-testdev -device pci-testdev', async () => {
  assert.deepEqual(await runQemuKernel(kernel(), TEST_DEVICES), await runUnderTsvmm());
});

kvmTest('a harness\'s qemu-system-x86_64 line with both test devices gets the same from tsvmm qemu', async () => {
  const r = await underBoth(['-kernel', kernel(), ...TEST_DEVICES, ...KERNEL_HARNESS_FLAGS]);
  assert.deepEqual({ stdout: r.tsvmm.stdout, status: r.tsvmm.status }, { stdout: EXPECTED, status: DONE_STATUS }, r.tsvmm.stderr);
  assert.deepEqual({ stdout: r.qemu.stdout, status: r.qemu.status }, { stdout: EXPECTED, status: DONE_STATUS });
});
