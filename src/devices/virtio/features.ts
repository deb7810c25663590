/**
 * Virtio feature bits (virtio 1.2, 6) the transport and queues know. The
 * device offers these on top of its own; VIRTIO_F_ACCESS_PLATFORM (33) is
 * not offered: the device reaches guest memory by guest-physical address.
 */
export const Feature = {
  INDIRECT_DESC: 1n << 28n,
  EVENT_IDX: 1n << 29n,
  VERSION_1: 1n << 32n,
  ACCESS_PLATFORM: 1n << 33n,
} as const;

export const TRANSPORT_FEATURES = Feature.VERSION_1 | Feature.EVENT_IDX | Feature.INDIRECT_DESC;
