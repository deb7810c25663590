/**
 * A reader for the section table of an ELF64 little-endian file, the form
 * of x86-64 kernel modules (.ko, ET_REL): enough to find a section by name.
 * src/boot/elf.ts reads program headers of executables, which a
 * relocatable module does not have.
 */

export class ElfSectionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ElfSectionError';
  }
}

export interface ElfSection {
  name: string;
  offset: number;
  size: number;
}

const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46];
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const EHDR64_SIZE = 64;
const SHDR64_SIZE = 64;
/** Section type that occupies no bytes in the file (.bss). */
const SHT_NOBITS = 8;

export function elfSections(file: Uint8Array): ElfSection[] {
  if (file.length < EHDR64_SIZE || !ELF_MAGIC.every((b, i) => file[i] === b)) throw new ElfSectionError('not an ELF file');
  if (file[4] !== ELFCLASS64 || file[5] !== ELFDATA2LSB) throw new ElfSectionError('not a little-endian ELF64 file');
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const shoff = Number(view.getBigUint64(40, true));
  const shentsize = view.getUint16(58, true);
  const shnum = view.getUint16(60, true);
  const shstrndx = view.getUint16(62, true);
  if (shnum === 0) return [];
  if (shentsize < SHDR64_SIZE || shoff > file.length || shnum * shentsize > file.length - shoff) {
    throw new ElfSectionError(`section header table (offset ${shoff}, ${shnum} x ${shentsize} bytes) lies outside the ${file.length}-byte file`);
  }
  if (shstrndx >= shnum) throw new ElfSectionError(`section name table index ${shstrndx} is out of range`);

  const header = (i: number) => {
    const at = shoff + i * shentsize;
    const type = view.getUint32(at + 4, true);
    const offset = Number(view.getBigUint64(at + 24, true));
    const size = type === SHT_NOBITS ? 0 : Number(view.getBigUint64(at + 32, true));
    if (offset > file.length || size > file.length - offset) throw new ElfSectionError(`section ${i} lies outside the file`);
    return { nameIndex: view.getUint32(at, true), offset, size };
  };
  const names = header(shstrndx);
  const nameAt = (index: number) => {
    if (index >= names.size) throw new ElfSectionError(`section name offset ${index} is outside the name table`);
    const start = names.offset + index;
    const end = file.indexOf(0, start);
    return Buffer.from(file.subarray(start, end < 0 ? names.offset + names.size : end)).toString('latin1');
  };
  return Array.from({ length: shnum }, (_, i) => {
    const { nameIndex, offset, size } = header(i);
    return { name: nameAt(nameIndex), offset, size };
  });
}

/** The bytes of the named section (a view into the file), or undefined if there is none. */
export function elfSection(file: Uint8Array, name: string): Uint8Array | undefined {
  const section = elfSections(file).find((s) => s.name === name);
  return section && file.subarray(section.offset, section.offset + section.size);
}
