/**
 * Where PCI lives in the machine, chosen by the VMM: the ECAM window, the
 * memory window BARs are placed in (both in the MMIO hole below 4 GiB), and
 * which I/O APIC inputs the slots' INTx pins reach.
 *
 *   0xc0000000-0xc0ffffff  left for other devices (--test-device 0xc0000000)
 *   0xc1000000-0xdfffffff  PCI memory window: BARs, in slot order
 *   0xe0000000-0xe00fffff  ECAM, bus 0
 *
 * I/O BARs (pci-testdev's) go in ports 0xc000-0xffff, where QEMU's
 * firmware puts them too, above every port a PC device of ours uses.
 */
export const PCI_ECAM_BASE = 0xe000_0000;
export const PCI_MMIO_WINDOW_BASE = 0xc100_0000;
export const PCI_MMIO_WINDOW_END = 0xe000_0000;
export const PCI_IO_WINDOW_BASE = 0xc000;
export const PCI_IO_WINDOW_END = 0x1_0000;
export const HOST_BRIDGE_SLOT = 0;

/** GSIs 16-23 are the I/O APIC inputs no ISA device uses. */
const FIRST_PCI_GSI = 16;
const PCI_GSIS = 8;

/** The GSI of `pin` (0 = INTA#) of `slot`: rotated by slot, as PCI-to-PCI bridges swizzle, so neighbours spread out. */
export function intxGsi(slot: number, pin: number): number {
  return FIRST_PCI_GSI + ((slot + pin) % PCI_GSIS);
}
