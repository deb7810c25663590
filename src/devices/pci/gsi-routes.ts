/**
 * The VM's GSI routing table. KVM_SET_GSI_ROUTING replaces the table whole,
 * so every change sends all of it: KVM's default routes for GSIs 0-23 (the
 * PICs and the I/O APIC, which the in-kernel PIT and KVM_IRQ_LINE go
 * through) and one MSI route per programmed MSI-X vector, from GSI 24 on.
 *
 * The MSI routes live in shared state so any thread may change one: a vCPU
 * thread when the guest programs a vector. The lock orders the ioctls.
 */
import { KVM_IRQ_ROUTING_IRQCHIP, KVM_IRQ_ROUTING_MSI, type IrqRoute, type VmFd } from '../../kvm/vm.js';
import { DeviceState } from '../device-state.js';
import type { MsiMessage } from './interrupts.js';

export const FIRST_MSI_GSI = 24;
export const MAX_MSI_ROUTES = 256;
/** KVM's IOAPIC has 24 inputs; GSIs 0-15 also reach the PICs. */
const IOAPIC_PINS = 24;
const PIC_INPUTS = 16;
const KVM_IRQCHIP_PIC_MASTER = 0;
const KVM_IRQCHIP_PIC_SLAVE = 1;
const KVM_IRQCHIP_IOAPIC = 2;

/** The part of a VmFd the table needs. */
export type RoutingVm = Pick<VmFd, 'setGsiRouting'>;

/** Per MSI route: present, address low, address high, data (u32 each). */
const ENTRY = 16;

/** KVM's default routing (virt/kvm/irqchip.c, arch/x86/kvm/irq_comm.c): GSI n to IOAPIC pin n, and to the PICs below 16. */
export function irqchipRoutes(): IrqRoute[] {
  const routes: IrqRoute[] = [];
  for (let gsi = 0; gsi < IOAPIC_PINS; gsi++) {
    routes.push({ gsi, type: KVM_IRQ_ROUTING_IRQCHIP, u: [KVM_IRQCHIP_IOAPIC, gsi] });
    if (gsi < PIC_INPUTS) {
      routes.push({ gsi, type: KVM_IRQ_ROUTING_IRQCHIP, u: [gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE, gsi % 8] });
    }
  }
  return routes;
}

export class GsiRoutes {
  /** The MSI routes (a snapshot keeps them). */
  readonly state: DeviceState;

  static allocate(): SharedArrayBuffer {
    return DeviceState.allocate(MAX_MSI_ROUTES * ENTRY);
  }

  constructor(
    buffer: SharedArrayBuffer,
    private readonly vm: RoutingVm,
  ) {
    this.state = new DeviceState(buffer);
  }

  /** Points MSI GSI `gsi` at `message`; a no-op when it already is. */
  setMsi(gsi: number, message: MsiMessage): void {
    const slot = gsi - FIRST_MSI_GSI;
    if (!Number.isInteger(slot) || slot < 0 || slot >= MAX_MSI_ROUTES) throw new Error(`GSI ${gsi} is not an MSI GSI (${FIRST_MSI_GSI}-${FIRST_MSI_GSI + MAX_MSI_ROUTES - 1})`);
    this.state.locked(() => {
      const v = this.state.view;
      const at = slot * ENTRY;
      const same =
        v.getUint32(at, true) === 1 &&
        v.getUint32(at + 4, true) === message.addressLo >>> 0 &&
        v.getUint32(at + 8, true) === message.addressHi >>> 0 &&
        v.getUint32(at + 12, true) === message.data >>> 0;
      if (same) return;
      v.setUint32(at, 1, true);
      v.setUint32(at + 4, message.addressLo, true);
      v.setUint32(at + 8, message.addressHi, true);
      v.setUint32(at + 12, message.data, true);
      this.vm.setGsiRouting([...irqchipRoutes(), ...this.msiRoutes()]);
    });
  }

  /** Sends the table as the state has it: after the state was put back from a snapshot. */
  install(): void {
    this.state.locked(() => this.vm.setGsiRouting([...irqchipRoutes(), ...this.msiRoutes()]));
  }

  private msiRoutes(): IrqRoute[] {
    const v = this.state.view;
    const routes: IrqRoute[] = [];
    for (let slot = 0; slot < MAX_MSI_ROUTES; slot++) {
      const at = slot * ENTRY;
      if (v.getUint32(at, true) !== 1) continue;
      routes.push({
        gsi: FIRST_MSI_GSI + slot, type: KVM_IRQ_ROUTING_MSI,
        u: [v.getUint32(at + 4, true), v.getUint32(at + 8, true), v.getUint32(at + 12, true)],
      });
    }
    return routes;
  }
}
