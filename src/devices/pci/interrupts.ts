/**
 * What a PCI function's interrupts go through: MSI-X vectors (each a GSI
 * whose route carries the guest's message) and the INTx pin. The VMM wires
 * them to KVM (kvm-interrupts.ts); tests wire them to fakes.
 */

/** An MSI message as the guest programs it into an MSI-X table entry. */
export interface MsiMessage {
  addressLo: number;
  addressHi: number;
  data: number;
}

export interface FunctionInterrupts {
  /** Makes vector `vector` deliver `message` from now on. */
  routeVector(vector: number, message: MsiMessage): void;
  /** Sends vector `vector` (its route is in place). */
  signalVector(vector: number): void;
  /** Drives the INTx pin. */
  setIntx(level: boolean): void;
  /** The eventfd that sends vector `vector` (KVM_IRQFD), for a kernel data path that signals it itself. */
  vectorEventfd?(vector: number): number;
}
