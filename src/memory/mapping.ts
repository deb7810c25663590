/**
 * Guest RAM backed by one memfd: created once per VM, mapped by the main
 * thread and again by each vCPU worker (same pages, another address).
 */
import { memfdCreate, mmapShared, munmap, type Mapping } from '../kvm/libc.js';
import { GuestMemory } from './guest-memory.js';
import type { RamRange } from './layout.js';

export class MappedGuestMemory extends GuestMemory {
  constructor(
    private readonly mapping: Mapping,
    readonly ram: RamRange[],
  ) {
    super(ram.map((r) => ({ gpa: r.gpa, bytes: new Uint8Array(mapping.buffer, r.fileOffset, r.size) })));
  }

  /** Host virtual address of a RAM range, for KVM_SET_USER_MEMORY_REGION. */
  hostAddress(range: RamRange): bigint {
    return this.mapping.address + BigInt(range.fileOffset);
  }

  unmap(): void {
    munmap(this.mapping);
  }
}

export function createMemfd(ram: RamRange[]): number {
  const size = ram.reduce((n, r) => n + r.size, 0);
  return memfdCreate('tsvmm-guest-ram', size);
}

export function mapGuestMemory(memfd: number, ram: RamRange[]): MappedGuestMemory {
  const size = ram.reduce((n, r) => n + r.size, 0);
  return new MappedGuestMemory(mmapShared(memfd, size), ram);
}
