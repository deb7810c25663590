/**
 * Virtio over PCI, modern interface only (virtio 1.2, 4.1): vendor 0x1AF4,
 * device 0x1040 + the device ID, revision 1, and vendor-specific
 * capabilities that point into one memory BAR:
 *
 *   BAR0 0x0000  common configuration (COMMON_CFG)
 *        0x0800  device-specific configuration (DEVICE_CFG), read-only, for a device that has one
 *        0x1000  ISR status (ISR_CFG): read to clear, lowers INTx
 *        0x2000  notifications (NOTIFY_CFG): queue q at 0x2000 + 4q
 *        0x3000  MSI-X table, one vector per queue and one for configuration changes
 *        0x3800  MSI-X pending bits
 *
 * plus the PCI configuration access capability (PCI_CFG), a window into
 * the BAR through config space.
 *
 * This object is the function's register file, on every thread that
 * touches it; the queues are served elsewhere (VirtioBackend, on the
 * device's I/O thread) and a notification only kicks that thread. Every
 * method runs with the function's state lock held.
 */
import type { BusDevice } from '../bus.js';
import type { DeviceState } from '../device-state.js';
import { Command, INTA, Reg } from '../pci/config-space.js';
import type { FunctionInterrupts } from '../pci/interrupts.js';
import { Msix, msixCapability, msixStateSize } from '../pci/msix.js';
import { PCI_DEVICE_STATE_SIZE, PciDevice } from '../pci/pci-device.js';
import { CapField, CfgType, pciCfgCapability, u32Bytes, virtioCapability } from './capabilities.js';
import { COMMON_CONFIG_SIZE, CommonConfig } from './common-config.js';
import type { VirtioDeviceInfo } from './device.js';
import { DeviceStatus } from './device-status.js';
import { Feature, TRANSPORT_FEATURES } from './features.js';
import { TransportState, transportStateSize, type QueueServed } from './transport-state.js';

export const VIRTIO_VENDOR_ID = 0x1af4;
export const VIRTIO_MODERN_DEVICE_ID_BASE = 0x1040;
const MODERN_REVISION = 1;

export const Bar0 = {
  COMMON: 0x0000,
  DEVICE: 0x0800,
  ISR: 0x1000,
  ISR_SIZE: 4,
  NOTIFY: 0x2000,
  MSIX_TABLE: 0x3000,
  MSIX_PBA: 0x3800,
  SIZE: 0x4000,
} as const;
/** Each queue's notify address is NOTIFY + queue_notify_off (the queue index) * this. */
export const NOTIFY_OFF_MULTIPLIER = 4;

/** Where in the capability list (below) MSI-X and PCI_CFG are. */
const MSIX_CAPABILITY = 0;
const PCI_CFG_CAPABILITY = 4;

/** ISR bits. */
const ISR_QUEUE = 1;
const ISR_CONFIG = 2;

export interface VirtioPciOptions {
  /** Where the VMM put BAR0. */
  bar0: number;
  /** The GSI INTA# reaches, for the interrupt line register. */
  intxGsi: number;
  interrupts: FunctionInterrupts;
  /** Wakes whoever serves queue `queue` (the I/O thread's eventfd). */
  kick(queue: number): void;
  /**
   * Wakes the I/O thread to look at the transport again: the driver asked
   * for a reset while the queues are in use (the thread finishes it), or
   * changed the MSI-X table (a kernel data path may signal vectors itself).
   */
  wakeIoThread(): void;
}

export class VirtioPciDevice extends PciDevice {
  readonly transport: TransportState;
  readonly vectors: number;
  readonly offeredFeatures: bigint;
  private readonly msix: Msix;
  private readonly common: CommonConfig;
  /** Config-space offset of the PCI_CFG capability. */
  private readonly pciCfg: number;
  /** The device-specific configuration (empty when the device has none). */
  private readonly deviceConfig: Uint8Array;

  /** Shared state: PCI config space, transport registers, MSI-X table and pending bits. */
  static stateSize(info: Pick<VirtioDeviceInfo, 'queueSizes'>): number {
    return PCI_DEVICE_STATE_SIZE + align8(transportStateSize(info.queueSizes.length)) + msixStateSize(info.queueSizes.length + 1);
  }

  /** What each queue of the function whose state is `state` has served, read from any thread (for metrics). */
  static served(state: DeviceState, queueSizes: readonly number[]): QueueServed[] {
    const view = new DataView(state.buffer, state.bytes.byteOffset + PCI_DEVICE_STATE_SIZE, align8(transportStateSize(queueSizes.length)));
    const transport = new TransportState(view, queueSizes);
    return queueSizes.map((_, q) => transport.served(q));
  }

  constructor(
    state: DeviceState,
    readonly info: VirtioDeviceInfo,
    private readonly options: VirtioPciOptions,
  ) {
    const queues = info.queueSizes.length;
    const vectors = queues + 1;
    if (NOTIFY_OFF_MULTIPLIER * queues > Bar0.MSIX_TABLE - Bar0.NOTIFY) throw new Error(`${info.name}: too many queues for the notify area`);
    const config = info.config ?? new Uint8Array(0);
    if (config.length > Bar0.ISR - Bar0.DEVICE) throw new Error(`${info.name}: a device configuration of ${config.length} bytes does not fit BAR0`);
    super(state, {
      vendorId: VIRTIO_VENDOR_ID, deviceId: VIRTIO_MODERN_DEVICE_ID_BASE + info.id, revisionId: MODERN_REVISION,
      classCode: info.classCode, subsystemVendorId: VIRTIO_VENDOR_ID, subsystemId: VIRTIO_MODERN_DEVICE_ID_BASE + info.id,
      bars: [{ index: 0, address: options.bar0, size: Bar0.SIZE }],
      capabilities: [
        msixCapability({ vectors, bar: 0, tableOffset: Bar0.MSIX_TABLE, pbaOffset: Bar0.MSIX_PBA }),
        virtioCapability(CfgType.COMMON, Bar0.COMMON, COMMON_CONFIG_SIZE),
        virtioCapability(CfgType.NOTIFY, Bar0.NOTIFY, NOTIFY_OFF_MULTIPLIER * queues, u32Bytes(NOTIFY_OFF_MULTIPLIER)),
        virtioCapability(CfgType.ISR, Bar0.ISR, Bar0.ISR_SIZE),
        pciCfgCapability(),
        ...(config.length > 0 ? [virtioCapability(CfgType.DEVICE, Bar0.DEVICE, config.length)] : []),
      ],
      interruptPin: INTA,
      interruptLine: options.intxGsi,
    });
    this.vectors = vectors;
    this.offeredFeatures = info.features | TRANSPORT_FEATURES;
    const base = state.bytes.byteOffset + PCI_DEVICE_STATE_SIZE;
    const transportSize = align8(transportStateSize(queues));
    this.transport = new TransportState(new DataView(state.buffer, base, transportSize), info.queueSizes);
    this.msix = new Msix(this.config, this.capabilityOffsets[MSIX_CAPABILITY], new Uint8Array(state.buffer, base + transportSize, msixStateSize(vectors)), vectors, options.interrupts, () => options.wakeIoThread());
    this.common = new CommonConfig(this);
    this.pciCfg = this.capabilityOffsets[PCI_CFG_CAPABILITY];
    this.deviceConfig = config;
    this.powerOn();
  }

  protected override reset(): void {
    super.reset();
    this.transport.reset();
    this.msix.reset();
  }

  /** BAR0 on the MMIO bus: answers only while memory decoding is on. */
  readonly bar0: BusDevice = {
    read: (offset, data) => (this.barDecodes(0) ? this.barRead(offset, data) : data.fill(0xff)),
    write: (offset, data) => {
      if (this.barDecodes(0)) this.barWrite(offset, data);
    },
  };

  private barRead(offset: number, data: Uint8Array): void {
    if (offset < Bar0.COMMON + COMMON_CONFIG_SIZE) return this.common.read(offset - Bar0.COMMON, data);
    data.fill(0);
    if (offset >= Bar0.DEVICE && offset < Bar0.ISR) {
      const at = offset - Bar0.DEVICE;
      data.set(this.deviceConfig.subarray(at, at + data.length));
    } else if (offset >= Bar0.ISR && offset < Bar0.ISR + Bar0.ISR_SIZE) {
      if (offset === Bar0.ISR) data[0] = this.takeIsr();
    } else if (offset >= Bar0.MSIX_TABLE && offset < Bar0.MSIX_PBA) {
      this.msix.tableRead(offset - Bar0.MSIX_TABLE, data);
    } else if (offset >= Bar0.MSIX_PBA) {
      this.msix.pbaRead(offset - Bar0.MSIX_PBA, data);
    }
  }

  private barWrite(offset: number, data: Uint8Array): void {
    if (offset < Bar0.COMMON + COMMON_CONFIG_SIZE) {
      this.common.write(offset - Bar0.COMMON, data);
    } else if (offset >= Bar0.NOTIFY && offset < Bar0.MSIX_TABLE) {
      // Reached only when KVM's ioeventfd did not take the write (another width, or through PCI_CFG).
      const queue = Math.floor((offset - Bar0.NOTIFY) / NOTIFY_OFF_MULTIPLIER);
      if (queue < this.transport.queueCount) this.options.kick(queue);
    } else if (offset >= Bar0.MSIX_TABLE && offset < Bar0.MSIX_PBA) {
      this.msix.tableWrite(offset - Bar0.MSIX_TABLE, data);
    }
  }

  /** Reading ISR status clears it and lowers INTx. */
  private takeIsr(): number {
    const isr = this.transport.isr;
    this.transport.isr = 0;
    this.updateIntx();
    return isr;
  }

  protected override readDword(offset: number): number {
    if (offset !== this.pciCfgData) return super.readDword(offset);
    const window = this.pciCfgWindow();
    if (window === undefined) return 0;
    const data = new Uint8Array(window.length);
    this.barRead(window.offset, data);
    return data.reduce((v, b, i) => v | (b << (8 * i)), 0) >>> 0;
  }

  protected override configWritten(offset: number, old: number, now: number): void {
    if (offset === Reg.COMMAND) {
      this.updateIntx();
    } else if (offset === this.msix.controlDword && old >>> 16 !== now >>> 16) {
      this.msix.controlWritten();
      this.updateIntx();
    } else if (offset === this.pciCfgData) {
      const window = this.pciCfgWindow();
      if (window) this.barWrite(window.offset, u32Bytes(now).subarray(0, window.length));
    }
  }

  private get pciCfgData(): number {
    return this.pciCfg + 2 + CapField.EXTRA;
  }

  /** Where pci_cfg_data reaches in BAR0, when the driver set a valid window (virtio 1.2, 4.1.4.9). */
  private pciCfgWindow(): { offset: number; length: number } | undefined {
    const at = this.pciCfg + 2;
    const bar = this.config.getUint8(at + CapField.BAR);
    const offset = this.config.getUint32(at + CapField.OFFSET, true);
    const length = this.config.getUint32(at + CapField.LENGTH, true);
    if (bar !== 0 || (length !== 1 && length !== 2 && length !== 4) || offset % length !== 0 || offset + length > Bar0.SIZE) return undefined;
    return { offset, length };
  }

  writeStatus(value: number): void {
    const t = this.transport;
    if (value === 0) {
      // The driver waits for status to read 0; while the I/O thread holds buffers, it finishes the reset.
      if (t.busy) {
        t.resetPending = true;
        this.options.wakeIoThread();
      } else {
        this.completeReset();
      }
      return;
    }
    const old = t.status;
    let next = (value & ~DeviceStatus.NEEDS_RESET) | (old & DeviceStatus.NEEDS_RESET);
    if (next & DeviceStatus.FEATURES_OK && !(old & DeviceStatus.FEATURES_OK) && !this.featuresAcceptable()) next &= ~DeviceStatus.FEATURES_OK;
    if (next & DeviceStatus.DRIVER_OK && !(next & DeviceStatus.FEATURES_OK)) next &= ~DeviceStatus.DRIVER_OK;
    t.status = next;
    if (next & DeviceStatus.DRIVER_OK && !(old & DeviceStatus.DRIVER_OK)) {
      // Buffers made available before DRIVER_OK are served now.
      for (let q = 0; q < t.queueCount; q++) if (t.queue(q).enabled) this.options.kick(q);
    }
  }

  /** Only features offered, and VIRTIO_F_VERSION_1: this device has no legacy interface. */
  private featuresAcceptable(): boolean {
    const wanted = this.transport.driverFeatures;
    return (wanted & ~this.offeredFeatures) === 0n && (wanted & Feature.VERSION_1) !== 0n;
  }

  completeReset(): void {
    this.transport.reset();
    this.updateIntx();
  }

  /** Whether queue `queue` may be served: the driver is ready, bus mastering is on, nothing is broken. */
  canServe(queue: number): boolean {
    const t = this.transport;
    return (
      (t.status & (DeviceStatus.DRIVER_OK | DeviceStatus.NEEDS_RESET)) === DeviceStatus.DRIVER_OK &&
      !t.resetPending &&
      (this.command & Command.BUS_MASTER) !== 0 &&
      queue < t.queueCount &&
      t.queue(queue).enabled
    );
  }

  /** Sets NEEDS_RESET and tells the driver; true the first time since the last reset (report it then). */
  markNeedsReset(): boolean {
    const t = this.transport;
    t.status |= DeviceStatus.NEEDS_RESET;
    this.interruptConfig();
    if (t.reported) return false;
    t.reported = true;
    return true;
  }

  /**
   * The eventfd that interrupts the driver for `queue` with no help from
   * this VMM, when there is one now: MSI-X on and the queue's vector
   * deliverable. Otherwise (masked, INTx) interrupts must go through
   * interruptQueue(), which keeps the pending bit or the ISR.
   */
  directQueueInterrupt(queue: number): number | undefined {
    const vector = this.transport.queue(queue).vector;
    if (!this.msix.enabled || vector >= this.vectors || !this.msix.deliverable(vector)) return undefined;
    return this.options.interrupts.vectorEventfd?.(vector);
  }

  /** Used buffers in `queue`: its MSI-X vector, or the ISR queue bit and INTx. */
  interruptQueue(queue: number): void {
    if (this.msix.enabled) this.msix.fire(this.transport.queue(queue).vector);
    else this.raiseIsr(ISR_QUEUE);
  }

  /** A configuration change (here: NEEDS_RESET). */
  interruptConfig(): void {
    if (this.msix.enabled) this.msix.fire(this.transport.configVector);
    else this.raiseIsr(ISR_CONFIG);
  }

  private raiseIsr(bit: number): void {
    this.transport.isr |= bit;
    this.updateIntx();
  }

  /** INTx is asserted while ISR has a bit set and MSI-X is off; INTX_DISABLE keeps it off the pin. */
  private updateIntx(): void {
    const asserted = this.transport.isr !== 0 && !this.msix.enabled;
    this.setInterruptStatus(asserted);
    const level = asserted && (this.command & Command.INTX_DISABLE) === 0;
    if (level === this.transport.intxLevel) return;
    this.transport.intxLevel = level;
    this.options.interrupts.setIntx(level);
  }
}

function align8(n: number): number {
  return (n + 7) & ~7;
}
