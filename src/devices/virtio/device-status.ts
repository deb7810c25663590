/** The device status field (virtio 1.2, 2.1): bits the driver sets as it goes, and NEEDS_RESET, which the device sets. */
export const DeviceStatus = {
  ACKNOWLEDGE: 1,
  DRIVER: 2,
  DRIVER_OK: 4,
  FEATURES_OK: 8,
  NEEDS_RESET: 0x40,
  FAILED: 0x80,
} as const;
