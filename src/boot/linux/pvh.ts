/**
 * The Xen PVH boot protocol, which Linux also accepts outside Xen
 * (CONFIG_PVH): the kernel announces a 32-bit entry point in an ELF note,
 * and starts there in flat 32-bit protected mode with paging off and
 * EBX = the address of an hvm_start_info structure (xen/include/public/
 * arch-x86/hvm/start_info.h) that points at the command line, the memory
 * map and the modules (the initrd).
 */
import { struct } from '../../kvm/struct.js';
import type { ElfNote } from '../elf.js';
import type { E820Entry } from './e820.js';

/** XEN_ELFNOTE_PHYS32_ENTRY: the physical address of the 32-bit PVH entry. */
export const XEN_ELFNOTE_PHYS32_ENTRY = 18;
export const HVM_START_MAGIC = 0x336ec578;
/** Version 1 has the memory map fields. */
const HVM_START_VERSION = 1;

export const hvmStartInfo = struct('hvm_start_info', {
  magic: 'u32',
  version: 'u32',
  flags: 'u32',
  nr_modules: 'u32',
  modlist_paddr: 'u64',
  cmdline_paddr: 'u64',
  rsdp_paddr: 'u64',
  memmap_paddr: 'u64',
  memmap_entries: 'u32',
  reserved: 'u32',
});
export const hvmModlistEntry = struct('hvm_modlist_entry', {
  paddr: 'u64', size: 'u64', cmdline_paddr: 'u64', reserved: 'u64',
});
export const hvmMemmapEntry = struct('hvm_memmap_table_entry', {
  addr: 'u64', size: 'u64', type: 'u32', reserved: 'u32',
});

/** The PVH entry from the kernel's notes: Linux emits it as a u64 (_ASM_PTR), other kernels as a u32. */
export function pvhEntry(notes: ElfNote[]): number | undefined {
  const note = notes.find((n) => n.name === 'Xen' && n.type === XEN_ELFNOTE_PHYS32_ENTRY);
  if (!note || (note.desc.length !== 4 && note.desc.length !== 8)) return undefined;
  // Only the low 32 bits matter: the entry runs in 32-bit mode.
  return new DataView(note.desc.buffer, note.desc.byteOffset, 4).getUint32(0, true);
}

export interface PvhStartInfoInput {
  /** Where the block (start info, then memory map, then module list) goes. */
  address: number;
  cmdlineAddress: number;
  e820: E820Entry[];
  initrd?: { address: number; size: number };
  rsdpAddress?: number;
}

/** The start info, memory map and module list, back to back, as bytes for `input.address`. */
export function buildPvhStartInfo(input: PvhStartInfoInput): Uint8Array {
  const memmapAt = hvmStartInfo.size;
  const modlistAt = memmapAt + input.e820.length * hvmMemmapEntry.size;
  const block = new Uint8Array(modlistAt + hvmModlistEntry.size);
  hvmStartInfo.encode({
    magic: HVM_START_MAGIC,
    version: HVM_START_VERSION,
    nr_modules: input.initrd ? 1 : 0,
    modlist_paddr: input.initrd ? BigInt(input.address + modlistAt) : 0n,
    cmdline_paddr: BigInt(input.cmdlineAddress),
    rsdp_paddr: BigInt(input.rsdpAddress ?? 0),
    memmap_paddr: BigInt(input.address + memmapAt),
    memmap_entries: input.e820.length,
  }, block);
  input.e820.forEach((e, i) => {
    hvmMemmapEntry.encode({ addr: BigInt(e.addr), size: BigInt(e.size), type: e.type }, block, memmapAt + i * hvmMemmapEntry.size);
  });
  if (input.initrd) {
    hvmModlistEntry.encode({ paddr: BigInt(input.initrd.address), size: BigInt(input.initrd.size) }, block, modlistAt);
  }
  return block;
}
