/**
 * The MADT ("APIC", ACPI 6.5, 5.2.12): the interrupt controllers. One local
 * APIC per vCPU, KVM's in-kernel I/O APIC, where the PIT's IRQ0 reaches it
 * if not on input 0, and LINT1 of every local APIC as the NMI input.
 */
import { concat } from './aml.js';
import { systemTable } from './table.js';

export const MADT_REVISION = 6;
export const LOCAL_APIC_ADDRESS = 0xfee0_0000;
export const IO_APIC_ADDRESS = 0xfec0_0000;
/** The dual 8259 PICs are there too (KVM's in-kernel irqchip has them). */
export const PCAT_COMPAT = 1;

export const MadtEntryType = {
  LOCAL_APIC: 0,
  IO_APIC: 1,
  INTERRUPT_SOURCE_OVERRIDE: 2,
  LOCAL_APIC_NMI: 4,
} as const;

const LOCAL_APIC_ENABLED = 1;
/** MPS INTI flags: polarity and trigger as the bus defines them (ISA: active high, edge). */
const INTI_CONFORMING = 0x0;
const INTI_ACTIVE_HIGH_EDGE = 0x5;
const ISA_BUS = 0;
const ALL_PROCESSORS = 0xff;
const LINT1 = 1;

export interface MadtOptions {
  cpus: number;
  /**
   * The I/O APIC input (GSI) the PIT's ISA IRQ0 reaches: 0 needs no
   * override; 2, as on a PC chipset, does.
   */
  pitGsi: number;
}

function entry(type: number, length: number, fill: (view: DataView) => void): Uint8Array {
  const bytes = new Uint8Array(length);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, type);
  view.setUint8(1, length);
  fill(view);
  return bytes;
}

/** Processor Local APIC: ACPI processor UID and APIC ID are both the vCPU index. */
function localApic(index: number): Uint8Array {
  return entry(MadtEntryType.LOCAL_APIC, 8, (v) => {
    v.setUint8(2, index);
    v.setUint8(3, index);
    v.setUint32(4, LOCAL_APIC_ENABLED, true);
  });
}

function ioApic(id: number): Uint8Array {
  return entry(MadtEntryType.IO_APIC, 12, (v) => {
    v.setUint8(2, id);
    v.setUint32(4, IO_APIC_ADDRESS, true);
    v.setUint32(8, 0, true); // its first input is GSI 0
  });
}

function isaOverride(irq: number, gsi: number, flags: number): Uint8Array {
  return entry(MadtEntryType.INTERRUPT_SOURCE_OVERRIDE, 10, (v) => {
    v.setUint8(2, ISA_BUS);
    v.setUint8(3, irq);
    v.setUint32(4, gsi, true);
    v.setUint16(8, flags, true);
  });
}

function localApicNmi(): Uint8Array {
  return entry(MadtEntryType.LOCAL_APIC_NMI, 6, (v) => {
    v.setUint8(2, ALL_PROCESSORS);
    v.setUint16(3, INTI_ACTIVE_HIGH_EDGE, true);
    v.setUint8(5, LINT1);
  });
}

/**
 * There is no override for the SCI: a hardware-reduced platform has none
 * (the FADT's SCI_INT is only set so no override is mistaken for it).
 */
export function madt(options: MadtOptions): Uint8Array {
  const { cpus, pitGsi } = options;
  // APIC IDs are 8 bits and 0xff is the broadcast ID.
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > 255) throw new Error(`the MADT describes 1 to 255 vCPUs, not ${cpus}`);
  const header = new Uint8Array(8);
  const view = new DataView(header.buffer);
  view.setUint32(0, LOCAL_APIC_ADDRESS, true);
  view.setUint32(4, PCAT_COMPAT, true);
  const cpuEntries = Array.from({ length: cpus }, (_, i) => localApic(i));
  // The I/O APIC's ID follows the local APICs', as in MP tables.
  const ioApicEntry = ioApic(cpus);
  const overrides = pitGsi === 0 ? [] : [isaOverride(0, pitGsi, INTI_CONFORMING)];
  return systemTable('APIC', MADT_REVISION, concat([header, ...cpuEntries, ioApicEntry, ...overrides, localApicNmi()]));
}
