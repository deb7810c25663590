/**
 * A raw binary: copied byte for byte to a guest-physical address.
 */
import type { GuestMemory } from '../memory/guest-memory.js';

export class RawImageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RawImageError';
  }
}

export interface Reserved {
  start: number;
  end: number;
  what: string;
}

/** Copies `image` to `loadAddr`, refusing images that leave RAM or cover the VMM's boot structures. */
export function loadRaw(image: Uint8Array, memory: GuestMemory, loadAddr: number, reserved: Reserved[]): void {
  if (image.length === 0) throw new RawImageError('the raw image is empty');
  const end = loadAddr + image.length;
  if (!memory.contains(loadAddr, image.length)) {
    throw new RawImageError(`the raw image (${image.length} bytes at 0x${loadAddr.toString(16)}) does not fit in guest RAM`);
  }
  const clash = reserved.find((r) => loadAddr < r.end && r.start < end);
  if (clash) {
    throw new RawImageError(
      `the raw image at 0x${loadAddr.toString(16)}-0x${end.toString(16)} would overwrite ${clash.what} at 0x${clash.start.toString(16)}-0x${clash.end.toString(16)}; load it elsewhere`,
    );
  }
  memory.write(loadAddr, image);
}
