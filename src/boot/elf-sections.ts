/**
 * An ELF file's section header table, for loaders that hand it to the
 * kernel (multiboot 2's ELF-symbols tag): the table as the file has it,
 * and where each section's contents are in the file.
 *
 * The file comes from the user: every offset and size is checked, and an
 * ElfError names what is wrong.
 */
import { ElfError, type ElfImage } from './elf.js';

export interface ElfSection {
  index: number;
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

const hex = (n: number | bigint): string => `0x${n.toString(16)}`;

function safe(value: bigint, what: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new ElfError(`${what} ${hex(value)} is too large`);
  return Number(value);
}

/** The section headers of `file` (parsed by parseElf as `elf`); none when the file has no table. */
export function elfSections(elf: ElfImage, file: Uint8Array): ElfSectionTable {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const is64 = elf.class === 64;
  const tableOffset = is64 ? safe(view.getBigUint64(40, true), 'section header offset') : view.getUint32(32, true);
  const entrySize = view.getUint16(is64 ? 58 : 46, true);
  const count = view.getUint16(is64 ? 60 : 48, true);
  const namesIndex = view.getUint16(is64 ? 62 : 50, true);
  const empty: ElfSectionTable = { headers: new Uint8Array(0), entrySize: SHDR_SIZE[elf.class], namesIndex: 0, sections: [], elfClass: elf.class };
  if (count === 0 || tableOffset === 0) return empty;
  if (entrySize < SHDR_SIZE[elf.class]) throw new ElfError(`section header entry size ${entrySize} is smaller than ${SHDR_SIZE[elf.class]}`);
  if (tableOffset > file.length || count * entrySize > file.length - tableOffset) {
    throw new ElfError(`section header table (offset ${hex(tableOffset)}, ${count} x ${entrySize} bytes) extends past the end of the ${file.length}-byte file`);
  }
  if (namesIndex >= count) throw new ElfError(`section name table index ${namesIndex} is not below the section count ${count}`);

  const sections: ElfSection[] = [];
  for (let index = 0; index < count; index++) {
    const at = tableOffset + index * entrySize;
    const what = (field: string) => `section ${index} ${field}`;
    const section: ElfSection = is64
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
    if (section.type !== SHT_NOBITS && (section.offset > file.length || section.size > file.length - section.offset)) {
      throw new ElfError(`${what('contents')} [${hex(section.offset)}, ${hex(section.offset + section.size)}) extend past the end of the ${file.length}-byte file`);
    }
    sections.push(section);
  }
  const headers = file.slice(tableOffset, tableOffset + count * entrySize);
  return { headers, entrySize, namesIndex, sections, elfClass: elf.class };
}

/** Sets section `index`'s sh_addr in the table's copy of the headers. */
export function setSectionAddress(table: ElfSectionTable, index: number, addr: number): void {
  const view = new DataView(table.headers.buffer, table.headers.byteOffset, table.headers.byteLength);
  const at = index * table.entrySize;
  if (table.elfClass === 64) view.setBigUint64(at + 16, BigInt(addr), true);
  else view.setUint32(at + 12, addr, true);
}
