/**
 * QEMU's pci-testdev (hw/misc/pci-testdev.c): Red Hat's PCI test function
 * 1b36:0005, with which kvm-unit-tests check a VMM's ioeventfds. Its two
 * BARs hold a table of six tests, three per BAR:
 *
 *   BAR0  memory, 4 KiB   mmio-no-eventfd, mmio-wildcard-eventfd, mmio-datamatch-eventfd
 *   BAR1  I/O, 256 ports  portio-no-eventfd, portio-wildcard-eventfd, portio-datamatch-eventfd
 *
 * A write to offset 0 of a BAR selects the test its byte numbers among
 * that BAR's three (any other number selects none). Reads of either BAR
 * then return the selected test's header, a byte at a time (0 past its
 * end, or with no test selected):
 *
 *   0   test    its index in the table, 0-5
 *   1   width   1: the doorbell is rung with a byte
 *   4   offset  u32, the doorbell's offset in the test's BAR: 0x800 + index (memory), 0x80 + index (ports)
 *   8   data    the byte to ring it with: 0xce for the wildcard tests, 0xfa for the others
 *   12  count   u32, the rings the device saw
 *   16  name    NUL-terminated
 *
 * Selecting a test sets its count to 0. QEMU serves writes a byte at a
 * time too: a byte written at the selected test's doorbell offset (through
 * either BAR) is counted when the test matches any data (wildcard) or the
 * byte is the test's data. The eventfd tests' doorbells are KVM ioeventfds
 * besides (pciTestdevIoeventfds), as QEMU on KVM registers them, so the
 * writes they match never reach the device and are not counted: a test
 * sees a count of 0 for them.
 *
 * QEMU's optional third BAR (`membar`, memory with nothing in it) is not
 * offered.
 */
import type { BusDevice } from '../bus.js';
import type { DeviceState } from '../device-state.js';
import { PCI_DEVICE_STATE_SIZE, PciDevice } from '../pci/pci-device.js';
import type { IoEventFd } from '../../kvm/vm.js';

const REDHAT_VENDOR_ID = 0x1b36;
const PCI_TEST_DEVICE_ID = 0x0005;
/** PCI_CLASS_OTHERS (0xff) as QEMU writes it, into the class and subclass word: class 0, subclass 0xff. */
const CLASS_UNCLASSIFIED_OTHER = 0x00ff00;
/** The subsystem QEMU gives a function that names none. */
const QEMU_SUBSYSTEM_VENDOR_ID = 0x1af4;
const QEMU_SUBSYSTEM_ID = 0x1100;

/** Each BAR has room for its tests' doorbells in its upper half. */
const MEMORY_DOORBELLS = 0x800;
const PORT_DOORBELLS = 0x80;
export const PCI_TESTDEV_BAR0_SIZE = 2 * MEMORY_DOORBELLS;
export const PCI_TESTDEV_BAR1_SIZE = 2 * PORT_DOORBELLS;

const DATAMATCH = 0xfa;
const NOMATCH = 0xce;
const WIDTH = 1;
const HEADER = { TEST: 0, WIDTH: 1, OFFSET: 4, DATA: 8, COUNT: 12, NAME: 16 } as const;

type Eventfd = 'no' | 'wildcard' | 'datamatch';

interface IoTest {
  name: string;
  io: boolean;
  eventfd: Eventfd;
  offset: number;
  data: number;
  /** The header's bytes, count 0; the live count is in the shared state. */
  header: Uint8Array;
}

const TESTS: readonly IoTest[] = (['mmio', 'portio'] as const).flatMap((space, s) =>
  (['no', 'wildcard', 'datamatch'] as const).map((eventfd, t) => {
    const index = 3 * s + t;
    const name = `${space}-${eventfd}-eventfd`;
    const offset = (space === 'mmio' ? MEMORY_DOORBELLS : PORT_DOORBELLS) + index * WIDTH;
    const data = eventfd === 'wildcard' ? NOMATCH : DATAMATCH;
    const header = new Uint8Array(HEADER.NAME + name.length + 1);
    const view = new DataView(header.buffer);
    view.setUint8(HEADER.TEST, index);
    view.setUint8(HEADER.WIDTH, WIDTH);
    view.setUint32(HEADER.OFFSET, offset, true);
    view.setUint8(HEADER.DATA, data);
    header.set(Buffer.from(name, 'latin1'), HEADER.NAME);
    return { name, io: space === 'portio', eventfd, offset, data, header };
  }),
);
const TESTS_PER_BAR = 3;

/** What the VMM gives the function at build time: its slot and where its two BARs are. */
export interface PciTestdevWiring {
  slot: number;
  /** Guest-physical address of BAR0, memory. */
  bar0: number;
  /** First port of BAR1. */
  bar1: number;
}

/** The KVM ioeventfds QEMU on KVM puts on the eventfd tests' doorbells, where the VMM put the BARs (each wants an eventfd of its own). */
export function pciTestdevIoeventfds(wiring: PciTestdevWiring): Omit<IoEventFd, 'fd'>[] {
  return TESTS.filter((t) => t.eventfd !== 'no').map((t) => ({
    addr: (t.io ? wiring.bar1 : wiring.bar0) + t.offset,
    // QEMU asks KVM for any width at the memory wildcard doorbell (KVM_CAP_IOEVENTFD_ANY_LENGTH), a byte elsewhere.
    len: !t.io && t.eventfd === 'wildcard' ? 0 : WIDTH,
    ...(t.io && { pio: true }),
    ...(t.eventfd === 'datamatch' && { datamatch: BigInt(t.data) }),
  }));
}

/** Shared state after config space: the selected test + 1 (0: none), then a u32 count per test. */
const SELECTED = PCI_DEVICE_STATE_SIZE;
const COUNTS = SELECTED + 4;

export class PciTestdev extends PciDevice {
  static readonly stateSize = COUNTS + 4 * TESTS.length;

  /** BAR0 on the MMIO bus and BAR1 on the port bus, each answering only while its decoding is on. */
  readonly bar0 = this.bar(0);
  readonly bar1 = this.bar(1);

  constructor(state: DeviceState, wiring: PciTestdevWiring) {
    super(state, {
      vendorId: REDHAT_VENDOR_ID, deviceId: PCI_TEST_DEVICE_ID, revisionId: 0, classCode: CLASS_UNCLASSIFIED_OTHER,
      subsystemVendorId: QEMU_SUBSYSTEM_VENDOR_ID, subsystemId: QEMU_SUBSYSTEM_ID,
      bars: [
        { index: 0, address: wiring.bar0, size: PCI_TESTDEV_BAR0_SIZE },
        { index: 1, address: wiring.bar1, size: PCI_TESTDEV_BAR1_SIZE, io: true },
      ],
      capabilities: [], interruptPin: 0, interruptLine: 0,
    });
    this.powerOn();
  }

  protected override reset(): void {
    super.reset();
    this.state.bytes.fill(0, SELECTED, PciTestdev.stateSize);
  }

  private bar(index: 0 | 1): BusDevice {
    return {
      read: (offset, data) => {
        if (!this.barDecodes(index)) data.fill(0xff);
        else for (let i = 0; i < data.length; i++) data[i] = this.headerByte(offset + i);
      },
      write: (offset, data) => {
        if (this.barDecodes(index)) data.forEach((byte, i) => this.writeByte(index, offset + i, byte));
      },
    };
  }

  private get selected(): IoTest | undefined {
    return TESTS[this.state.bytes[SELECTED] - 1];
  }

  private countOf(test: IoTest): number {
    return this.state.view.getUint32(COUNTS + 4 * TESTS.indexOf(test), true);
  }

  private setCount(test: IoTest, count: number): void {
    this.state.view.setUint32(COUNTS + 4 * TESTS.indexOf(test), count >>> 0, true);
  }

  private headerByte(at: number): number {
    const test = this.selected;
    if (test === undefined || at >= test.header.length) return 0;
    return at >= HEADER.COUNT && at < HEADER.COUNT + 4 ? (this.countOf(test) >>> (8 * (at - HEADER.COUNT))) & 0xff : test.header[at];
  }

  private writeByte(bar: 0 | 1, at: number, byte: number): void {
    if (at === HEADER.TEST) {
      const test = byte < TESTS_PER_BAR ? TESTS[bar * TESTS_PER_BAR + byte] : undefined;
      this.state.bytes[SELECTED] = test === undefined ? 0 : TESTS.indexOf(test) + 1;
      if (test) this.setCount(test, 0);
      return;
    }
    const test = this.selected;
    if (test === undefined || at !== test.offset) return;
    if (test.eventfd === 'wildcard' || byte === test.data) this.setCount(test, this.countOf(test) + 1);
  }
}
