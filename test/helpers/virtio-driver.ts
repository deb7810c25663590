/**
 * Drives a virtio PCI device as a guest driver would, without a VM: config
 * space and BAR0 accesses go to the device's register file with its lock
 * held (as the bus does), the rings live in a GuestMemory over a plain
 * buffer, and a notification runs the device's backend right after the
 * access that kicked it (as its I/O thread would). Interrupts land in a
 * recording fake.
 */
import { DeviceState } from '../../src/devices/device-state.js';
import { CapabilityId, Command, Reg } from '../../src/devices/pci/config-space.js';
import type { FunctionInterrupts, MsiMessage } from '../../src/devices/pci/interrupts.js';
import { VirtioBackend } from '../../src/devices/virtio/backend.js';
import type { VirtioDevice } from '../../src/devices/virtio/device.js';
import { DeviceStatus } from '../../src/devices/virtio/device-status.js';
import { CfgType } from '../../src/devices/virtio/capabilities.js';
import { VirtioPciDevice } from '../../src/devices/virtio/pci-transport.js';
import { availRingSize, DESC_F_NEXT, DESCRIPTOR_SIZE, usedRingSize } from '../../src/devices/virtio/queue.js';
import { GuestMemory } from '../../src/memory/guest-memory.js';

export const TEST_BAR0 = 0xc100_0000;
export const TEST_INTX_GSI = 17;
export const VECTOR_EVENTFD_BASE = 1000;

/** Interrupts as the device raised them. */
export class RecordingInterrupts implements FunctionInterrupts {
  readonly routes: { vector: number; message: MsiMessage }[] = [];
  readonly signals: number[] = [];
  intx = false;
  intxChanges = 0;

  routeVector(vector: number, message: MsiMessage): void {
    this.routes.push({ vector, message });
  }
  signalVector(vector: number): void {
    this.signals.push(vector);
  }
  setIntx(level: boolean): void {
    this.intx = level;
    this.intxChanges++;
  }
  /** A made-up fd per vector, so tests can see which one a kernel data path would be given. */
  vectorEventfd(vector: number): number {
    return VECTOR_EVENTFD_BASE + vector;
  }
}

/** Guest RAM of `size` bytes at guest-physical `base`, inside a host buffer with `guard` bytes of 0xa5 either side. */
export function guardedMemory(base: number, size: number, guard = 4096) {
  const host = new Uint8Array(guard + size + guard);
  host.fill(0xa5, 0, guard);
  host.fill(0xa5, guard + size);
  const memory = new GuestMemory([{ gpa: base, bytes: host.subarray(guard, guard + size) }]);
  return {
    memory,
    /** Whether both guards still hold only 0xa5. */
    guardsIntact: () => host.subarray(0, guard).every((b) => b === 0xa5) && host.subarray(guard + size).every((b) => b === 0xa5),
  };
}

export interface Capability {
  offset: number;
  id: number;
  /** For virtio capabilities: cfg_type, bar, offset, length. */
  cfgType?: number;
  bar?: number;
  barOffset?: number;
  length?: number;
}

export interface QueueLayout {
  size: number;
  desc: number;
  avail: number;
  used: number;
}

/** A queue of `size` at `base`, laid out as Linux does: descriptors, available ring, used ring (4 KiB aligned). */
export function queueLayout(base: number, size: number): QueueLayout {
  const desc = base;
  const avail = desc + DESCRIPTOR_SIZE * size;
  const used = Math.ceil((avail + availRingSize(size)) / 4096) * 4096;
  return { size, desc, avail, used };
}

export interface Descriptor {
  addr: number | bigint;
  len: number;
  flags: number;
  next: number;
}

export class VirtioDriver {
  readonly interrupts = new RecordingInterrupts();
  readonly reports: string[] = [];
  readonly fn: VirtioPciDevice;
  readonly backend: VirtioBackend;
  private readonly kicks: number[] = [];
  /** How often the transport woke the I/O thread (VirtioPciOptions.wakeIoThread). */
  wakes = 0;
  private readonly found = new Map<number, Capability>();
  private readonly queues = new Map<number, QueueLayout & { availIdx: number; usedSeen: number; notifyAt?: number }>();

  constructor(
    readonly memory: GuestMemory,
    readonly device: VirtioDevice,
  ) {
    const state = new DeviceState(DeviceState.allocate(VirtioPciDevice.stateSize(device.info)));
    this.fn = new VirtioPciDevice(state, device.info, {
      bar0: TEST_BAR0, intxGsi: TEST_INTX_GSI, interrupts: this.interrupts, kick: (q) => this.kicks.push(q), wakeIoThread: () => this.wakes++,
    });
    this.backend = new VirtioBackend(this.fn, memory, device, (m) => this.reports.push(m));
  }

  // --- PCI configuration space

  configRead(offset: number, size: 1 | 2 | 4): number {
    const data = new Uint8Array(size);
    this.fn.state.locked(() => this.fn.configRead(offset, data));
    return data.reduce((v, b, i) => v + b * 2 ** (8 * i), 0);
  }

  configWrite(offset: number, size: 1 | 2 | 4, value: number): void {
    const data = new Uint8Array(size);
    for (let i = 0; i < size; i++) data[i] = Math.floor(value / 2 ** (8 * i)) & 0xff;
    this.fn.state.locked(() => this.fn.configWrite(offset, data));
    this.runKicks();
  }

  /** Follows the capability list from the capabilities pointer, as a guest's PCI code does. */
  capabilities(): Capability[] {
    const found: Capability[] = [];
    let at = this.configRead(Reg.CAPABILITIES, 1) & ~3;
    while (at !== 0 && found.length < 48) {
      const cap: Capability = { offset: at, id: this.configRead(at, 1) };
      if (cap.id === CapabilityId.VENDOR_SPECIFIC) {
        cap.cfgType = this.configRead(at + 3, 1);
        cap.bar = this.configRead(at + 4, 1);
        cap.barOffset = this.configRead(at + 8, 4);
        cap.length = this.configRead(at + 12, 4);
      }
      found.push(cap);
      at = this.configRead(at + 1, 1) & ~3;
    }
    return found;
  }

  /** The virtio capability of a type, found once, as a driver does at probe time. */
  virtioCapability(cfgType: number): Capability {
    let cap = this.found.get(cfgType);
    if (cap === undefined) {
      cap = this.capabilities().find((c) => c.cfgType === cfgType);
      if (cap === undefined) throw new Error(`no virtio capability of type ${cfgType}`);
      this.found.set(cfgType, cap);
    }
    return cap;
  }

  // --- BAR0, through the MMIO bus

  mmioRead(offset: number, size: 1 | 2 | 4): number {
    const data = new Uint8Array(size);
    this.fn.state.locked(() => this.fn.bar0.read(offset, data));
    this.runKicks();
    return data.reduce((v, b, i) => v + b * 2 ** (8 * i), 0);
  }

  mmioWrite(offset: number, size: 1 | 2 | 4, value: number): void {
    const data = new Uint8Array(size);
    for (let i = 0; i < size; i++) data[i] = Math.floor(value / 2 ** (8 * i)) & 0xff;
    this.fn.state.locked(() => this.fn.bar0.write(offset, data));
    this.runKicks();
  }

  /** What the I/O thread does when its eventfd fires. */
  private runKicks(): void {
    while (this.kicks.length > 0) this.backend.notify(this.kicks.shift()!);
  }

  private common(field: number): number {
    return this.virtioCapability(CfgType.COMMON).barOffset! + field;
  }

  readCommon(field: number, size: 1 | 2 | 4): number {
    return this.mmioRead(this.common(field), size);
  }

  writeCommon(field: number, size: 1 | 2 | 4, value: number): void {
    this.mmioWrite(this.common(field), size, value);
  }

  // --- The driver's start-up sequence (virtio 1.2, 3.1.1)

  /** Memory decoding and bus mastering on, as Linux's pci_enable_device and pci_set_master do. */
  enablePci(): void {
    this.configWrite(Reg.COMMAND, 2, Command.MEMORY | Command.BUS_MASTER);
  }

  get status(): number {
    return this.readCommon(0x14, 1);
  }

  set status(value: number) {
    this.writeCommon(0x14, 1, value);
  }

  reset(): void {
    this.status = 0;
    if (this.status !== 0) throw new Error('the device did not finish its reset');
    this.queues.clear();
  }

  deviceFeatures(): bigint {
    this.writeCommon(0x00, 4, 0);
    const low = this.readCommon(0x04, 4);
    this.writeCommon(0x00, 4, 1);
    return (BigInt(this.readCommon(0x04, 4)) << 32n) | BigInt(low);
  }

  /** ACKNOWLEDGE, DRIVER, the features, FEATURES_OK; returns whether the device kept FEATURES_OK. */
  negotiate(features: bigint): boolean {
    this.status = DeviceStatus.ACKNOWLEDGE;
    this.status = DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER;
    this.writeCommon(0x08, 4, 0);
    this.writeCommon(0x0c, 4, Number(features & 0xffff_ffffn));
    this.writeCommon(0x08, 4, 1);
    this.writeCommon(0x0c, 4, Number(features >> 32n));
    this.status = DeviceStatus.ACKNOWLEDGE | DeviceStatus.DRIVER | DeviceStatus.FEATURES_OK;
    return (this.status & DeviceStatus.FEATURES_OK) !== 0;
  }

  /** Writes the queue's size and addresses, zeroes its rings and enables it. */
  setUpQueue(q: number, layout: QueueLayout, vector?: number): void {
    this.writeCommon(0x16, 2, q);
    this.writeCommon(0x18, 2, layout.size);
    if (vector !== undefined) this.writeCommon(0x1a, 2, vector);
    for (const [field, address] of [[0x20, layout.desc], [0x28, layout.avail], [0x30, layout.used]] as const) {
      this.writeCommon(field, 4, address % 2 ** 32);
      this.writeCommon(field + 4, 4, Math.floor(address / 2 ** 32));
    }
    this.memory.fill(layout.avail, availRingSize(layout.size));
    this.memory.fill(layout.used, usedRingSize(layout.size));
    this.writeCommon(0x1c, 2, 1);
    this.queues.set(q, { ...layout, availIdx: 0, usedSeen: 0 });
  }

  driverOk(): void {
    this.status = this.status | DeviceStatus.DRIVER_OK;
  }

  /** MSI-X on: every vector gets a message and is unmasked, then the enable bit is set. */
  enableMsix(vectors: number): void {
    const msix = this.capabilities().find((c) => c.id === CapabilityId.MSIX)!;
    const table = this.configRead(msix.offset + 4, 4) & ~7;
    for (let v = 0; v < vectors; v++) {
      this.mmioWrite(table + 16 * v, 4, 0xfee0_0000);
      this.mmioWrite(table + 16 * v + 4, 4, 0);
      this.mmioWrite(table + 16 * v + 8, 4, 0x40 + v);
      this.mmioWrite(table + 16 * v + 12, 4, 0);
    }
    this.configWrite(msix.offset + 2, 2, 0x8000 | (vectors - 1));
  }

  // --- Rings

  private queue(q: number) {
    const queue = this.queues.get(q);
    if (queue === undefined) throw new Error(`queue ${q} is not set up`);
    return queue;
  }

  writeDescriptor(q: number, index: number, d: Descriptor): void {
    writeDescriptorAt(this.memory, this.queue(q).desc + DESCRIPTOR_SIZE * index, d);
  }

  /** Puts `head` in the available ring and publishes it. */
  makeAvailable(q: number, head: number): void {
    const queue = this.queue(q);
    this.memory.writeU16(queue.avail + 4 + 2 * (queue.availIdx % queue.size), head);
    queue.availIdx = (queue.availIdx + 1) & 0xffff;
    this.memory.writeU16(queue.avail + 2, queue.availIdx);
  }

  /** Writes avail->idx as given, whatever was put in the ring. */
  setAvailIndex(q: number, index: number): void {
    this.queue(q).availIdx = index & 0xffff;
    this.memory.writeU16(this.queue(q).avail + 2, index & 0xffff);
  }

  /** A chain of buffers in descriptors 0..n-1 of queue q, made available. */
  offerChain(q: number, buffers: { addr: number; len: number; flags: number }[], first = 0): number {
    buffers.forEach((b, i) => {
      const last = i === buffers.length - 1;
      this.writeDescriptor(q, first + i, { addr: b.addr, len: b.len, flags: b.flags | (last ? 0 : DESC_F_NEXT), next: first + i + 1 });
    });
    this.makeAvailable(q, first);
    return first;
  }

  /** Writes the queue's notify register, at notify base + queue_notify_off * multiplier. */
  notify(q: number): void {
    const queue = this.queue(q);
    if (queue.notifyAt === undefined) {
      const cap = this.virtioCapability(CfgType.NOTIFY);
      const multiplier = this.configRead(cap.offset + 16, 4);
      this.writeCommon(0x16, 2, q);
      queue.notifyAt = cap.barOffset! + this.readCommon(0x1e, 2) * multiplier;
    }
    this.mmioWrite(queue.notifyAt, 2, q);
  }

  /** The used-ring entries the device added since the last call. */
  takeUsed(q: number): { id: number; len: number }[] {
    const queue = this.queue(q);
    const idx = this.memory.readU16(queue.used + 2);
    const out: { id: number; len: number }[] = [];
    for (; queue.usedSeen !== idx; queue.usedSeen = (queue.usedSeen + 1) & 0xffff) {
      const at = queue.used + 4 + 8 * (queue.usedSeen % queue.size);
      out.push({ id: this.memory.readU32(at), len: this.memory.readU32(at + 4) });
    }
    return out;
  }

  /** Sets used_event (EVENT_IDX): interrupt me once the used index passes `index`. */
  setUsedEvent(q: number, index: number): void {
    const queue = this.queue(q);
    this.memory.writeU16(queue.avail + 4 + 2 * queue.size, index);
  }

  availEvent(q: number): number {
    const queue = this.queue(q);
    return this.memory.readU16(queue.used + 4 + 8 * queue.size);
  }
}

export function writeDescriptorAt(memory: GuestMemory, at: number, d: Descriptor): void {
  memory.writeU64(at, BigInt(d.addr));
  memory.writeU32(at + 8, d.len);
  memory.writeU16(at + 12, d.flags);
  memory.writeU16(at + 14, d.next);
}
