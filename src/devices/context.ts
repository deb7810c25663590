/**
 * What a device may ask of the machine around it. Devices run on the vCPU
 * thread that touched them, so these calls must not block.
 */
import type { GuestMemory } from '../memory/guest-memory.js';
import type { VmStop } from './vm-stop.js';

export interface DeviceContext {
  /** The vCPU whose access is being handled. */
  readonly vcpuId: number;
  /** Bytes for the VM's console (serial output). */
  console(bytes: Uint8Array): void;
  /** Drives an interrupt line of the in-kernel PIC/IOAPIC. */
  irq(line: number, level: boolean): void;
  /** Ends the VM with this outcome once the current exit is handled. */
  stop(outcome: VmStop): void;
  /** Guest RAM as this thread maps it, for a device that reads or writes it itself (fw_cfg's DMA). */
  readonly memory?: GuestMemory;
}
