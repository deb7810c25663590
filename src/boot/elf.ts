/**
 * A parser for the parts of an ELF executable that a kernel loader needs:
 * the entry point, the PT_LOAD segments to copy into guest RAM and the
 * PT_NOTE segments (the Xen PVH entry point is announced in a note).
 *
 * The file comes from the user, so every offset and size is checked before
 * use; anything malformed throws an ElfError naming what is wrong.
 */

import type { GuestMemory } from '../memory/guest-memory.js';

export class ElfError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ElfError';
  }
}

export const EM_386 = 3;
export const EM_X86_64 = 62;

export const PT_LOAD = 1;
export const PT_NOTE = 4;

export interface ElfSegment {
  /** PT_LOAD or PT_NOTE: the only kinds a loader looks at. */
  type: number;
  paddr: number;
  /** A bigint because x86-64 kernels are linked at 0xffffffff8xxxxxxx. */
  vaddr: bigint;
  offset: number;
  fileSize: number;
  memSize: number;
  flags: number;
  align: number;
}

export interface ElfImage {
  class: 32 | 64;
  machine: number;
  /** A bigint for the same reason as ElfSegment.vaddr. */
  entry: bigint;
  segments: ElfSegment[];
}

export interface ElfNote {
  name: string;
  type: number;
  /** A view into the file, not a copy. */
  desc: Uint8Array;
}

const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46];
const ELFCLASS32 = 1;
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const EV_CURRENT = 1;
const ET_EXEC = 2;
/** e_phnum value meaning "the real count is in section header 0". */
const PN_XNUM = 0xffff;

const EHDR_SIZE = { 32: 52, 64: 64 } as const;
const PHDR_SIZE = { 32: 32, 64: 56 } as const;

const hex = (n: number | bigint): string => `0x${n.toString(16)}`;

/** Converts a 64-bit field to a number, refusing values a number cannot hold exactly. */
function toNumber(value: bigint, what: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new ElfError(`${what} ${hex(value)} is too large`);
  return Number(value);
}

export function parseElf(file: Uint8Array): ElfImage {
  if (file.length < 16) throw new ElfError(`file is ${file.length} bytes, too short for an ELF header`);
  if (!ELF_MAGIC.every((b, i) => file[i] === b)) throw new ElfError('not an ELF file (bad magic)');

  const elfClass = file[4] === ELFCLASS32 ? 32 : file[4] === ELFCLASS64 ? 64 : undefined;
  if (elfClass === undefined) throw new ElfError(`unknown ELF class ${file[4]} (expected 1 for ELF32 or 2 for ELF64)`);
  if (file[5] !== ELFDATA2LSB) throw new ElfError(`unsupported ELF data encoding ${file[5]} (only little-endian is supported)`);
  if (file[6] !== EV_CURRENT) throw new ElfError(`unsupported ELF ident version ${file[6]}`);
  if (file.length < EHDR_SIZE[elfClass]) {
    throw new ElfError(`file is ${file.length} bytes, too short for an ELF${elfClass} header (${EHDR_SIZE[elfClass]} bytes)`);
  }

  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const type = view.getUint16(16, true);
  const machine = view.getUint16(18, true);
  const version = view.getUint32(20, true);
  if (type !== ET_EXEC) throw new ElfError(`ELF type is ${type}, only executables (ET_EXEC=2) can be loaded`);
  if (machine !== EM_386 && machine !== EM_X86_64) {
    throw new ElfError(`ELF machine is ${machine}, expected x86 (EM_386=3) or x86-64 (EM_X86_64=62)`);
  }
  if (version !== EV_CURRENT) throw new ElfError(`unsupported ELF version ${version}`);

  const is64 = elfClass === 64;
  const entry = is64 ? view.getBigUint64(24, true) : BigInt(view.getUint32(24, true));
  const phoff = is64 ? toNumber(view.getBigUint64(32, true), 'program header offset') : view.getUint32(28, true);
  const phentsize = view.getUint16(is64 ? 54 : 42, true);
  const phnum = view.getUint16(is64 ? 56 : 44, true);

  if (phnum === PN_XNUM) throw new ElfError('more than 65534 program headers (PN_XNUM) is not supported');
  if (phnum > 0) {
    if (phentsize < PHDR_SIZE[elfClass]) {
      throw new ElfError(`program header entry size ${phentsize} is smaller than ${PHDR_SIZE[elfClass]}`);
    }
    if (phoff > file.length || phnum * phentsize > file.length - phoff) {
      throw new ElfError(
        `program header table (offset ${hex(phoff)}, ${phnum} x ${phentsize} bytes) extends past the end of the ${file.length}-byte file`,
      );
    }
  }

  const segments: ElfSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    const segmentType = view.getUint32(at, true);
    // Other segment kinds may hold values we would refuse but never use.
    if (segmentType !== PT_LOAD && segmentType !== PT_NOTE) continue;
    const segment = readProgramHeader(view, at, is64, i);
    checkSegment(segment, i, elfClass, file.length);
    segments.push(segment);
  }
  return { class: elfClass, machine, entry, segments };
}

function readProgramHeader(view: DataView, at: number, is64: boolean, index: number): ElfSegment {
  const what = (field: string) => `segment ${index} ${field}`;
  if (is64) {
    return {
      type: view.getUint32(at, true),
      flags: view.getUint32(at + 4, true),
      offset: toNumber(view.getBigUint64(at + 8, true), what('file offset')),
      vaddr: view.getBigUint64(at + 16, true),
      paddr: toNumber(view.getBigUint64(at + 24, true), what('physical address')),
      fileSize: toNumber(view.getBigUint64(at + 32, true), what('file size')),
      memSize: toNumber(view.getBigUint64(at + 40, true), what('memory size')),
      align: toNumber(view.getBigUint64(at + 48, true), what('alignment')),
    };
  }
  return {
    type: view.getUint32(at, true),
    offset: view.getUint32(at + 4, true),
    vaddr: BigInt(view.getUint32(at + 8, true)),
    paddr: view.getUint32(at + 12, true),
    fileSize: view.getUint32(at + 16, true),
    memSize: view.getUint32(at + 20, true),
    flags: view.getUint32(at + 24, true),
    align: view.getUint32(at + 28, true),
  };
}

function checkSegment(segment: ElfSegment, index: number, elfClass: 32 | 64, fileLength: number): void {
  const { offset, fileSize, memSize, paddr } = segment;
  if (offset > fileLength || fileSize > fileLength - offset) {
    throw new ElfError(
      `segment ${index} file range [${hex(offset)}, ${hex(offset + fileSize)}) extends past the end of the ${fileLength}-byte file`,
    );
  }
  if (segment.type !== PT_LOAD) return;
  if (fileSize > memSize) {
    throw new ElfError(`segment ${index} file size ${hex(fileSize)} is larger than its memory size ${hex(memSize)}`);
  }
  // An ELF32 segment must end inside the 32-bit physical address space.
  const addressLimit = elfClass === 32 ? 2 ** 32 : Number.MAX_SAFE_INTEGER;
  if (memSize > addressLimit - paddr) {
    throw new ElfError(`segment ${index} at physical ${hex(paddr)} with size ${hex(memSize)} overflows the address space`);
  }
}

const alignUp = (n: number, align: number): number => Math.ceil(n / align) * align;

/** Every note in the file's PT_NOTE segments, in file order. */
export function elfNotes(elf: ElfImage, file: Uint8Array): ElfNote[] {
  const notes: ElfNote[] = [];
  for (const segment of elf.segments) {
    if (segment.type !== PT_NOTE) continue;
    const bytes = file.subarray(segment.offset, segment.offset + segment.fileSize);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // Notes are 4-byte aligned except in segments that ask for 8 (e.g. GNU property notes).
    const align = segment.align === 8 ? 8 : 4;
    let at = 0;
    while (at < bytes.length) {
      const truncated = () => new ElfError(`note at file offset ${hex(segment.offset + at)} is truncated`);
      if (bytes.length - at < 12) throw truncated();
      const nameSize = view.getUint32(at, true);
      const descSize = view.getUint32(at + 4, true);
      const type = view.getUint32(at + 8, true);
      const nameStart = at + 12;
      const descStart = nameStart + alignUp(nameSize, align);
      if (descStart > bytes.length || descSize > bytes.length - descStart) throw truncated();
      const name = Buffer.from(bytes.subarray(nameStart, nameStart + nameSize)).toString('latin1').replace(/\0+$/, '');
      notes.push({ name, type, desc: bytes.subarray(descStart, descStart + descSize) });
      at = alignUp(descStart + descSize, align);
    }
  }
  return notes;
}

/**
 * Copies each PT_LOAD segment to its physical address and zero-fills the
 * part past its file data (the bss). Returns the end of the highest segment.
 */
export function loadElfSegments(elf: ElfImage, file: Uint8Array, memory: GuestMemory): number {
  const loads = elf.segments.filter((s) => s.type === PT_LOAD);
  if (loads.length === 0) throw new ElfError('ELF file has no PT_LOAD segments');
  // Check everything first so a refused file leaves guest RAM untouched.
  for (const s of loads) {
    if (s.memSize > 0 && !memory.contains(s.paddr, s.memSize)) {
      throw new ElfError(`segment at physical [${hex(s.paddr)}, ${hex(s.paddr + s.memSize)}) is not inside guest RAM`);
    }
  }
  let end = 0;
  for (const s of loads) {
    if (s.memSize === 0) continue;
    memory.write(s.paddr, file.subarray(s.offset, s.offset + s.fileSize));
    memory.fill(s.paddr + s.fileSize, s.memSize - s.fileSize);
    end = Math.max(end, s.paddr + s.memSize);
  }
  return end;
}
