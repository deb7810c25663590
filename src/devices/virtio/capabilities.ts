/**
 * The vendor-specific capabilities through which a virtio PCI device shows
 * its structures (virtio 1.2, 4.1.4): struct virtio_pci_cap says which
 * structure (cfg_type) lies where in which BAR, and some types add fields.
 */
import { CapabilityId } from '../pci/config-space.js';
import type { PciCapability } from '../pci/pci-device.js';

/** virtio_pci_cap.cfg_type */
export const CfgType = { COMMON: 1, NOTIFY: 2, ISR: 3, DEVICE: 4, PCI: 5 } as const;

/** Offsets in a virtio_pci_cap after its ID and next pointer. */
export const CapField = { BAR: 2, OFFSET: 6, LENGTH: 10, EXTRA: 14 } as const;

/** A virtio_pci_cap: which structure, where in which BAR; `extra` follows it. */
export function virtioCapability(cfgType: number, offset: number, length: number, extra: Uint8Array = new Uint8Array(0)): PciCapability {
  const body = new Uint8Array(CapField.EXTRA + extra.length);
  const v = new DataView(body.buffer);
  v.setUint8(0, 2 + body.length); // cap_len counts the ID and next pointer
  v.setUint8(1, cfgType);
  v.setUint8(CapField.BAR, 0);
  v.setUint32(CapField.OFFSET, offset, true);
  v.setUint32(CapField.LENGTH, length, true);
  body.set(extra, CapField.EXTRA);
  return { id: CapabilityId.VENDOR_SPECIFIC, body };
}

/** The four little-endian bytes of a 32-bit value. */
export function u32Bytes(n: number): Uint8Array {
  return new Uint8Array(new Uint32Array([n]).buffer);
}

/** PCI_CFG: bar, offset and length say where pci_cfg_data reaches; all four are the driver's to write. */
export function pciCfgCapability(): PciCapability {
  const cap = virtioCapability(CfgType.PCI, 0, 0, new Uint8Array(4));
  const writable = new Uint8Array(cap.body.length);
  writable[CapField.BAR] = 0xff;
  writable.fill(0xff, CapField.OFFSET, cap.body.length);
  return { ...cap, writable };
}
