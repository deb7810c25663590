/**
 * The common configuration structure (virtio 1.2, 4.1.4.3), the register
 * block through which a PCI driver negotiates features, drives the status
 * and sets up queues. Any access width works: a write is merged into the
 * fields it covers, and each field touched is then applied, so a 64-bit
 * queue address written as two 32-bit halves lands whole.
 *
 *   0x00 device_feature_select  0x04 device_feature   0x08 driver_feature_select
 *   0x0c driver_feature         0x10 config_msix_vector  0x12 num_queues
 *   0x14 device_status          0x15 config_generation   0x16 queue_select
 *   0x18 queue_size             0x1a queue_msix_vector   0x1c queue_enable
 *   0x1e queue_notify_off       0x20 queue_desc          0x28 queue_driver
 *   0x30 queue_device           0x38 queue_notify_data   0x3a queue_reset
 */
import { DeviceStatus } from './device-status.js';
import { NO_VECTOR, type TransportState } from './transport-state.js';

export const COMMON_CONFIG_SIZE = 0x40;

const Field = {
  DEVICE_FEATURE_SELECT: 0x00, DEVICE_FEATURE: 0x04, DRIVER_FEATURE_SELECT: 0x08, DRIVER_FEATURE: 0x0c,
  CONFIG_MSIX_VECTOR: 0x10, NUM_QUEUES: 0x12, DEVICE_STATUS: 0x14, CONFIG_GENERATION: 0x15,
  QUEUE_SELECT: 0x16, QUEUE_SIZE: 0x18, QUEUE_MSIX_VECTOR: 0x1a, QUEUE_ENABLE: 0x1c, QUEUE_NOTIFY_OFF: 0x1e,
  QUEUE_DESC: 0x20, QUEUE_DRIVER: 0x28, QUEUE_DEVICE: 0x30, QUEUE_NOTIFY_DATA: 0x38, QUEUE_RESET: 0x3a,
} as const;

const sizes: Record<number, number> = {
  [Field.DEVICE_FEATURE_SELECT]: 4, [Field.DEVICE_FEATURE]: 4, [Field.DRIVER_FEATURE_SELECT]: 4, [Field.DRIVER_FEATURE]: 4,
  [Field.CONFIG_MSIX_VECTOR]: 2, [Field.NUM_QUEUES]: 2, [Field.DEVICE_STATUS]: 1, [Field.CONFIG_GENERATION]: 1,
  [Field.QUEUE_SELECT]: 2, [Field.QUEUE_SIZE]: 2, [Field.QUEUE_MSIX_VECTOR]: 2, [Field.QUEUE_ENABLE]: 2, [Field.QUEUE_NOTIFY_OFF]: 2,
  [Field.QUEUE_DESC]: 8, [Field.QUEUE_DRIVER]: 8, [Field.QUEUE_DEVICE]: 8, [Field.QUEUE_NOTIFY_DATA]: 2, [Field.QUEUE_RESET]: 2,
};
const fields = Object.entries(sizes).map(([offset, size]) => ({ offset: Number(offset), size }));

/** What the register block works on. */
export interface CommonConfigTarget {
  readonly transport: TransportState;
  /** Device and transport feature bits offered to the driver. */
  readonly offeredFeatures: bigint;
  /** Entries in the MSI-X table: a vector number past them reads back as NO_VECTOR. */
  readonly vectors: number;
  /** The driver wrote device_status. */
  writeStatus(value: number): void;
}

export class CommonConfig {
  constructor(private readonly target: CommonConfigTarget) {}

  read(offset: number, data: Uint8Array): void {
    const bytes = this.render();
    data.fill(0);
    if (offset < COMMON_CONFIG_SIZE) data.set(bytes.subarray(offset, Math.min(offset + data.length, COMMON_CONFIG_SIZE)));
  }

  write(offset: number, data: Uint8Array): void {
    const bytes = this.render();
    const end = offset + data.length;
    for (const f of fields) {
      if (f.offset >= end || f.offset + f.size <= offset) continue;
      const value = bytes.slice(f.offset, f.offset + f.size);
      for (let i = 0; i < f.size; i++) {
        const at = f.offset + i - offset;
        if (at >= 0 && at < data.length) value[i] = data[at];
      }
      this.apply(f.offset, littleEndian(value));
    }
  }

  /** The block's current contents. */
  private render(): Uint8Array {
    const t = this.target.transport;
    const bytes = new Uint8Array(COMMON_CONFIG_SIZE);
    const v = new DataView(bytes.buffer);
    v.setUint32(Field.DEVICE_FEATURE_SELECT, t.deviceFeatureSelect, true);
    v.setUint32(Field.DEVICE_FEATURE, featureWord(this.target.offeredFeatures, t.deviceFeatureSelect), true);
    v.setUint32(Field.DRIVER_FEATURE_SELECT, t.driverFeatureSelect, true);
    v.setUint32(Field.DRIVER_FEATURE, featureWord(t.driverFeatures, t.driverFeatureSelect), true);
    v.setUint16(Field.CONFIG_MSIX_VECTOR, t.configVector, true);
    v.setUint16(Field.NUM_QUEUES, t.queueCount, true);
    v.setUint8(Field.DEVICE_STATUS, t.status);
    v.setUint16(Field.QUEUE_SELECT, t.queueSelect, true);
    const q = t.queueSelect;
    if (q < t.queueCount) {
      const r = t.queue(q);
      v.setUint16(Field.QUEUE_SIZE, r.size, true);
      v.setUint16(Field.QUEUE_MSIX_VECTOR, r.vector, true);
      v.setUint16(Field.QUEUE_ENABLE, r.enabled ? 1 : 0, true);
      v.setUint16(Field.QUEUE_NOTIFY_OFF, q, true);
      v.setBigUint64(Field.QUEUE_DESC, r.desc, true);
      v.setBigUint64(Field.QUEUE_DRIVER, r.driver, true);
      v.setBigUint64(Field.QUEUE_DEVICE, r.device, true);
    }
    // config_generation stays 0: the device configuration never changes. queue_notify_data and queue_reset
    // are 0: VIRTIO_F_NOTIF_CONFIG_DATA and VIRTIO_F_RING_RESET are not offered.
    return bytes;
  }

  private apply(field: number, value: bigint): void {
    const t = this.target.transport;
    const n = Number(value & 0xffff_ffffn);
    const q = t.queueSelect;
    const queue = q < t.queueCount ? t.queue(q) : undefined;
    // Queue setup is frozen once the queue is enabled.
    const queueSetup = queue !== undefined && !queue.enabled;
    switch (field) {
      case Field.DEVICE_FEATURE_SELECT: t.deviceFeatureSelect = n; break;
      case Field.DRIVER_FEATURE_SELECT: t.driverFeatureSelect = n; break;
      case Field.DRIVER_FEATURE:
        if (!(t.status & DeviceStatus.FEATURES_OK) && t.driverFeatureSelect < 2) {
          const shift = BigInt(32 * t.driverFeatureSelect);
          t.driverFeatures = (t.driverFeatures & ~(0xffff_ffffn << shift)) | (BigInt(n) << shift);
        }
        break;
      case Field.CONFIG_MSIX_VECTOR: t.configVector = this.vector(n); break;
      case Field.DEVICE_STATUS: this.target.writeStatus(n); break;
      case Field.QUEUE_SELECT: t.queueSelect = n; break;
      case Field.QUEUE_SIZE: if (queueSetup) t.setQueue(q, { size: n }); break;
      case Field.QUEUE_MSIX_VECTOR: if (queue) t.setQueue(q, { vector: this.vector(n) }); break;
      // Writing 0 does nothing: without VIRTIO_F_RING_RESET only a device reset disables a queue.
      case Field.QUEUE_ENABLE: if (queueSetup && n === 1) t.setQueue(q, { enabled: true }); break;
      case Field.QUEUE_DESC: if (queueSetup) t.setQueue(q, { desc: value }); break;
      case Field.QUEUE_DRIVER: if (queueSetup) t.setQueue(q, { driver: value }); break;
      case Field.QUEUE_DEVICE: if (queueSetup) t.setQueue(q, { device: value }); break;
      // The rest are read-only.
    }
  }

  /** A vector the device can use, or NO_VECTOR, which the driver reads back to learn the mapping failed. */
  private vector(n: number): number {
    return n < this.target.vectors ? n : NO_VECTOR;
  }
}

function featureWord(features: bigint, select: number): number {
  return select < 2 ? Number((features >> BigInt(32 * select)) & 0xffff_ffffn) : 0;
}

function littleEndian(bytes: Uint8Array): bigint {
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]);
  return v;
}
