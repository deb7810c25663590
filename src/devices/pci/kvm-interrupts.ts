/**
 * A PCI function's interrupts wired to KVM: each MSI-X vector is an eventfd
 * bound with KVM_IRQFD to its own GSI, whose MSI route GsiRoutes keeps; the
 * INTx pin is an I/O APIC input driven with KVM_IRQ_LINE.
 */
import { signalEventfd } from '../../kvm/libc.js';
import { VmFd } from '../../kvm/vm.js';
import { GsiRoutes } from './gsi-routes.js';
import type { FunctionInterrupts, MsiMessage } from './interrupts.js';
import type { PciFunctionWiring } from './wiring.js';

/** The VM calls made here. */
export type InterruptVm = Pick<VmFd, 'setGsiRouting' | 'irqLine'>;

export class KvmInterrupts implements FunctionInterrupts {
  private readonly routes: GsiRoutes;

  constructor(
    private readonly wiring: PciFunctionWiring,
    // Borrowed: the machine closes the VM fd.
    private readonly vm: InterruptVm = new VmFd(wiring.vmFd, 0),
  ) {
    this.routes = new GsiRoutes(wiring.routes, vm);
  }

  routeVector(vector: number, message: MsiMessage): void {
    this.routes.setMsi(this.wiring.vectors[vector].gsi, message);
  }

  signalVector(vector: number): void {
    signalEventfd(this.wiring.vectors[vector].eventfd);
  }

  vectorEventfd(vector: number): number {
    return this.wiring.vectors[vector].eventfd;
  }

  setIntx(level: boolean): void {
    this.vm.irqLine(this.wiring.intxGsi, level);
  }
}
