/**
 * An ELF file's section header table (ELF32 or ELF64, any type: also the
 * relocatable kernel modules, which have no program headers): each
 * section's name and where its contents are, and the table as the file has
 * it, for loaders that hand it to the kernel (multiboot 2's ELF-symbols
 * tag). src/boot/elf.ts reads the program headers of executables.
 *
 * The file comes from the user: every offset and size is checked, and an
 * ElfError names what is wrong.
 */
import { ElfError } from './elf.js';

export interface ElfSection {
  index: number;
  name: string;
  type: number;
  /** SHF_ALLOC: the section is part of the loaded image, at `addr`. */
  allocated: boolean;
  addr: number;
  offset: number;
  size: number;
}

export interface ElfSectionTable {
  /** A copy of the section header table, which a loader may patch (`setAddress`). */
  headers: Uint8Array;
  entrySize: number;
  /** Index of the section holding the section names (e_shstrndx). */
  namesIndex: number;
  sections: ElfSection[];
  elfClass: 32 | 64;
}

export const SHT_NOBITS = 8;
const SHF_ALLOC = 0x2;
const SHDR_SIZE = { 32: 40, 64: 64 } as const;
const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46];
const ELFCLASS32 = 1;
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;

const hex = (n: number | bigint): string => `0x${n.toString(16)}`;

function safe(value: bigint, what: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new ElfError(`${what} ${hex(value)} is too large`);
  return Number(value);
}

/** The section headers of an ELF file; none when it has no table. */
export function elfSections(file: Uint8Array): ElfSectionTable {
  if (file.length < 64 || !ELF_MAGIC.every((b, i) => file[i] === b)) throw new ElfError('not an ELF file');
  if ((file[4] !== ELFCLASS32 && file[4] !== ELFCLASS64) || file[5] !== ELFDATA2LSB) throw new ElfError('not a little-endian ELF32 or ELF64 file');
  const elfClass = file[4] === ELFCLASS64 ? 64 : 32;
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const is64 = elfClass === 64;
  const tableOffset = is64 ? safe(view.getBigUint64(40, true), 'section header offset') : view.getUint32(32, true);
  const entrySize = view.getUint16(is64 ? 58 : 46, true);
  const count = view.getUint16(is64 ? 60 : 48, true);
  const namesIndex = view.getUint16(is64 ? 62 : 50, true);
  const empty: ElfSectionTable = { headers: new Uint8Array(0), entrySize: SHDR_SIZE[elfClass], namesIndex: 0, sections: [], elfClass };
  if (count === 0 || tableOffset === 0) return empty;
  if (entrySize < SHDR_SIZE[elfClass]) throw new ElfError(`section header entry size ${entrySize} is smaller than ${SHDR_SIZE[elfClass]}`);
  if (tableOffset > file.length || count * entrySize > file.length - tableOffset) {
    throw new ElfError(`section header table (offset ${hex(tableOffset)}, ${count} x ${entrySize} bytes) extends past the end of the ${file.length}-byte file`);
  }
  if (namesIndex >= count) throw new ElfError(`section name table index ${namesIndex} is not below the section count ${count}`);

  const unnamed: Omit<ElfSection, 'name'>[] = [];
  const nameOffsets: number[] = [];
  for (let index = 0; index < count; index++) {
    const at = tableOffset + index * entrySize;
    const what = (field: string) => `section ${index} ${field}`;
    const nameOffset = view.getUint32(at, true);
    const section = is64
      ? {
          index,
          type: view.getUint32(at + 4, true),
          allocated: (view.getBigUint64(at + 8, true) & BigInt(SHF_ALLOC)) !== 0n,
          addr: safe(view.getBigUint64(at + 16, true), what('address')),
          offset: safe(view.getBigUint64(at + 24, true), what('file offset')),
          size: safe(view.getBigUint64(at + 32, true), what('size')),
        }
      : {
          index,
          type: view.getUint32(at + 4, true),
          allocated: (view.getUint32(at + 8, true) & SHF_ALLOC) !== 0,
          addr: view.getUint32(at + 12, true),
          offset: view.getUint32(at + 16, true),
          size: view.getUint32(at + 20, true),
        };
    nameOffsets.push(nameOffset);
    if (section.type !== SHT_NOBITS && (section.offset > file.length || section.size > file.length - section.offset)) {
      throw new ElfError(`${what('contents')} [${hex(section.offset)}, ${hex(section.offset + section.size)}) extend past the end of the ${file.length}-byte file`);
    }
    unnamed.push(section);
  }
  const names = unnamed[namesIndex];
  const nameAt = (offset: number): string => {
    if (offset >= names.size) throw new ElfError(`section name offset ${offset} is outside the name table`);
    const start = names.offset + offset;
    const end = file.indexOf(0, start);
    return Buffer.from(file.subarray(start, end < 0 || end > names.offset + names.size ? names.offset + names.size : end)).toString('latin1');
  };
  const sections = unnamed.map((s, i) => ({ ...s, name: nameAt(nameOffsets[i]) }));
  const headers = file.slice(tableOffset, tableOffset + count * entrySize);
  return { headers, entrySize, namesIndex, sections, elfClass };
}

/** Sets section `index`'s sh_addr in the table's copy of the headers. */
export function setSectionAddress(table: ElfSectionTable, index: number, addr: number): void {
  const view = new DataView(table.headers.buffer, table.headers.byteOffset, table.headers.byteLength);
  const at = index * table.entrySize;
  if (table.elfClass === 64) view.setBigUint64(at + 16, BigInt(addr), true);
  else view.setUint32(at + 12, addr, true);
}

/** The contents of the named section (a view into the file), or undefined if there is none. */
export function elfSection(file: Uint8Array, name: string): Uint8Array | undefined {
  const section = elfSections(file).sections.find((s) => s.name === name);
  if (section === undefined) return undefined;
  return section.type === SHT_NOBITS ? new Uint8Array(0) : file.subarray(section.offset, section.offset + section.size);
}
