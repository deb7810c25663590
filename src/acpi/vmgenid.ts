/**
 * The VM generation ID in the DSDT (devices/legacy/vmgenid.ts says what it
 * is): a device with the IDs Linux's vmgenid driver and Windows look for,
 * whose ADDR names where the 16 bytes are, and a Generic Event Device
 * (ACPI 6.5, 5.6.9) on the interrupt the VMM raises after a restore, whose
 * _EVT notifies it. Linux's GED driver is built in whenever ACPI is.
 */
import * as aml from './aml.js';
import { irq, resourceTemplate } from './resource-template.js';

/** Linux matches this _HID (drivers/virt/vmgenid.c); Windows the _CID, which Microsoft's specification gives. */
const VMGENID_HID = 'VMGENCTR';
const VMGENID_CID = 'VM_Gen_Counter';
const GENERIC_EVENT_DEVICE_HID = 'ACPI0013';
/** "Device-specific": the generation ID changed. */
const NOTIFY_GENERATION_CHANGED = 0x80;

export interface DsdtVmGenId {
  /** Guest-physical address of the 16 bytes. */
  address: number;
  /** The interrupt (an ISA one, edge-triggered, active high) the VMM raises when the ID changes. */
  gsi: number;
}

/** The two devices, for the DSDT's \_SB scope. */
export function vmGenIdDevices({ address, gsi }: DsdtVmGenId): aml.Aml[] {
  return [
    aml.device('VGEN', [
      aml.name('_HID', aml.string(VMGENID_HID)),
      aml.name('_CID', aml.string(VMGENID_CID)),
      aml.name('_DDN', aml.string(VMGENID_CID)),
      aml.name('ADDR', aml.pkg([aml.integer(address % 2 ** 32), aml.integer(Math.floor(address / 2 ** 32))])),
    ]),
    aml.device('GED', [
      aml.name('_HID', aml.string(GENERIC_EVENT_DEVICE_HID)),
      aml.name('_UID', aml.integer(0)),
      aml.name('_CRS', resourceTemplate([irq([gsi], { trigger: 'edge', polarity: 'high' })])),
      // Arg0 is the interrupt that fired; the GED has only the one.
      aml.method('_EVT', { args: 1 }, [aml.notify('\\_SB.VGEN', NOTIFY_GENERATION_CHANGED)]),
    ]),
  ];
}
