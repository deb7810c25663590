/**
 * A KVM VM file descriptor: guest memory slots, the in-kernel irqchip and
 * PIT, eventfd wiring (ioeventfd, irqfd), MSI routing, and vCPU creation.
 */
import * as ioc from './ioctls.js';
import { addressOf, close, ioctlBuffer, ioctlValue } from './libc.js';
import * as s from './structs.js';

const KVM_IOEVENTFD_FLAG_DATAMATCH = 1 << 0;
const KVM_IOEVENTFD_FLAG_PIO = 1 << 1;
const KVM_IOEVENTFD_FLAG_DEASSIGN = 1 << 2;
const KVM_IRQFD_FLAG_DEASSIGN = 1 << 0;
const KVM_PIT_SPEAKER_DUMMY = 1;
/** A memory slot flag: KVM logs the pages the guest writes (KVM_GET_DIRTY_LOG). */
export const KVM_MEM_LOG_DIRTY_PAGES = 1;
export const KVM_IRQ_ROUTING_IRQCHIP = 1;
export const KVM_IRQ_ROUTING_MSI = 2;

export interface IoEventFd {
  fd: number;
  addr: number;
  len: 0 | 1 | 2 | 4 | 8;
  pio?: boolean;
  datamatch?: bigint;
}

export interface IrqRoute {
  gsi: number;
  type: number;
  /** The routing entry's union, as 8 u32 words (irqchip: [chip, pin]; msi: [addr_lo, addr_hi, data]). */
  u: number[];
}

export class VmFd {
  private closed = false;
  constructor(
    readonly fd: number,
    readonly vcpuMmapSize: number,
  ) {}

  setUserMemoryRegion(slot: number, gpa: number, size: number, hostAddress: bigint, flags = 0): void {
    const buf = s.kvmUserspaceMemoryRegion.encode({
      slot, flags, guest_phys_addr: BigInt(gpa), memory_size: BigInt(size), userspace_addr: hostAddress,
    });
    ioctlBuffer(this.fd, ioc.KVM_SET_USER_MEMORY_REGION, buf, 'KVM_SET_USER_MEMORY_REGION');
  }

  /**
   * The pages of memory slot `slot` (of `pages` pages) the guest wrote since the last call, one bit
   * per page; the slot must have KVM_MEM_LOG_DIRTY_PAGES. KVM clears the log as it reads it.
   */
  getDirtyLog(slot: number, pages: number): Uint8Array {
    const bitmap = new Uint8Array(Math.ceil(pages / 64) * 8);
    const arg = new Uint8Array(16);
    const v = new DataView(arg.buffer);
    v.setUint32(0, slot, true);
    v.setBigUint64(8, addressOf(bitmap), true);
    ioctlBuffer(this.fd, ioc.KVM_GET_DIRTY_LOG, arg, 'KVM_GET_DIRTY_LOG');
    return bitmap;
  }

  /** Three pages Intel VMX needs for real-mode emulation, outside RAM. */
  setTssAddr(gpa: number): void {
    ioctlValue(this.fd, ioc.KVM_SET_TSS_ADDR, gpa, 'KVM_SET_TSS_ADDR');
  }

  setIdentityMapAddr(gpa: number): void {
    const buf = new Uint8Array(8);
    new DataView(buf.buffer).setBigUint64(0, BigInt(gpa), true);
    ioctlBuffer(this.fd, ioc.KVM_SET_IDENTITY_MAP_ADDR, buf, 'KVM_SET_IDENTITY_MAP_ADDR');
  }

  createIrqchip(): void {
    ioctlValue(this.fd, ioc.KVM_CREATE_IRQCHIP, 0, 'KVM_CREATE_IRQCHIP');
  }

  createPit2(): void {
    ioctlBuffer(this.fd, ioc.KVM_CREATE_PIT2, s.kvmPitConfig.encode({ flags: KVM_PIT_SPEAKER_DUMMY }), 'KVM_CREATE_PIT2');
  }

  irqLine(irq: number, level: boolean): void {
    ioctlBuffer(this.fd, ioc.KVM_IRQ_LINE, s.kvmIrqLevel.encode({ irq, level: level ? 1 : 0 }), 'KVM_IRQ_LINE');
  }

  ioeventfd(e: IoEventFd, deassign = false): void {
    const flags =
      (e.pio ? KVM_IOEVENTFD_FLAG_PIO : 0) |
      (e.datamatch !== undefined ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0) |
      (deassign ? KVM_IOEVENTFD_FLAG_DEASSIGN : 0);
    const buf = s.kvmIoeventfd.encode({ datamatch: e.datamatch ?? 0n, addr: BigInt(e.addr), len: e.len, fd: e.fd, flags });
    ioctlBuffer(this.fd, ioc.KVM_IOEVENTFD, buf, 'KVM_IOEVENTFD');
  }

  irqfd(fd: number, gsi: number, deassign = false): void {
    const buf = s.kvmIrqfd.encode({ fd, gsi, flags: deassign ? KVM_IRQFD_FLAG_DEASSIGN : 0 });
    ioctlBuffer(this.fd, ioc.KVM_IRQFD, buf, 'KVM_IRQFD');
  }

  setGsiRouting(routes: IrqRoute[]): void {
    const size = s.kvmIrqRoutingEntry.size;
    const buf = s.kvmIrqRoutingHeader.encode({ nr: routes.length }, s.kvmIrqRoutingHeader.alloc(routes.length * size));
    routes.forEach((r, i) => s.kvmIrqRoutingEntry.encode({ ...r, flags: 0, pad: 0 }, buf, s.kvmIrqRoutingHeader.size + i * size));
    ioctlBuffer(this.fd, ioc.KVM_SET_GSI_ROUTING, buf, 'KVM_SET_GSI_ROUTING');
  }

  /** The in-kernel PIC (chips 0 and 1) or I/O APIC (chip 2), as KVM keeps it. */
  getIrqchip(chipId: number): Uint8Array {
    const buf = s.kvmIrqchip.encode({ chip_id: chipId, pad: 0, chip: new Uint8Array(512) });
    ioctlBuffer(this.fd, ioc.KVM_GET_IRQCHIP, buf, 'KVM_GET_IRQCHIP');
    return s.kvmIrqchip.decode(buf).chip;
  }
  setIrqchip(chipId: number, chip: Uint8Array): void {
    ioctlBuffer(this.fd, ioc.KVM_SET_IRQCHIP, s.kvmIrqchip.encode({ chip_id: chipId, pad: 0, chip }), 'KVM_SET_IRQCHIP');
  }

  getPit2(): s.KvmPitState2 {
    const buf = s.kvmPitState2.alloc();
    ioctlBuffer(this.fd, ioc.KVM_GET_PIT2, buf, 'KVM_GET_PIT2');
    return s.kvmPitState2.decode(buf);
  }
  setPit2(state: s.KvmPitState2): void {
    ioctlBuffer(this.fd, ioc.KVM_SET_PIT2, s.kvmPitState2.encode(state), 'KVM_SET_PIT2');
  }

  /** kvmclock's time base. */
  getClock(): s.KvmClockData {
    const buf = s.kvmClockData.alloc();
    ioctlBuffer(this.fd, ioc.KVM_GET_CLOCK, buf, 'KVM_GET_CLOCK');
    return s.kvmClockData.decode(buf);
  }
  setClock(data: s.KvmClockData): void {
    ioctlBuffer(this.fd, ioc.KVM_SET_CLOCK, s.kvmClockData.encode(data), 'KVM_SET_CLOCK');
  }

  /** Creates vCPU `id` (its APIC id) and returns its fd. */
  createVcpu(id: number): number {
    return ioctlValue(this.fd, ioc.KVM_CREATE_VCPU, id, 'KVM_CREATE_VCPU');
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    close(this.fd);
  }
}
