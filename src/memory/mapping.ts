/**
 * Guest RAM backed by one memfd: created once per VM, mapped by the main
 * thread and again by each vCPU worker (same pages, another address). Each
 * RAM range is its own mapping: a JS view of memory must stay under 4 GiB.
 */
import { memfdCreate, mmapShared, munmap, type Mapping } from '../kvm/libc.js';
import { GuestMemory } from './guest-memory.js';
import type { RamRange } from './layout.js';

export class MappedGuestMemory extends GuestMemory {
  constructor(
    private readonly mappings: Mapping[],
    readonly ram: RamRange[],
  ) {
    super(ram.map((r, i) => ({ gpa: r.gpa, bytes: new Uint8Array(mappings[i].buffer) })));
  }

  /** Host virtual address of a RAM range, for KVM_SET_USER_MEMORY_REGION. */
  hostAddress(range: RamRange): bigint {
    return this.mappings[this.ram.indexOf(range)].address;
  }

  unmap(): void {
    this.mappings.forEach(munmap);
  }
}

export function createMemfd(ram: RamRange[]): number {
  const size = ram.reduce((n, r) => n + r.size, 0);
  return memfdCreate('tsvmm-guest-ram', size);
}

export function mapGuestMemory(memfd: number, ram: RamRange[]): MappedGuestMemory {
  return new MappedGuestMemory(
    ram.map((r) => mmapShared(memfd, r.size, r.fileOffset)),
    ram,
  );
}
