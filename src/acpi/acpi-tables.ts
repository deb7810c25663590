/**
 * Writes the ACPI tables a guest OS reads to find its CPUs, interrupt
 * controllers and devices, and to power off and reset:
 *
 *   RSDP -> XSDT -> FADT -> DSDT
 *                -> MADT
 *                -> MCFG (with PCI)
 *
 * By default the RSDP is at 0xe0000, in the BIOS area that Linux scans,
 * and the tables follow it. The caller must keep that range out of the
 * RAM it hands the OS (e820 reserved).
 */
import { ACPI_PM_BASE } from '../devices/legacy/acpi-pm.js';
import { COM1_IRQ } from '../devices/legacy/serial-port.js';
import { pciFunctionSlot } from '../devices/pci-functions.js';
import { ECAM_BUS_SIZE } from '../devices/pci/ecam.js';
import { intxGsi } from '../devices/pci/layout.js';
import { VMGENID_ADDRESS, VMGENID_GSI } from '../devices/legacy/vmgenid.js';
import { ACPI_RSDP_ADDRESS, PCI_MMIO_WINDOW_BASE, PCI_MMIO_WINDOW_END } from '../memory/layout.js';
import { placement, type DeviceSpec } from '../devices/registry.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import { dsdt, type DsdtPci, type IsaSerialPort } from './dsdt.js';
import type { DsdtVmGenId } from './vmgenid.js';
import { fadt } from './fadt.js';
import { madt } from './madt.js';
import { mcfg } from './mcfg.js';
import { RSDP_ALIGNMENT, rsdp, RSDP_SIZE } from './rsdp.js';
import { xsdt } from './xsdt.js';

/**
 * KVM's default GSI routing, which the builder keeps, takes the in-kernel
 * PIT's IRQ0 to I/O APIC input 0 (measured: a guest that unmasks inputs 0
 * and 2 gets the tick on 0). A PC chipset, and QEMU's routing, use input 2.
 */
export const DEFAULT_PIT_GSI = 0;
const TABLE_ALIGNMENT = 8;

export interface AcpiDevices {
  /** 16550 UARTs; COM1 is { base: 0x3f8, irq: 4 }. */
  serialPorts: readonly IsaSerialPort[];
  /** A PS/2 keyboard controller at 0x60/0x64 (default none). */
  i8042?: boolean;
  /** A CMOS RTC at 0x70 (default none). */
  cmosRtc?: boolean;
  /** Port base of the acpi-pm device (default ACPI_PM_BASE, 0x600). */
  pmBase?: number;
  /** I/O APIC input of the PIT's IRQ0 (default 0; any other is announced by an override, 2 as on a PC). */
  pitGsi?: number;
  /** PCI segment 0: a root bridge in the DSDT and its ECAM window in the MCFG. */
  pci?: DsdtPci;
  /** The VM generation ID: the tables must end below its address. */
  vmGenId?: DsdtVmGenId;
}

export interface AcpiOptions {
  cpus: number;
  /** Guest-physical address of the RSDP, 16-byte aligned (default 0xe0000). */
  rsdpAddress?: number;
  /** Where the other tables start (default: right after the RSDP). */
  tablesAddress?: number;
  devices: AcpiDevices;
}

export interface AcpiTableLocation {
  signature: string;
  address: number;
  length: number;
}

export interface AcpiLayout {
  rsdp: number;
  /** First byte after the last table (or the RSDP, if that is higher). */
  end: number;
  tables: AcpiTableLocation[];
}

/** What the tables describe, read from a machine's device list, which must have the acpi-pm device. */
export function acpiDevicesOf(specs: readonly DeviceSpec[]): AcpiDevices {
  const pm = specs.find((s) => s.kind === 'acpi-pm');
  if (pm === undefined) throw new Error('ACPI needs the acpi-pm device: the guest powers off and resets through it');
  const serials = specs.filter((s): s is Extract<DeviceSpec, { kind: 'serial' }> => s.kind === 'serial');
  const pci = pciOf(specs);
  return {
    serialPorts: serials.map((s) => ({ base: placement(s).base, irq: s.irq ?? COM1_IRQ })),
    i8042: specs.some((s) => s.kind === 'i8042'),
    cmosRtc: specs.some((s) => s.kind === 'rtc'),
    pmBase: placement(pm).base,
    ...(pci && { pci }),
    ...(specs.some((s) => s.kind === 'vmgenid') && { vmGenId: { address: VMGENID_ADDRESS, gsi: VMGENID_GSI } }),
  };
}

const PCI_PINS = 4;

/** Bus 0 as the builder laid it out: the ECAM device's window, and the slots behind it. */
function pciOf(specs: readonly DeviceSpec[]): DsdtPci | undefined {
  const ecam = specs.find((s): s is Extract<DeviceSpec, { kind: 'pci-ecam' }> => s.kind === 'pci-ecam');
  if (ecam === undefined) return undefined;
  const slots = ecam.functions.filter((f) => f.spec.kind !== 'pci-host-bridge').map((f) => pciFunctionSlot(f.spec));
  return {
    ecam: { base: ecam.base, size: ECAM_BUS_SIZE },
    window: { base: PCI_MMIO_WINDOW_BASE, size: PCI_MMIO_WINDOW_END - PCI_MMIO_WINDOW_BASE },
    routes: slots.flatMap((slot) => Array.from({ length: PCI_PINS }, (_, pin) => ({ slot, pin, gsi: intxGsi(slot, pin) }))),
  };
}

function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

export function writeAcpiTables(memory: GuestMemory, options: AcpiOptions): AcpiLayout {
  const rsdpAddress = options.rsdpAddress ?? ACPI_RSDP_ADDRESS;
  if (rsdpAddress % RSDP_ALIGNMENT !== 0) throw new Error(`the RSDP address 0x${rsdpAddress.toString(16)} is not 16-byte aligned`);
  const { devices } = options;
  const pmBase = devices.pmBase ?? ACPI_PM_BASE;

  const tables: AcpiTableLocation[] = [];
  let next = alignUp(options.tablesAddress ?? rsdpAddress + RSDP_SIZE, TABLE_ALIGNMENT);
  const place = (table: Uint8Array): number => {
    const address = next;
    memory.write(address, table);
    tables.push({ signature: String.fromCharCode(...table.subarray(0, 4)), address, length: table.length });
    next = alignUp(address + table.length, TABLE_ALIGNMENT);
    return address;
  };

  const i8042 = devices.i8042 ?? false;
  const cmosRtc = devices.cmosRtc ?? false;
  const { pci, vmGenId } = devices;
  const dsdtAddress = place(dsdt({ serialPorts: devices.serialPorts, i8042, cmosRtc, pmBase, pci, vmGenId }));
  const legacyDevices = devices.serialPorts.length > 0 || i8042;
  const listed = [
    place(fadt({ dsdtAddress, pmBase, legacyDevices, i8042, cmosRtc })),
    place(madt({ cpus: options.cpus, pitGsi: devices.pitGsi ?? DEFAULT_PIT_GSI })),
    ...(pci ? [place(mcfg([{ base: pci.ecam.base, segment: 0, firstBus: 0, lastBus: pci.ecam.size / ECAM_BUS_SIZE - 1 }]))] : []),
  ];
  const xsdtAddress = place(xsdt(listed));
  const last = tables[tables.length - 1];
  if (tables[0].address < rsdpAddress + RSDP_SIZE && rsdpAddress < last.address + last.length) {
    throw new Error(`the ACPI tables at 0x${tables[0].address.toString(16)}-0x${(last.address + last.length).toString(16)} overlap the RSDP at 0x${rsdpAddress.toString(16)}`);
  }

  if (vmGenId && rsdpAddress <= vmGenId.address && vmGenId.address < last.address + last.length) {
    throw new Error(`the ACPI tables reach 0x${(last.address + last.length).toString(16)}, past the VM generation ID at 0x${vmGenId.address.toString(16)}`);
  }
  memory.write(rsdpAddress, rsdp(xsdtAddress));
  return { rsdp: rsdpAddress, end: Math.max(last.address + last.length, rsdpAddress + RSDP_SIZE), tables };
}
