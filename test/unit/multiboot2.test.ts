import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { isMultiboot2, loadMultiboot2, type Multiboot2Options } from '../../src/boot/multiboot2.js';
import { MultibootError } from '../../src/boot/multiboot-kernel.js';
import { GuestMemory } from '../../src/memory/guest-memory.js';
import type { RamRange } from '../../src/memory/layout.js';
import { rsdp } from '../../src/acpi/rsdp.js';
import { assemble } from '../../src/tools/assembler.js';

const GUESTS = fileURLToPath(new URL('../../../test/guests/', import.meta.url));
const MiB = 1 << 20;
const RAM_SIZE = 16 * MiB;
const MAGIC = 0xe85250d6;
const LOAD = 0x100000;
const OPTIONAL = 1;

const ram16: RamRange[] = [{ gpa: 0, size: RAM_SIZE, fileOffset: 0 }];
const memoryOf = () => new GuestMemory([{ gpa: 0, bytes: new Uint8Array(RAM_SIZE) }]);
const options = (extra: Partial<Multiboot2Options> = {}): Multiboot2Options => ({ cmdline: '', modules: [], ram: ram16, ...extra });

interface Tag {
  type: number;
  flags?: number;
  words?: number[];
}

/** A header with `tags` (the end tag added), each padded to 8 bytes. */
function header(tags: Tag[], architecture = 0): Uint8Array {
  const parts = [...tags, { type: 0 }].map(({ type, flags = 0, words = [] }) => {
    const size = 8 + words.length * 4;
    const bytes = new Uint8Array(Math.ceil(size / 8) * 8);
    const v = new DataView(bytes.buffer);
    v.setUint16(0, type, true);
    v.setUint16(2, flags, true);
    v.setUint32(4, size, true);
    words.forEach((w, i) => v.setUint32(8 + i * 4, w, true));
    return bytes;
  });
  const length = 16 + parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(length);
  const v = new DataView(out.buffer);
  v.setUint32(0, MAGIC, true);
  v.setUint32(4, architecture, true);
  v.setUint32(8, length, true);
  v.setUint32(12, (-(MAGIC + architecture + length)) >>> 0, true);
  let at = 16;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const addressTag = (bssEnd = 0): Tag => ({ type: 2, words: [LOAD, 0xffffffff, 0, bssEnd] });
const entryTag: Tag = { type: 3, words: [LOAD + 0x100] };

/** A flat kernel: `tags` at file offset 0, loaded at 1 MiB by its address tag, 4 KiB long. */
function flatKernel(tags: Tag[] = [addressTag(), entryTag]): Uint8Array {
  const image = Uint8Array.from({ length: 0x1000 }, (_, i) => (i * 5 + 3) & 0xff);
  image.set(header(tags));
  return image;
}

function assertRefused(image: Uint8Array, message: RegExp, extra: Partial<Multiboot2Options> = {}): void {
  const memory = memoryOf();
  assert.throws(() => loadMultiboot2(image, memory, options(extra)), (err: unknown) => {
    assert.ok(err instanceof MultibootError, `expected MultibootError, got ${String(err)}`);
    assert.match(err.message, message);
    return true;
  });
  assert.ok(memory.read(0, 2 * MiB).every((b) => b === 0), 'nothing written to guest RAM');
}

/** The boot information's tags: type and the bytes after the 8-byte tag header. */
function readTags(memory: GuestMemory, info: number): { type: number; at: number; size: number }[] {
  const total = memory.readU32(info);
  const tags: { type: number; at: number; size: number }[] = [];
  for (let at = info + 8; ; ) {
    const type = memory.readU32(at);
    const size = memory.readU32(at + 4);
    assert.equal(at % 8, 0, 'tags are 8-byte aligned');
    if (type === 0) {
      assert.equal(size, 8);
      assert.equal(at + 8 - info, total, 'total_size counts up to the end tag');
      return tags;
    }
    tags.push({ type, at, size });
    at += Math.ceil(size / 8) * 8;
  }
}

test('finds the header only 8-byte aligned, in the first 32 KiB, with a good checksum', () => {
  const at = (offset: number, bytes = header([])) => {
    const image = new Uint8Array(0x9000);
    image.set(bytes, offset);
    return image;
  };
  assert.equal(isMultiboot2(at(0x100)), true);
  assert.equal(isMultiboot2(at(0x104)), false, 'not 8-byte aligned');
  assert.equal(isMultiboot2(at(32768 - 16)), true);
  assert.equal(isMultiboot2(at(32768)), false, 'beyond 32 KiB');
  const bad = header([]);
  bad[12] ^= 1;
  assert.equal(isMultiboot2(at(0, bad)), false);
  assertRefused(at(0, bad), /multiboot2 header at offset 0x0 has a bad checksum/);
  assertRefused(new Uint8Array(64), /no multiboot2 header in the first 32768 bytes/);
});

test('a flat kernel: loaded by its address tag, entered at its entry tag with the magic', () => {
  const memory = memoryOf();
  const image = flatKernel([addressTag(LOAD + 0x3000), entryTag]);
  const boot = loadMultiboot2(image, memory, options({ cmdline: 'console=ttyS0 é' }));
  assert.equal(boot.eax, 0x36d76289);
  assert.equal(boot.entry, LOAD + 0x100);
  assert.equal(boot.kernelEnd, LOAD + 0x3000);
  assert.deepEqual(memory.read(LOAD, image.length), image, 'load_addr -1: from the file\'s first byte');
  assert.ok(memory.read(LOAD + image.length, 0x2000).every((b) => b === 0), 'bss zeroed');
  assert.equal(boot.ebx, LOAD + 0x3000, 'information in the page after the kernel');
  const tags = readTags(memory, boot.ebx);
  assert.deepEqual(tags.map((t) => t.type), [1, 2, 4, 6], 'command line, loader name, basic memory, memory map; no ELF sections, no ACPI');
  assert.equal(Buffer.from(memory.read(tags[0].at + 8, tags[0].size - 8)).toString('utf8'), 'console=ttyS0 é\0');
  assert.equal(memory.readCString(tags[1].at + 8), 'tsvmm');
  assert.deepEqual([memory.readU32(tags[2].at + 8), memory.readU32(tags[2].at + 12)], [639, (RAM_SIZE - MiB) / 1024]);
  const mmap = tags[3];
  assert.deepEqual([memory.readU32(mmap.at + 8), memory.readU32(mmap.at + 12)], [24, 0]);
  const entries = [];
  for (let at = mmap.at + 16; at < mmap.at + mmap.size; at += 24) {
    entries.push([Number(memory.readU64(at)), Number(memory.readU64(at + 8)), memory.readU32(at + 16)]);
  }
  assert.deepEqual(entries, [[0, 0x9fc00, 1], [0x9fc00, 0x400, 2], [0xf0000, 0x10000, 2], [MiB, RAM_SIZE - MiB, 1]]);
});

test('modules: one tag each, page-aligned after the information, their bytes and command lines', () => {
  const memory = memoryOf();
  const modules = [
    { data: Uint8Array.from({ length: 5000 }, (_, i) => i & 0xff), cmdline: 'root=/dev/vda' },
    { data: new Uint8Array([0xde, 0xad]), cmdline: '' },
  ];
  const boot = loadMultiboot2(flatKernel(), memory, options({ modules }));
  const tags = readTags(memory, boot.ebx).filter((t) => t.type === 3);
  assert.equal(tags.length, 2);
  const [first, second] = tags.map((t) => ({ start: memory.readU32(t.at + 8), end: memory.readU32(t.at + 12), cmdline: memory.readCString(t.at + 16) }));
  assert.equal(first.start % 4096, 0);
  assert.ok(first.start > boot.ebx);
  assert.deepEqual(first, { start: first.start, end: first.start + 5000, cmdline: 'root=/dev/vda' });
  assert.deepEqual(second, { start: first.start + 8192, end: first.start + 8194, cmdline: '' });
  assert.deepEqual(memory.read(first.start, 5000), modules[0].data);
  assert.deepEqual(memory.read(second.start, 2), modules[1].data);
});

test('the RSDP, when the machine has one, in the old (20 bytes) and new (36 bytes) ACPI tags', () => {
  const memory = memoryOf();
  const table = rsdp(0xe0040);
  const boot = loadMultiboot2(flatKernel(), memory, options({ rsdp: table }));
  const tags = readTags(memory, boot.ebx);
  const old = tags.find((t) => t.type === 14)!;
  const fresh = tags.find((t) => t.type === 15)!;
  assert.deepEqual([old.size, fresh.size], [8 + 20, 8 + 36]);
  assert.deepEqual(memory.read(old.at + 8, 20), table.subarray(0, 20));
  assert.deepEqual(memory.read(fresh.at + 8, 36), table);
});

test('an ELF kernel: its section headers, the sections it does not load put in RAM and pointed at', () => {
  const image = assemble(`${GUESTS}mb2-elf.s`, { address: LOAD, format: 'elf32' });
  const memory = memoryOf();
  const boot = loadMultiboot2(image, memory, options({ rsdp: rsdp(0xe0040) }));
  const tag = readTags(memory, boot.ebx).find((t) => t.type === 9)!;
  const [num, entsize, shndx] = [8, 12, 16].map((o) => memory.readU32(tag.at + o));
  assert.equal(entsize, 40);
  const file = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const shoff = file.getUint32(32, true);
  assert.equal(num, file.getUint16(48, true));
  assert.equal(shndx, file.getUint16(50, true));
  const header = (i: number) => tag.at + 20 + i * entsize;
  for (let i = 1; i < num; i++) {
    const [type, flags, addr, offset, size] = [4, 8, 12, 16, 20].map((o) => memory.readU32(header(i) + o));
    assert.deepEqual([type, flags, offset, size], [4, 8, 16, 20].map((o) => file.getUint32(shoff + i * 40 + o, true)), `section ${i} header copied`);
    assert.notEqual(addr, 0, `section ${i} has an address`);
    if (type !== 8 /* NOBITS */) assert.deepEqual(memory.read(addr, size), Uint8Array.from(image.subarray(offset, offset + size)), `section ${i} contents at its address`);
  }
  const names = memory.readU32(header(shndx) + 12);
  assert.equal(memory.readCString(names + memory.readU32(header(shndx))), '.shstrtab');
});

test('an ELF64 kernel is taken, as GRUB takes it', () => {
  // ELF64 header, one PT_LOAD of 0x40 bytes at 1 MiB holding a multiboot2 header.
  const hdr = header([]);
  const file = new Uint8Array(64 + 56 + 0x40);
  const v = new DataView(file.buffer);
  file.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  v.setUint16(16, 2, true);
  v.setUint16(18, 62, true);
  v.setUint32(20, 1, true);
  v.setBigUint64(24, BigInt(LOAD), true);
  v.setBigUint64(32, 64n, true);
  v.setUint16(54, 56, true);
  v.setUint16(56, 1, true);
  v.setUint32(64, 1, true);
  v.setBigUint64(64 + 8, 120n, true);
  v.setBigUint64(64 + 16, BigInt(LOAD), true);
  v.setBigUint64(64 + 24, BigInt(LOAD), true);
  v.setBigUint64(64 + 32, 0x40n, true);
  v.setBigUint64(64 + 40, 0x40n, true);
  file.set(hdr, 120);
  const memory = memoryOf();
  const boot = loadMultiboot2(file, memory, options());
  assert.equal(boot.entry, LOAD);
  assert.deepEqual(memory.read(LOAD, hdr.length), hdr);
});

test('optional tags it cannot honour are skipped; required ones refused, naming the tag', () => {
  const memory = memoryOf();
  const optional = [{ type: 5, flags: OPTIONAL, words: [0, 0, 0] }, { type: 7, flags: OPTIONAL }, { type: 99, flags: OPTIONAL }, { type: 1, flags: OPTIONAL, words: [8] }];
  assert.doesNotThrow(() => loadMultiboot2(flatKernel([addressTag(), entryTag, ...optional]), memory, options()));
  // Module alignment, console flags without "required", the EFI entry points and relocation need nothing.
  const harmless = [{ type: 6 }, { type: 4, words: [2] }, { type: 8, words: [0] }, { type: 9, words: [0] }, { type: 10, words: [0, 0, 0, 0] }];
  assert.doesNotThrow(() => loadMultiboot2(flatKernel([addressTag(), entryTag, ...harmless]), memoryOf(), options()));

  const refused = (tag: Tag, message: RegExp) => assertRefused(flatKernel([addressTag(), entryTag, tag]), message);
  refused({ type: 5, words: [1024, 768, 32] }, /requires a framebuffer, which tsvmm has not \(header tag 5; mark it optional/);
  refused({ type: 7 }, /requires EFI boot services/);
  refused({ type: 4, words: [1] }, /requires an EGA text console/);
  refused({ type: 99 }, /header tag type 99, which tsvmm does not know/);
  refused({ type: 1, words: [1, 8] }, /requires boot information tag 8 \(framebuffer info\), which tsvmm does not provide/);
  refused({ type: 1, words: [14] }, /requires boot information tag 14 \(ACPI old RSDP \(given with ACPI tables\)\)/);
  refused({ type: 1, words: [9] }, /boot information tag 9/);
  assert.doesNotThrow(() => loadMultiboot2(flatKernel([addressTag(), entryTag, { type: 1, words: [1, 2, 3, 4, 6, 14, 15] }]), memoryOf(), options({ rsdp: rsdp(0) })));
});

test('refuses malformed headers in one sentence', () => {
  assertRefused(flatKernel([addressTag()]), /address tag but no entry address tag/);
  assertRefused(flatKernel([{ type: 2, words: [LOAD] }, entryTag]), /multiboot2 address tag at offset 0x10 is too short/);
  const image = new Uint8Array(0x1000);
  image.set(header([], 4));
  assertRefused(image, /is for architecture 4, not i386 \(0\)/);
  const noEnd = header([entryTag]);
  new DataView(noEnd.buffer).setUint16(32, 3, true); // the end tag becomes another entry tag
  const unterminated = new Uint8Array(0x1000);
  unterminated.set(noEnd);
  assertRefused(unterminated, /tags run past header_length without an end tag|has size/);
  assertRefused(flatKernel([{ type: 2, words: [LOAD, LOAD + 0x10, 0, 0] }, entryTag]), /multiboot2 address tag load_addr 0x100010 is above header_addr 0x100000/);
});
