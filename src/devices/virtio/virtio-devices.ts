/** The virtio devices a machine can have, by DeviceSpec kind. */
import type { VirtioDevice, VirtioDeviceInfo } from './device.js';
import { RNG_INFO, VirtioRng } from './rng.js';

export const virtioDevices = {
  'virtio-rng': { info: RNG_INFO, create: (): VirtioDevice => new VirtioRng() },
} satisfies Record<string, { info: VirtioDeviceInfo; create(): VirtioDevice }>;

export type VirtioKind = keyof typeof virtioDevices;

export function isVirtioKind(kind: string): kind is VirtioKind {
  return Object.hasOwn(virtioDevices, kind);
}
