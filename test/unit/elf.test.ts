import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ElfError, EM_386, EM_X86_64, PT_LOAD, PT_NOTE, elfNotes, loadElfSegments, parseElf } from '../../src/boot/elf.js';
import { GuestMemory } from '../../src/memory/guest-memory.js';

interface SegmentSpec {
  type?: number;
  paddr: number;
  vaddr?: bigint;
  data: Uint8Array;
  memSize?: number;
  flags?: number;
  align?: number;
}

interface ElfSpec {
  class: 32 | 64;
  machine?: number;
  entry: bigint;
  segments: SegmentSpec[];
}

/** Field offsets of the ELF header and a program header, per class. */
const LAYOUT = {
  32: { ehdr: 52, phdr: 32, phoff: 28, phentsize: 42, phnum: 44 },
  64: { ehdr: 64, phdr: 56, phoff: 32, phentsize: 54, phnum: 56 },
} as const;

/** Writes a minimal little-endian executable: header, program headers, then each segment's data. */
function buildElf(spec: ElfSpec): Uint8Array {
  const layout = LAYOUT[spec.class];
  const phoff = layout.ehdr;
  let dataOffset = phoff + spec.segments.length * layout.phdr;
  const offsets = spec.segments.map((s) => {
    const at = dataOffset;
    dataOffset += Math.ceil(s.data.length / 8) * 8;
    return at;
  });
  const file = new Uint8Array(dataOffset);
  const v = new DataView(file.buffer);
  file.set([0x7f, 0x45, 0x4c, 0x46, spec.class === 32 ? 1 : 2, 1, 1]);
  v.setUint16(16, 2, true); // ET_EXEC
  v.setUint16(18, spec.machine ?? (spec.class === 32 ? EM_386 : EM_X86_64), true);
  v.setUint32(20, 1, true);
  v.setUint16(layout.phentsize, layout.phdr, true);
  v.setUint16(layout.phnum, spec.segments.length, true);
  if (spec.class === 32) {
    v.setUint32(24, Number(spec.entry), true);
    v.setUint32(layout.phoff, phoff, true);
  } else {
    v.setBigUint64(24, spec.entry, true);
    v.setBigUint64(layout.phoff, BigInt(phoff), true);
  }
  spec.segments.forEach((s, i) => {
    const at = phoff + i * layout.phdr;
    const fields = {
      type: s.type ?? PT_LOAD,
      offset: offsets[i],
      vaddr: s.vaddr ?? BigInt(s.paddr),
      paddr: s.paddr,
      fileSize: s.data.length,
      memSize: s.memSize ?? s.data.length,
      flags: s.flags ?? 5,
      align: s.align ?? 4,
    };
    if (spec.class === 32) {
      v.setUint32(at, fields.type, true);
      v.setUint32(at + 4, fields.offset, true);
      v.setUint32(at + 8, Number(fields.vaddr), true);
      v.setUint32(at + 12, fields.paddr, true);
      v.setUint32(at + 16, fields.fileSize, true);
      v.setUint32(at + 20, fields.memSize, true);
      v.setUint32(at + 24, fields.flags, true);
      v.setUint32(at + 28, fields.align, true);
    } else {
      v.setUint32(at, fields.type, true);
      v.setUint32(at + 4, fields.flags, true);
      v.setBigUint64(at + 8, BigInt(fields.offset), true);
      v.setBigUint64(at + 16, fields.vaddr, true);
      v.setBigUint64(at + 24, BigInt(fields.paddr), true);
      v.setBigUint64(at + 32, BigInt(fields.fileSize), true);
      v.setBigUint64(at + 40, BigInt(fields.memSize), true);
      v.setBigUint64(at + 48, BigInt(fields.align), true);
    }
    file.set(s.data, offsets[i]);
  });
  return file;
}

/** One ELF note with 4-byte padding after the name and the descriptor. */
function note(name: string, type: number, desc: Uint8Array): Uint8Array {
  const nameBytes = Buffer.from(name + '\0', 'latin1');
  const pad = (n: number) => Math.ceil(n / 4) * 4;
  const out = new Uint8Array(12 + pad(nameBytes.length) + pad(desc.length));
  const v = new DataView(out.buffer);
  v.setUint32(0, nameBytes.length, true);
  v.setUint32(4, desc.length, true);
  v.setUint32(8, type, true);
  out.set(nameBytes, 12);
  out.set(desc, 12 + pad(nameBytes.length));
  return out;
}

const bytes = (...values: number[]) => Uint8Array.from(values);
const concat = (...parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((p) => [...p]));

function assertElfError(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ElfError, `expected ElfError, got ${String(err)}`);
    assert.match(err.message, message);
    return true;
  });
}

const MiB = 1 << 20;
const memoryOf = (size: number) => new GuestMemory([{ gpa: 0, bytes: new Uint8Array(size) }]);

test('parses an ELF32 executable', () => {
  const file = buildElf({
    class: 32,
    entry: 0x100010n,
    segments: [
      { paddr: 0x100000, data: bytes(1, 2, 3, 4), memSize: 0x20, flags: 7, align: 0x1000 },
      { type: 6 /* PT_PHDR: not kept */, paddr: 0x200000, data: bytes(9) },
    ],
  });
  const elf = parseElf(file);
  assert.equal(elf.class, 32);
  assert.equal(elf.machine, EM_386);
  assert.equal(elf.entry, 0x100010n);
  assert.deepEqual(elf.segments, [
    { type: PT_LOAD, paddr: 0x100000, vaddr: 0x100000n, offset: 52 + 2 * 32, fileSize: 4, memSize: 0x20, flags: 7, align: 0x1000 },
  ]);
});

test('parses an ELF64 executable linked in the upper half', () => {
  const file = buildElf({
    class: 64,
    entry: 0x1000000n,
    segments: [{ paddr: 0x1000000, vaddr: 0xffffffff81000000n, data: bytes(0xaa, 0xbb), memSize: 0x1000 }],
  });
  const elf = parseElf(file);
  assert.equal(elf.class, 64);
  assert.equal(elf.machine, EM_X86_64);
  assert.equal(elf.segments.length, 1);
  assert.equal(elf.segments[0].vaddr, 0xffffffff81000000n);
  assert.equal(elf.segments[0].paddr, 0x1000000);
  assert.equal(elf.segments[0].offset, 64 + 56);
  assert.equal(elf.segments[0].memSize, 0x1000);
});

test('iterates the notes of PT_NOTE segments', () => {
  const pvhEntry = bytes(0x00, 0x10, 0x00, 0x01);
  const file = buildElf({
    class: 64,
    entry: 0x1000000n,
    segments: [
      { paddr: 0x1000000, data: bytes(0x90) },
      { type: PT_NOTE, paddr: 0, data: concat(note('GNU', 3, bytes(1, 2, 3, 4, 5)), note('Xen', 18, pvhEntry)) },
    ],
  });
  const elf = parseElf(file);
  const notes = elfNotes(elf, file);
  assert.deepEqual(
    notes.map((n) => ({ ...n, desc: [...n.desc] })),
    [
      { name: 'GNU', type: 3, desc: [1, 2, 3, 4, 5] },
      { name: 'Xen', type: 18, desc: [...pvhEntry] },
    ],
  );
});

test('rejects a truncated note', () => {
  const whole = note('Xen', 18, bytes(1, 2, 3, 4));
  const file = buildElf({ class: 32, entry: 0n, segments: [{ type: PT_NOTE, paddr: 0, data: whole.subarray(0, whole.length - 4) }] });
  assertElfError(() => elfNotes(parseElf(file), file), /note at file offset 0x[0-9a-f]+ is truncated/);
});

test('loads segments at their physical addresses and zero-fills the bss', () => {
  const memory = memoryOf(4 * MiB);
  memory.fill(0, 4 * MiB, 0xee);
  const file = buildElf({
    class: 32,
    entry: 0x100000n,
    segments: [
      { paddr: 0x100000, vaddr: 0xc0100000n, data: bytes(1, 2, 3), memSize: 0x10 },
      { paddr: 0x200000, data: bytes(4, 5), memSize: 2 },
    ],
  });
  const end = loadElfSegments(parseElf(file), file, memory);
  assert.equal(end, 0x200002);
  assert.deepEqual([...memory.read(0x100000, 0x11)], [1, 2, 3, ...new Array(13).fill(0), 0xee]);
  assert.deepEqual([...memory.read(0x200000, 3)], [4, 5, 0xee]);
});

test('refuses to load a segment outside guest RAM and writes nothing', () => {
  const memory = memoryOf(2 * MiB);
  const file = buildElf({
    class: 64,
    entry: 0n,
    segments: [
      { paddr: 0x100000, data: bytes(1) },
      { paddr: 2 * MiB - 4, data: bytes(1), memSize: 8 },
    ],
  });
  assertElfError(() => loadElfSegments(parseElf(file), file, memory), /segment at physical \[0x1ffffc, 0x200004\) is not inside guest RAM/);
  assert.equal(memory.readU8(0x100000), 0);
});

test('refuses to load a file without PT_LOAD segments', () => {
  const file = buildElf({ class: 32, entry: 0n, segments: [] });
  assertElfError(() => loadElfSegments(parseElf(file), file, memoryOf(MiB)), /no PT_LOAD segments/);
});

function patched(file: Uint8Array, patch: (v: DataView) => void): Uint8Array {
  const copy = file.slice();
  patch(new DataView(copy.buffer));
  return copy;
}

const elf32 = buildElf({ class: 32, entry: 0x100000n, segments: [{ paddr: 0x100000, data: bytes(1, 2, 3, 4) }] });
const elf64 = buildElf({ class: 64, entry: 0x100000n, segments: [{ paddr: 0x100000, data: bytes(1, 2, 3, 4) }] });
const PHDR32 = 52;
const PHDR64 = 64;

test('rejects malformed headers', () => {
  assertElfError(() => parseElf(patched(elf32, (v) => v.setUint8(1, 0x46))), /not an ELF file \(bad magic\)/);
  assertElfError(() => parseElf(elf32.subarray(0, 10)), /too short for an ELF header/);
  assertElfError(() => parseElf(elf64.subarray(0, 60)), /too short for an ELF64 header \(64 bytes\)/);
  assertElfError(() => parseElf(patched(elf32, (v) => v.setUint8(4, 3))), /unknown ELF class 3/);
  assertElfError(() => parseElf(patched(elf32, (v) => v.setUint8(5, 2))), /only little-endian/);
  assertElfError(() => parseElf(patched(elf32, (v) => v.setUint16(16, 3, true))), /ELF type is 3, only executables/);
  assertElfError(() => parseElf(patched(elf64, (v) => v.setUint16(18, 183, true))), /ELF machine is 183, expected x86/);
  assertElfError(() => parseElf(patched(elf32, (v) => v.setUint32(20, 2, true))), /unsupported ELF version 2/);
});

test('rejects a program header table outside the file', () => {
  assertElfError(
    () => parseElf(patched(elf32, (v) => v.setUint32(28, elf32.length - 8, true))),
    /program header table .* extends past the end of the \d+-byte file/,
  );
  assertElfError(() => parseElf(patched(elf64, (v) => v.setUint16(56, 50, true))), /program header table/);
  assertElfError(() => parseElf(patched(elf64, (v) => v.setBigUint64(32, 1n << 60n, true))), /program header offset 0x1000000000000000 is too large/);
  assertElfError(() => parseElf(patched(elf32, (v) => v.setUint16(42, 16, true))), /entry size 16 is smaller than 32/);
});

test('rejects segments whose file data lies outside the file', () => {
  assertElfError(
    () => parseElf(patched(elf32, (v) => v.setUint32(PHDR32 + 16, 0x1000, true))),
    /segment 0 file range \[0x54, 0x1054\) extends past the end of the 92-byte file/,
  );
  assertElfError(() => parseElf(patched(elf64, (v) => v.setBigUint64(PHDR64 + 8, 0xffffn, true))), /segment 0 file range/);
  // offset + size would wrap a 32-bit sum but must still be caught
  assertElfError(
    () =>
      parseElf(
        patched(elf32, (v) => {
          v.setUint32(PHDR32 + 4, 0xfffffff0, true);
          v.setUint32(PHDR32 + 16, 0x20, true);
          v.setUint32(PHDR32 + 20, 0x20, true);
        }),
      ),
    /segment 0 file range/,
  );
});

test('rejects a segment larger in the file than in memory', () => {
  assertElfError(
    () => parseElf(patched(elf32, (v) => v.setUint32(PHDR32 + 20, 2, true))),
    /segment 0 file size 0x4 is larger than its memory size 0x2/,
  );
});

test('rejects segments that overflow the address space', () => {
  assertElfError(
    () =>
      parseElf(
        patched(elf32, (v) => {
          v.setUint32(PHDR32 + 12, 0xfffff000, true);
          v.setUint32(PHDR32 + 20, 0x2000, true);
        }),
      ),
    /segment 0 at physical 0xfffff000 with size 0x2000 overflows the address space/,
  );
  assertElfError(() => parseElf(patched(elf64, (v) => v.setBigUint64(PHDR64 + 40, 1n << 63n, true))), /segment 0 memory size 0x8000000000000000 is too large/);
});
