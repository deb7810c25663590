/**
 * The DSDT: the guest's ACPI namespace, in AML. It holds what the OS cannot
 * find by probing: the sleep type for power-off, and the platform devices
 * with their ports and interrupts. As ASL:
 *
 *   Name (_S5, Package () { 5, 0, 0, 0 })
 *   Scope (\_SB) {
 *     Device (COM1) { _HID PNP0501, _UID 0, _CRS { IO 0x3f8/8, IRQ 4 edge high } }
 *     ...one per serial port
 *     Device (KBD)  { _HID PNP0303, _CRS { IO 0x60/1, IO 0x64/1, IRQ 1 } }  if there is an i8042
 *     Device (RTC)  { _HID PNP0B00, _CRS { IO 0x70/2 } }                    if there is a CMOS RTC
 *     Device (PMRS) { _HID PNP0C02, _UID 0, _CRS { IO 0x600/4 } }
 *     Device (PCI0) { _HID PNP0A08, _CID PNP0A03, _SEG 0, _BBN 0, _UID 0,      if there is PCI
 *                     _CRS { bus 0, IO 0xcf8/8, memory window for BARs },
 *                     _PRT { per slot and pin: its GSI } }
 *     Device (ECAM) { _HID PNP0C02, _UID 1, _CRS { memory: the ECAM window } }  if there is PCI
 *   }
 *
 * A hardware-reduced platform has no legacy PIC, so Linux sets up an ISA
 * interrupt only for a device that names it here. Devices go under \_SB,
 * where a PCI root bridge (PNP0A08) will join them.
 */
import { ACPI_PM_SIZE, SLP_TYP_S5 } from '../devices/legacy/acpi-pm.js';
import { RTC_BASE, RTC_SIZE } from '../devices/legacy/cmos-rtc.js';
import { COMMAND_PORT, DATA_PORT, I8042_BASE, KEYBOARD_IRQ } from '../devices/legacy/i8042.js';
import * as aml from './aml.js';
import { dwordMemoryWindow, ioPorts, irq, memory32Fixed, resourceTemplate, wordBusNumber } from './resource-template.js';
import { systemTable } from './table.js';
import { vmGenIdDevices, type DsdtVmGenId } from './vmgenid.js';

/** Revision 2: AML integers are 64 bits wide. */
const DSDT_REVISION = 2;
const UART_16550_HID = 'PNP0501';
const PS2_KEYBOARD_CONTROLLER_HID = 'PNP0303';
const CMOS_RTC_HID = 'PNP0B00';
const MOTHERBOARD_RESOURCES_HID = 'PNP0C02';
const PCI_EXPRESS_ROOT_BRIDGE_HID = 'PNP0A08';
const PCI_ROOT_BRIDGE_HID = 'PNP0A03';
const PCI_CONFIG_PORTS = 0xcf8;
const PCI_CONFIG_PORTS_SIZE = 8;
/** _PRT addresses a whole slot: device number in the high word, 0xFFFF for "any function". */
const ANY_FUNCTION = 0xffff;
const UART_PORTS = 8;

const edgeHigh = { trigger: 'edge', polarity: 'high' } as const;

/** A 16550 UART: its first I/O port and its ISA interrupt. */
export interface IsaSerialPort {
  base: number;
  irq: number;
}

export interface DsdtDevices {
  serialPorts: readonly IsaSerialPort[];
  /** A PS/2 keyboard controller at 0x60/0x64. */
  i8042: boolean;
  /** A CMOS RTC at 0x70. */
  cmosRtc: boolean;
  /** Port base of the acpi-pm device, claimed here so nothing else is put there. */
  pmBase: number;
  /** A PCI root bridge for bus 0 of segment 0. */
  pci?: DsdtPci;
  /** The VM generation ID and its event device. */
  vmGenId?: DsdtVmGenId;
}

export interface DsdtPci {
  /** The ECAM window, claimed as motherboard resources: Linux uses the MCFG only for a window claimed so. */
  ecam: { base: number; size: number };
  /** The memory window the bridge passes on, where the BARs are. */
  window: { base: number; size: number };
  /** Where each interrupt pin of each slot with a device goes: its I/O APIC input. */
  routes: readonly PciIntxRoute[];
}

export interface PciIntxRoute {
  slot: number;
  /** 0 for INTA# to 3 for INTD#. */
  pin: number;
  gsi: number;
}

function serialPort(index: number, port: IsaSerialPort): aml.Aml {
  return aml.device(`COM${index + 1}`, [
    aml.name('_HID', aml.eisaId(UART_16550_HID)),
    aml.name('_UID', aml.integer(index)),
    aml.name('_CRS', resourceTemplate([ioPorts(port.base, UART_PORTS), irq([port.irq], edgeHigh)])),
  ]);
}

/** Only the keyboard: with no PS/2 mouse described, Linux leaves the empty AUX port alone. */
function keyboardController(): aml.Aml {
  return aml.device('KBD', [
    aml.name('_HID', aml.eisaId(PS2_KEYBOARD_CONTROLLER_HID)),
    aml.name('_CRS', resourceTemplate([ioPorts(I8042_BASE + DATA_PORT, 1), ioPorts(I8042_BASE + COMMAND_PORT, 1), irq([KEYBOARD_IRQ], edgeHigh)])),
  ]);
}

/** No IRQ 8: the clock raises no interrupts. */
function cmosRtc(): aml.Aml {
  return aml.device('RTC', [aml.name('_HID', aml.eisaId(CMOS_RTC_HID)), aml.name('_CRS', resourceTemplate([ioPorts(RTC_BASE, RTC_SIZE)]))]);
}

function pmRegisters(pmBase: number): aml.Aml {
  return aml.device('PMRS', [
    aml.name('_HID', aml.eisaId(MOTHERBOARD_RESOURCES_HID)),
    aml.name('_UID', aml.integer(0)),
    aml.name('_CRS', resourceTemplate([ioPorts(pmBase, ACPI_PM_SIZE)])),
  ]);
}

/** Bus 0 behind a PCI Express root bridge, decoding config ports 0xCF8-0xCFF and the BAR window. */
function pciRootBridge(pci: DsdtPci): aml.Aml {
  const routes = pci.routes.map(({ slot, pin, gsi }) =>
    aml.pkg([aml.integer(((slot << 16) | ANY_FUNCTION) >>> 0), aml.integer(pin), aml.integer(0), aml.integer(gsi)]),
  );
  return aml.device('PCI0', [
    aml.name('_HID', aml.eisaId(PCI_EXPRESS_ROOT_BRIDGE_HID)),
    aml.name('_CID', aml.eisaId(PCI_ROOT_BRIDGE_HID)),
    aml.name('_SEG', aml.integer(0)),
    aml.name('_BBN', aml.integer(0)),
    aml.name('_UID', aml.integer(0)),
    aml.name('_CRS', resourceTemplate([
      wordBusNumber(0, 0),
      ioPorts(PCI_CONFIG_PORTS, PCI_CONFIG_PORTS_SIZE),
      dwordMemoryWindow(pci.window.base, pci.window.size),
    ])),
    // A GSI in the fourth element, with no link device in the third: Linux takes it as level-triggered, active-low.
    aml.name('_PRT', aml.pkg(routes)),
  ]);
}

function ecamResources(ecam: DsdtPci['ecam']): aml.Aml {
  return aml.device('ECAM', [
    aml.name('_HID', aml.eisaId(MOTHERBOARD_RESOURCES_HID)),
    aml.name('_UID', aml.integer(1)),
    aml.name('_CRS', resourceTemplate([memory32Fixed(ecam.base, ecam.size)])),
  ]);
}

/** The AML of the DSDT's definition block (what follows the table header). */
export function dsdtAml(devices: DsdtDevices): Uint8Array {
  if (devices.serialPorts.length > 9) throw new Error('the DSDT names serial ports COM1 to COM9');
  return aml.concat([
    // SLP_TYP for the sleep control register; the other three values are unused here.
    aml.name('_S5', aml.pkg([aml.integer(SLP_TYP_S5), aml.integer(0), aml.integer(0), aml.integer(0)])),
    // '_SB', not '\_SB': the same name at the root, and the shorter, as iasl emits it.
    aml.scope('_SB', [
      ...devices.serialPorts.map((port, i) => serialPort(i, port)),
      ...(devices.i8042 ? [keyboardController()] : []),
      ...(devices.cmosRtc ? [cmosRtc()] : []),
      pmRegisters(devices.pmBase),
      ...(devices.pci ? [pciRootBridge(devices.pci), ecamResources(devices.pci.ecam)] : []),
      ...(devices.vmGenId ? vmGenIdDevices(devices.vmGenId) : []),
    ]),
  ]);
}

export function dsdt(devices: DsdtDevices): Uint8Array {
  return systemTable('DSDT', DSDT_REVISION, dsdtAml(devices));
}
