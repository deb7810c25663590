import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isMultiboot, loadMultiboot, type MultibootOptions } from '../../src/boot/multiboot.js';
import { MultibootError } from '../../src/boot/multiboot-kernel.js';
import { ElfError } from '../../src/boot/elf.js';
import { GuestMemory } from '../../src/memory/guest-memory.js';
import type { RamRange } from '../../src/memory/layout.js';

const MiB = 1 << 20;
const GiB = 1 << 30;
const RAM_SIZE = 16 * MiB;
const MAGIC = 0x1badb002;
const AOUT_KLUDGE = 1 << 16;

const ram16: RamRange[] = [{ gpa: 0, size: RAM_SIZE, fileOffset: 0 }];
const memoryOf = (size = RAM_SIZE) => new GuestMemory([{ gpa: 0, bytes: new Uint8Array(size) }]);
const options = (extra: Partial<MultibootOptions> = {}): MultibootOptions => ({ cmdline: '', modules: [], ram: ram16, ...extra });

/** A multiboot header: magic, flags, checksum, then the a.out kludge addresses if any are given. */
function header(flags: number, aout: number[] = []): Uint8Array {
  const out = new Uint8Array(12 + aout.length * 4);
  const v = new DataView(out.buffer);
  v.setUint32(0, MAGIC, true);
  v.setUint32(4, flags, true);
  v.setUint32(8, (-(MAGIC + flags)) >>> 0, true);
  aout.forEach((word, i) => v.setUint32(12 + i * 4, word, true));
  return out;
}

/** A raw kernel of `size` patterned bytes with `hdr` written at `at`. */
function rawKernel(size: number, at: number, hdr: Uint8Array): Uint8Array {
  const image = Uint8Array.from({ length: size }, (_, i) => (i * 7 + 1) & 0xff);
  image.set(hdr, at);
  return image;
}

/** An ELF32 (or ELF64) executable with one PT_LOAD segment holding `data`. */
function elfKernel(data: Uint8Array, opts: { paddr: number; vaddr?: number; entry: number; memSize?: number; class?: 32 | 64 }): Uint8Array {
  const is64 = opts.class === 64;
  const ehdr = is64 ? 64 : 52;
  const phdr = is64 ? 56 : 32;
  const file = new Uint8Array(ehdr + phdr + data.length);
  const v = new DataView(file.buffer);
  file.set([0x7f, 0x45, 0x4c, 0x46, is64 ? 2 : 1, 1, 1]);
  v.setUint16(16, 2, true);
  v.setUint16(18, is64 ? 62 : 3, true);
  v.setUint32(20, 1, true);
  const vaddr = opts.vaddr ?? opts.paddr;
  const memSize = opts.memSize ?? data.length;
  if (is64) {
    v.setBigUint64(24, BigInt(opts.entry), true);
    v.setBigUint64(32, BigInt(ehdr), true);
    v.setUint16(54, phdr, true);
    v.setUint16(56, 1, true);
    v.setUint32(ehdr, 1, true);
    v.setBigUint64(ehdr + 8, BigInt(ehdr + phdr), true);
    v.setBigUint64(ehdr + 16, BigInt(vaddr), true);
    v.setBigUint64(ehdr + 24, BigInt(opts.paddr), true);
    v.setBigUint64(ehdr + 32, BigInt(data.length), true);
    v.setBigUint64(ehdr + 40, BigInt(memSize), true);
  } else {
    v.setUint32(24, opts.entry, true);
    v.setUint32(28, ehdr, true);
    v.setUint16(42, phdr, true);
    v.setUint16(44, 1, true);
    v.setUint32(ehdr, 1, true);
    v.setUint32(ehdr + 4, ehdr + phdr, true);
    v.setUint32(ehdr + 8, vaddr, true);
    v.setUint32(ehdr + 12, opts.paddr, true);
    v.setUint32(ehdr + 16, data.length, true);
    v.setUint32(ehdr + 20, memSize, true);
  }
  file.set(data, ehdr + phdr);
  return file;
}

function assertMultibootError(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof MultibootError, `expected MultibootError, got ${String(err)}`);
    assert.match(err.message, message);
    return true;
  });
}

/** The a.out kludge kernel most tests use: loaded at 1 MiB, header at file offset 0x40. */
function aoutKernel(extraFlags = 0): Uint8Array {
  return rawKernel(0x1000, 0x40, header(AOUT_KLUDGE | extraFlags, [0x100040, 0x100000, 0, 0x104000, 0x100080]));
}

test('finds the header only where the spec puts it', () => {
  assert.equal(isMultiboot(aoutKernel()), true);
  assert.equal(isMultiboot(rawKernel(0x1000, 0x42, header(0))), false, 'header must be 4-byte aligned');
  assert.equal(isMultiboot(rawKernel(0x3000, 8192, header(0))), false, 'header must be in the first 8 KiB');
  assert.equal(isMultiboot(rawKernel(0x3000, 8192 - 12, header(0))), true);
  assert.equal(isMultiboot(new Uint8Array(4)), false);
});

test('reports a missing header', () => {
  assertMultibootError(() => loadMultiboot(new Uint8Array(0x4000), memoryOf(), options()), /no multiboot header in the first 8192 bytes/);
});

test('reports a bad checksum', () => {
  const bad = header(0);
  bad[8] ^= 1;
  const image = rawKernel(0x1000, 0x20, bad);
  assert.equal(isMultiboot(image), false);
  assertMultibootError(() => loadMultiboot(image, memoryOf(), options()), /multiboot header at offset 0x20 has a bad checksum/);
});

test('refuses unknown required flags but accepts the ones it can honour or ignore', () => {
  assertMultibootError(() => loadMultiboot(aoutKernel(1 << 3), memoryOf(), options()), /unsupported multiboot features \(header flags 0x8\)/);
  const boot = loadMultiboot(aoutKernel(0b111 | (1 << 20)), memoryOf(), options());
  assert.equal(boot.entry, 0x100080);
});

test('loads an a.out kludge kernel and zeroes its bss', () => {
  const image = aoutKernel();
  const memory = memoryOf();
  memory.fill(0x100000, 0x5000, 0xee);
  const boot = loadMultiboot(image, memory, options());
  assert.equal(boot.entry, 0x100080);
  assert.equal(boot.eax, 0x2badb002);
  assert.equal(boot.kernelEnd, 0x104000);
  assert.deepEqual(memory.read(0x100000, image.length), image);
  assert.ok(memory.read(0x101000, 0x3000).every((b) => b === 0), 'bss is zeroed');
  assert.equal(boot.ebx, 0x104000, 'info area starts at the first page after the kernel');
});

test('loads an a.out kludge kernel from the offset given by header_addr - load_addr', () => {
  // The header sits 0x80 bytes into the loaded text, at file offset 0x100:
  // loading starts at file offset 0x80 and stops at load_end_addr.
  const image = rawKernel(0x1000, 0x100, header(AOUT_KLUDGE, [0x200080, 0x200000, 0x200800, 0, 0x200000]));
  const memory = memoryOf();
  const boot = loadMultiboot(image, memory, options());
  assert.deepEqual(memory.read(0x200000, 0x800), image.subarray(0x80, 0x880));
  assert.equal(memory.readU8(0x200800), 0);
  assert.equal(boot.kernelEnd, 0x200800);
  assert.equal(boot.ebx, 0x201000);
});

test('rejects inconsistent a.out kludge addresses', () => {
  const kludge = (words: number[], at = 0x40) => rawKernel(0x1000, at, header(AOUT_KLUDGE, words));
  const boot = (image: Uint8Array) => () => loadMultiboot(image, memoryOf(), options());
  assertMultibootError(boot(kludge([0x100000, 0x100040, 0, 0, 0])), /load_addr 0x100040 is above header_addr 0x100000/);
  assertMultibootError(boot(kludge([0x100100, 0x100000, 0, 0, 0])), /header_addr - load_addr \(0x100\) exceeds the header's file offset 0x40/);
  assertMultibootError(boot(kludge([0x100040, 0x100000, 0xff000, 0, 0])), /load_end_addr 0xff000 is below load_addr/);
  assertMultibootError(boot(kludge([0x100040, 0x100000, 0x102000, 0, 0])), /load_end_addr 0x102000 lies past the end of the 4096-byte file/);
  assertMultibootError(boot(kludge([0x100040, 0x100000, 0, 0x100800, 0])), /bss_end_addr 0x100800 is below the end of the loaded image 0x101000/);
  assertMultibootError(boot(rawKernel(0x4c, 0x40, header(AOUT_KLUDGE))), /a.out kludge flag but its address fields are cut off/);
});

test('refuses kernels over the VGA and option-ROM area or outside RAM, leaving RAM untouched', () => {
  const at = (load: number) => rawKernel(0x1000, 0x40, header(AOUT_KLUDGE, [load + 0x40, load, 0, 0, load]));
  const memory = memoryOf();
  assertMultibootError(() => loadMultiboot(at(0x9f800), memory, options()), /kernel range \[0x9f800, 0xa0800\) overlaps the VGA and option-ROM area \[0xa0000, 0xf0000\)/);
  assertMultibootError(() => loadMultiboot(at(0xef800), memory, options()), /kernel range \[0xef800, 0xf0800\) overlaps the VGA and option-ROM area/);
  assertMultibootError(() => loadMultiboot(at(RAM_SIZE - 0x800), memory, options()), /kernel range \[0xfff800, 0x1000800\) is not inside guest RAM/);
  assert.ok(memory.read(0, RAM_SIZE).every((b) => b === 0));
});

test('an ELF kernel with a segment in the BIOS ROM area below 1 MiB loads as QEMU loads it', () => {
  // As ld lays out a kernel linked at 1 MiB without -n: the headers in the page before the code
  // (here one segment from there on; ld makes the headers a segment of their own).
  const data = Uint8Array.from({ length: 0x1010 }, (_, i) => (i * 5 + 3) & 0xff);
  data.set(header(0), 0x1000); // the multiboot header, at 1 MiB
  const memory = memoryOf();
  const boot = loadMultiboot(elfKernel(data, { paddr: 0xff000, entry: 0x100000, memSize: 0x2000 }), memory, options());
  assert.equal(boot.entry, 0x100000);
  assert.equal(boot.kernelEnd, 0x101000);
  assert.deepEqual(memory.read(0xff000, data.length), data);
  assert.ok(memory.read(0xff000 + data.length, 0x2000 - data.length).every((b) => b === 0), 'the bss is zeroed');
  assert.ok(boot.ebx >= 0x101000, 'the information area follows the kernel');
  const rom = loadMultiboot(elfKernel(header(0), { paddr: 0xf0000, entry: 0xf0000 }), memoryOf(), options());
  assert.equal(rom.entry, 0xf0000, 'a kernel wholly in the BIOS ROM area loads too');
});

test('a kernel below 640 KiB gets its information area at 1 MiB', () => {
  const image = rawKernel(0x1000, 0x40, header(AOUT_KLUDGE, [0x10040, 0x10000, 0, 0, 0x10000]));
  const boot = loadMultiboot(image, memoryOf(), options());
  assert.equal(boot.kernelEnd, 0x11000);
  assert.equal(boot.ebx, 0x100000);
});

test('loads an ELF32 kernel and translates a virtual entry point', () => {
  const text = new Uint8Array(0x100);
  text.set(header(0), 0x10);
  text[0x20] = 0xf4;
  const image = elfKernel(text, { paddr: 0x100000, vaddr: 0xc0100000, entry: 0xc0100020, memSize: 0x3000 });
  const memory = memoryOf();
  const boot = loadMultiboot(image, memory, options());
  assert.equal(boot.entry, 0x100020);
  assert.equal(boot.kernelEnd, 0x103000);
  assert.equal(boot.ebx, 0x103000);
  assert.deepEqual(memory.read(0x100000, text.length), text);
});

test('keeps an ELF entry point that no segment maps', () => {
  const image = elfKernel(header(0), { paddr: 0x100000, entry: 0x400000 });
  assert.equal(loadMultiboot(image, memoryOf(), options()).entry, 0x400000);
});

test('refuses 64-bit ELF kernels without the a.out kludge', () => {
  const image = elfKernel(header(0), { paddr: 0x100000, entry: 0x100000, class: 64 });
  assert.equal(isMultiboot(image), true);
  assertMultibootError(() => loadMultiboot(image, memoryOf(), options()), /64-bit ELF kernels cannot be booted with multiboot/);
});

test('passes ELF errors through', () => {
  const image = elfKernel(header(0), { paddr: 0x100000, entry: 0x100000, memSize: 4 });
  assert.throws(() => loadMultiboot(image, memoryOf(), options()), ElfError);
});

test('fills in the information structure', () => {
  const memory = memoryOf();
  const boot = loadMultiboot(aoutKernel(), memory, options({ cmdline: 'console=ttyS0 débug' }));
  const info = boot.ebx;
  assert.equal(info % 4096, 0);
  assert.ok(info >= boot.kernelEnd);
  assert.equal(memory.readU32(info), 0x24d, 'flags: MEM, CMDLINE, MODS, MMAP, BOOT_LOADER_NAME');
  assert.equal(memory.readU32(info + 4), 639);
  assert.equal(memory.readU32(info + 8), (RAM_SIZE - MiB) / 1024);
  assert.equal(memory.readU32(info + 12), 0, 'no boot device');
  assert.equal(Buffer.from(memory.read(memory.readU32(info + 16), 21)).toString('utf8'), 'console=ttyS0 débug\0');
  assert.equal(memory.readU32(info + 20), 0, 'no modules');
  assert.equal(memory.readCString(memory.readU32(info + 64)), 'tsvmm');
  for (const field of [info + 16, info + 24, info + 48, info + 64]) {
    const gpa = memory.readU32(field);
    assert.ok(gpa > info && gpa < info + 4096, `field at +${field - info} points into the information area`);
  }
});

test('honours a custom boot loader name', () => {
  const memory = memoryOf();
  const boot = loadMultiboot(aoutKernel(), memory, options({ bootloaderName: 'test loader' }));
  assert.equal(memory.readCString(memory.readU32(boot.ebx + 64)), 'test loader');
});

function readMemoryMap(memory: GuestMemory, info: number): [number, number, number][] {
  const length = memory.readU32(info + 44);
  const addr = memory.readU32(info + 48);
  const entries: [number, number, number][] = [];
  for (let at = addr; at < addr + length; at += 4 + memory.readU32(at)) {
    assert.equal(memory.readU32(at), 20);
    entries.push([Number(memory.readU64(at + 4)), Number(memory.readU64(at + 12)), memory.readU32(at + 20)]);
  }
  return entries;
}

test('describes RAM in the memory map', () => {
  const memory = memoryOf();
  const boot = loadMultiboot(aoutKernel(), memory, options());
  assert.deepEqual(readMemoryMap(memory, boot.ebx), [
    [0, 0x9fc00, 1],
    [0x9fc00, 0x400, 2],
    [0xf0000, 0x10000, 2],
    [0x100000, RAM_SIZE - MiB, 1],
  ]);
});

test('lists RAM above the MMIO hole in the memory map', () => {
  const memory = memoryOf();
  const ram: RamRange[] = [
    { gpa: 4 * GiB, size: GiB, fileOffset: RAM_SIZE },
    { gpa: 0, size: RAM_SIZE, fileOffset: 0 },
  ];
  const boot = loadMultiboot(aoutKernel(), memory, options({ ram }));
  assert.deepEqual(readMemoryMap(memory, boot.ebx).slice(3), [
    [0x100000, RAM_SIZE - MiB, 1],
    [4 * GiB, GiB, 1],
  ]);
  assert.equal(memory.readU32(boot.ebx + 8), (RAM_SIZE - MiB) / 1024, 'mem_upper stops at the first range');
});

test('refuses a RAM map without enough low memory', () => {
  const bootWith = (ram: RamRange[]) => () => loadMultiboot(aoutKernel(), memoryOf(), options({ ram }));
  assertMultibootError(bootWith([{ gpa: 4 * GiB, size: GiB, fileOffset: 0 }]), /RAM range starting at address 0/);
  assertMultibootError(bootWith([{ gpa: 0, size: MiB, fileOffset: 0 }]), /more than 1 MiB of RAM/);
});

test('places modules page-aligned after the information area', () => {
  const modules = [
    { data: Uint8Array.from({ length: 5000 }, (_, i) => i & 0xff), cmdline: 'initrd.img root=/dev/vda' },
    { data: new Uint8Array([0xde, 0xad]), cmdline: '' },
  ];
  const memory = memoryOf();
  const boot = loadMultiboot(aoutKernel(), memory, options({ cmdline: 'kernel', modules }));
  const info = boot.ebx;
  assert.equal(memory.readU32(info + 20), 2);
  const list = memory.readU32(info + 24);
  const entries = modules.map((_, i) => [0, 4, 8, 12].map((field) => memory.readU32(list + i * 16 + field)));

  const [first, second] = entries;
  assert.equal(first[0], info + 4096, 'first module starts at the page after the information area');
  assert.equal(first[1], first[0] + 5000);
  assert.equal(memory.readCString(first[2]), 'initrd.img root=/dev/vda');
  assert.equal(first[3], 0);
  assert.equal(second[0], first[0] + 8192);
  assert.equal(second[1], second[0] + 2);
  assert.equal(memory.readCString(second[2]), '');
  assert.ok(second[2] < first[0], 'module strings live in the information area');
  assert.deepEqual(memory.read(first[0], 5000), modules[0].data);
  assert.deepEqual(memory.read(second[0], 2), modules[1].data);
  assert.equal(memory.readCString(memory.readU32(info + 16)), 'kernel');
});

test('refuses modules that do not fit in RAM, leaving RAM untouched', () => {
  const memory = memoryOf(4 * MiB);
  const ram: RamRange[] = [{ gpa: 0, size: 4 * MiB, fileOffset: 0 }];
  const modules = [{ data: new Uint8Array(3 * MiB), cmdline: 'big' }];
  assertMultibootError(
    () => loadMultiboot(aoutKernel(), memory, options({ ram, modules })),
    /multiboot information and modules \[0x104000, 0x405000\) do not fit in guest RAM below 4 GiB/,
  );
  assert.ok(memory.read(0, 4 * MiB).every((b) => b === 0));
});

test('refuses strings with NUL characters', () => {
  assertMultibootError(() => loadMultiboot(aoutKernel(), memoryOf(), options({ cmdline: 'a\0b' })), /kernel command line contains a NUL character/);
});
