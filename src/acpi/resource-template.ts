/**
 * Resource descriptors (ACPI 6.5, 6.4), the bytes inside the buffer that
 * ASL's ResourceTemplate() makes: what a device decodes (ports, memory) and
 * which interrupts it raises. A `_CRS` is `aml.name('_CRS', resourceTemplate([...]))`.
 */
import { buffer, concat, type Aml } from './aml.js';

const IO_PORT_TAG = 0x47; // small item 0x08, 7 bytes
const IRQ_TAG = 0x23; // small item 0x04, 3 bytes (with the information byte)
const END_TAG = 0x79; // small item 0x0f, 1 byte
const MEMORY32_FIXED_TAG = 0x86; // large item 0x06
const MEMORY32_FIXED_LENGTH = 9;
const DWORD_ADDRESS_SPACE_TAG = 0x87; // large item 0x07
const DWORD_ADDRESS_SPACE_LENGTH = 23;
const WORD_ADDRESS_SPACE_TAG = 0x88; // large item 0x08
const WORD_ADDRESS_SPACE_LENGTH = 13;
const RESOURCE_MEMORY = 0;
const RESOURCE_BUS_NUMBER = 2;
/** General flags of an address space a bridge passes on: MinFixed, MaxFixed, PosDecode, ResourceProducer. */
const PRODUCER_FIXED = 0x0c;

const IO_DECODE_16 = 0x01;
const IRQ_EDGE = 0x01;
const IRQ_ACTIVE_LOW = 0x08;
const IRQ_SHARED = 0x10;
const MEMORY_WRITABLE = 0x01;

/** ResourceTemplate () { descriptors }: a buffer ending in an End Tag whose checksum 0 means "not checked". */
export function resourceTemplate(descriptors: readonly Uint8Array[]): Aml {
  return buffer(concat([...descriptors, Uint8Array.of(END_TAG, 0)]));
}

/** IO (Decode16, base, base, alignment, length): a fixed range of I/O ports. */
export function ioPorts(base: number, length: number, alignment = 1): Uint8Array {
  if (base < 0 || base + length > 0x10000 || length < 1 || length > 0xff) {
    throw new Error(`I/O ports 0x${base.toString(16)}+${length} do not fit an IO descriptor`);
  }
  return Uint8Array.of(IO_PORT_TAG, IO_DECODE_16, base & 0xff, base >> 8, base & 0xff, base >> 8, alignment, length);
}

export interface IrqOptions {
  /** Edge-triggered (the ISA default) or level-triggered. */
  trigger: 'edge' | 'level';
  polarity: 'high' | 'low';
  shared?: boolean;
}

/** IRQ (trigger, polarity, Exclusive|Shared) { irqs }: ISA interrupts 0 to 15. */
export function irq(irqs: readonly number[], options: IrqOptions): Uint8Array {
  let mask = 0;
  for (const n of irqs) {
    if (!Number.isInteger(n) || n < 0 || n > 15) throw new Error(`IRQ ${n} is not an ISA interrupt (0-15)`);
    mask |= 1 << n;
  }
  const info =
    (options.trigger === 'edge' ? IRQ_EDGE : 0) | (options.polarity === 'low' ? IRQ_ACTIVE_LOW : 0) | (options.shared ? IRQ_SHARED : 0);
  return Uint8Array.of(IRQ_TAG, mask & 0xff, mask >> 8, info);
}

/** Memory32Fixed (ReadWrite|ReadOnly, base, length): a fixed range of physical memory. */
export function memory32Fixed(base: number, length: number, writable = true): Uint8Array {
  if (base < 0 || length < 0 || base + length > 2 ** 32) {
    throw new Error(`memory 0x${base.toString(16)}+${length} does not fit a Memory32Fixed descriptor`);
  }
  const bytes = new Uint8Array(3 + MEMORY32_FIXED_LENGTH);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, MEMORY32_FIXED_TAG);
  view.setUint16(1, MEMORY32_FIXED_LENGTH, true);
  view.setUint8(3, writable ? MEMORY_WRITABLE : 0);
  view.setUint32(4, base, true);
  view.setUint32(8, length, true);
  return bytes;
}

/** WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, first, last, 0, count): the buses behind a bridge. */
export function wordBusNumber(first: number, last: number): Uint8Array {
  if (first < 0 || last < first || last > 0xff) throw new Error(`bus numbers ${first}-${last} are not a range of 0-255`);
  const bytes = new Uint8Array(3 + WORD_ADDRESS_SPACE_LENGTH);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, WORD_ADDRESS_SPACE_TAG);
  view.setUint16(1, WORD_ADDRESS_SPACE_LENGTH, true);
  view.setUint8(3, RESOURCE_BUS_NUMBER);
  view.setUint8(4, PRODUCER_FIXED);
  view.setUint8(5, 0);
  // Granularity (6) and translation offset (12) stay 0.
  view.setUint16(8, first, true);
  view.setUint16(10, last, true);
  view.setUint16(14, last - first + 1, true);
  return bytes;
}

/**
 * DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite, 0, base, base+length-1, 0, length):
 * a window of physical memory a bridge passes on to the devices behind it.
 */
export function dwordMemoryWindow(base: number, length: number): Uint8Array {
  if (base < 0 || length <= 0 || base + length > 2 ** 32) {
    throw new Error(`memory 0x${base.toString(16)}+${length} does not fit a DWordMemory descriptor`);
  }
  const bytes = new Uint8Array(3 + DWORD_ADDRESS_SPACE_LENGTH);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, DWORD_ADDRESS_SPACE_TAG);
  view.setUint16(1, DWORD_ADDRESS_SPACE_LENGTH, true);
  view.setUint8(3, RESOURCE_MEMORY);
  view.setUint8(4, PRODUCER_FIXED);
  view.setUint8(5, MEMORY_WRITABLE); // non-cacheable: device registers
  // Granularity (6) and translation offset (18) stay 0.
  view.setUint32(10, base, true);
  view.setUint32(14, base + length - 1, true);
  view.setUint32(22, length, true);
  return bytes;
}
