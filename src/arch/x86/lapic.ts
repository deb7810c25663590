/**
 * Local APIC set-up a BIOS would do: LINT0 takes the 8259 PIC's output
 * (ExtINT), LINT1 takes NMIs, so legacy interrupts reach the boot CPU.
 */
const LVT_LINT0 = 0x350;
const LVT_LINT1 = 0x360;
const DELIVERY_MODE_MASK = 0x700;
const DELIVERY_EXTINT = 0x700;
const DELIVERY_NMI = 0x400;

function setDeliveryMode(regs: Uint8Array, offset: number, mode: number): void {
  const view = new DataView(regs.buffer, regs.byteOffset);
  view.setUint32(offset, (view.getUint32(offset, true) & ~DELIVERY_MODE_MASK) | mode, true);
}

/** Returns the LAPIC register page with LINT0 as ExtINT and LINT1 as NMI. */
export function withLegacyLints(regs: Uint8Array): Uint8Array {
  const out = regs.slice();
  setDeliveryMode(out, LVT_LINT0, DELIVERY_EXTINT);
  setDeliveryMode(out, LVT_LINT1, DELIVERY_NMI);
  return out;
}
