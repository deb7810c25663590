/**
 * Where PCI lives in the machine beside its memory windows (ECAM and the
 * BAR window are in memory/layout.ts, the address map): the port window
 * for I/O BARs, the host bridge's slot, and which I/O APIC inputs the
 * slots' INTx pins reach.
 *
 * I/O BARs (pci-testdev's) go in ports 0xc000-0xffff, where QEMU's
 * firmware puts them too, above every port a PC device of ours uses.
 */
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
