/**
 * The default Linux guest: Debian's current cloud kernel and an initramfs
 * of busybox, the virtio modules and tsvmm's /init (see init-script.ts),
 * built from Debian packages and kept in the user's cache.
 */
import { renderInitScript } from './init-script.js';
import { ensureGuest, type BuiltGuest, type EnsureGuestOptions, type GuestRecipe } from './initramfs-guest.js';

export const DEFAULT_GUEST: GuestRecipe = {
  name: 'default-guest',
  version: 2,
  // Debian's cloud kernel: small, and with the virtio drivers.
  kernelMetapackage: 'linux-image-cloud-amd64',
  // The drivers for tsvmm's virtio devices; dependencies are found by resolveModules.
  modules: [
    { name: 'virtio_pci' },
    { name: 'virtio_mmio' },
    { name: 'virtio_blk' },
    { name: 'virtio_net' },
    { name: 'virtio_rng' },
    { name: 'vmw_vsock_virtio_transport' },
    { name: 'virtio_console', optional: true },
  ],
  init: (modules) => renderInitScript({ modules }),
};

export type DefaultGuest = BuiltGuest;

export const ensureDefaultGuest = (options: EnsureGuestOptions = {}): Promise<DefaultGuest> => ensureGuest(DEFAULT_GUEST, options);
