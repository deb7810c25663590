/**
 * The VM generation ID (Microsoft's "Virtual Machine Generation ID", which
 * Linux's vmgenid driver and Windows read): 16 random bytes in guest memory
 * that change whenever the VM may have been duplicated, so that a clone
 * restored from a snapshot reseeds its random number generators instead of
 * repeating its original's, as Firecracker does for clones.
 *
 * The ACPI tables describe it (acpi/vmgenid.ts): where the bytes are, and a
 * Generic Event Device whose interrupt tells the guest to read them again.
 * It has no registers: nothing on a bus.
 */
import { randomBytes } from 'node:crypto';
import type { GuestMemory } from '../../memory/guest-memory.js';
import { VMGENID_ADDRESS } from '../../memory/layout.js';

export { VMGENID_ADDRESS };
export const VMGENID_SIZE = 16;
/** An ISA interrupt no other device uses (IRQ 5, LPT2 on a PC): the Generic Event Device's. */
export const VMGENID_GSI = 5;

/** A fresh generation ID in guest memory (at boot, and for each restored machine). */
export function writeGenerationId(memory: GuestMemory): void {
  memory.write(VMGENID_ADDRESS, randomBytes(VMGENID_SIZE));
}

/**
 * A restored machine: a new ID, then an edge on the Generic Event Device's
 * interrupt, which the guest's ACPI turns into a notification of the
 * generation ID device. Called once the interrupt controllers have their saved state.
 */
export function newGeneration(memory: GuestMemory, vm: { irqLine(irq: number, level: boolean): void }): void {
  writeGenerationId(memory);
  vm.irqLine(VMGENID_GSI, true);
  vm.irqLine(VMGENID_GSI, false);
}
