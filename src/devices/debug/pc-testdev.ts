/**
 * QEMU's pc-testdev (hw/misc/pc-testdev.c), the ISA device kvm-unit-tests
 * drive on x86, at QEMU's fixed addresses (the tests have them built in):
 *
 *   ports 0xe0-0xe3          ioport: a 32-bit scratch register, any width at any offset in it
 *   ports 0xe4-0xe7          flush-page: a 32-bit write of a guest-physical address (below)
 *   ports 0xe8-0xeb          ioport-byte: the same register, which QEMU serves a byte at a time
 *   ports 0x2000-0x2017      irq-line: a byte v written to 0x2000 + n raises ISA IRQ n (v != 0) or lowers it (v = 0)
 *   0xff000000-0xff00ffff    iomem: 64 KiB that read back what was written, any width
 *
 * Reads of flush-page and irq-line return 0, and accesses of another width
 * than theirs (4 bytes, 1 byte) do nothing, as in QEMU. The iomem window is
 * in the MMIO hole above the local APIC (0xfee00000) and below the pages
 * KVM keeps for itself (0xfffbc000, vmm/builder.ts), where no RAM, PCI
 * window or other device of ours is.
 */
import type { BusDevice } from '../bus.js';
import type { DeviceContext } from '../context.js';
import { PC_TESTDEV_IOMEM_BASE } from '../../memory/layout.js';
import type { DeviceState } from '../device-state.js';

const SCRATCH_SIZE = 4;
const IOMEM_SIZE = 0x1_0000;
const IRQ_PORTS = 24;
/** QEMU's region has a port for each I/O APIC input, but its ISA bus has 16 lines: a write for line 16-23 ends QEMU on an assertion, and does nothing here. */
const ISA_IRQ_LINES = 16;
const FLUSH_WIDTH = 4;

/** QEMU's regions, in the order of PcTestdev.regions; the registry places the device by them. */
export const PC_TESTDEV_REGIONS = [
  { name: 'pc-testdev ioport', bus: 'pio', base: 0xe0, length: SCRATCH_SIZE },
  { name: 'pc-testdev flush-page', bus: 'pio', base: 0xe4, length: FLUSH_WIDTH },
  { name: 'pc-testdev ioport-byte', bus: 'pio', base: 0xe8, length: SCRATCH_SIZE },
  { name: 'pc-testdev irq-line', bus: 'pio', base: 0x2000, length: IRQ_PORTS },
  { name: 'pc-testdev iomem', bus: 'mmio', base: PC_TESTDEV_IOMEM_BASE, length: IOMEM_SIZE },
] as const;

/** Shared state: the scratch register, then iomem. */
const IOMEM = SCRATCH_SIZE;

export class PcTestdev {
  static readonly stateSize = SCRATCH_SIZE + IOMEM_SIZE;

  /** What answers on each of PC_TESTDEV_REGIONS. */
  readonly regions: readonly BusDevice[];

  constructor(ctx: DeviceContext, state: DeviceState) {
    // The bus hands a device only accesses inside one of its ranges, so an
    // access to either view of the register covers whole bytes of it, and
    // QEMU's byte-at-a-time view behaves as the other.
    const scratch = window(state, 0);
    this.regions = [scratch, flushPage, scratch, irqLines(ctx), window(state, IOMEM)];
  }
}

/** Bytes of state from `at` that read back what was written. */
function window(state: DeviceState, at: number): BusDevice {
  const { bytes } = state;
  return {
    read: (offset, data) => data.set(bytes.subarray(at + offset, at + offset + data.length)),
    write: (offset, data) => bytes.set(data, at + offset),
  };
}

/**
 * QEMU makes the page inaccessible and accessible again (mprotect), so KVM
 * drops its mapping and the guest's next access to it faults into KVM.
 * Here the write is taken and does nothing: the guest's next access runs
 * without that fault, which no test of QEMU's looks for.
 */
const flushPage: BusDevice = {
  read: (_offset, data) => data.fill(0),
  write: () => {},
};

function irqLines(ctx: DeviceContext): BusDevice {
  return {
    read: (_offset, data) => data.fill(0),
    write: (line, data) => {
      if (data.length === 1 && line < ISA_IRQ_LINES) ctx.irq(line, data[0] !== 0);
    },
  };
}
