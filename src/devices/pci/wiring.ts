/**
 * What the VMM gives a PCI function at build time (src/vmm/pci-setup.ts):
 * its slot, where its BAR is, its interrupts and its notification
 * eventfds. Plain numbers and shared buffers, so it crosses to every thread.
 */
export interface PciFunctionWiring {
  /** Device number on bus 0; the function number is 0. */
  slot: number;
  /** Guest-physical address of BAR0, a 32-bit memory BAR. */
  bar0: number;
  /** The I/O APIC input INTA# of this slot reaches (the DSDT's _PRT says the same). */
  intxGsi: number;
  /** Per MSI-X vector: its GSI, and the eventfd bound to that GSI with KVM_IRQFD. */
  vectors: { gsi: number; eventfd: number }[];
  /** Per virtqueue: the eventfd KVM signals (KVM_IOEVENTFD) when the guest writes the queue's notify address. */
  queueEventfds: number[];
  /** Signalled when the I/O thread should look at the transport again (VirtioPciOptions.wakeIoThread). */
  controlEventfd: number;
  /** The VM's fd, for KVM_SET_GSI_ROUTING and KVM_IRQ_LINE; the machine owns it. */
  vmFd: number;
  /** The VM's MSI routes (GsiRoutes), one buffer per machine. */
  routes: SharedArrayBuffer;
}
