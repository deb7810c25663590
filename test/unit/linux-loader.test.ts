import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { E820_ACPI, E820_RAM, E820_RESERVED } from '../../src/boot/linux/e820.js';
import { LinuxImageError, LinuxLoadError } from '../../src/boot/linux/errors.js';
import {
  BOOT_PARAMS_ADDRESS,
  CMDLINE_ADDRESS,
  describeLinuxImage,
  loadLinux,
  type LinuxLoadOptions,
} from '../../src/boot/linux/linux-loader.js';
import { GuestMemory } from '../../src/memory/guest-memory.js';
import { planRam } from '../../src/memory/layout.js';

const MiB = 1 << 20;
const RAM_SIZE = 64 * MiB;
const KERNEL_PADDR = 16 * MiB;
const KERNEL_VADDR = 0xffffffff81000000n;
const PVH_ENTRY = KERNEL_PADDR + 0x850;
const BSS_SIZE = 0x3000;
const RELEASE = '9.9.9-test (tsvmm@example) #1 SMP';
const BANNER = `Linux version 9.9.9-test (tsvmm@example) (gcc) #1 SMP PREEMPT\n`;

const newMemory = (size = RAM_SIZE) => {
  const ram = planRam(size);
  return { ram, memory: new GuestMemory(ram.map((r) => ({ gpa: r.gpa, bytes: new Uint8Array(r.size) }))) };
};
const pattern = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 13 + 5) & 0xff);

/** The kernel's text: a patterned page with the banner in it. */
function kernelText(): Uint8Array {
  const text = pattern(0x2000);
  text.set(Buffer.from(BANNER + '\0'), 0x1000);
  return text;
}

/** An ELF64 vmlinux: one PT_LOAD of kernelText() at 16 MiB (plus bss), and optionally the PVH note. */
function vmlinux(options: { pvh?: boolean } = {}): Uint8Array {
  const text = kernelText();
  const note = new Uint8Array(12 + 4 + 8);
  const nv = new DataView(note.buffer);
  nv.setUint32(0, 4, true);
  nv.setUint32(4, 8, true);
  nv.setUint32(8, 18, true);
  note.set(Buffer.from('Xen\0'), 12);
  nv.setBigUint64(16, BigInt(PVH_ENTRY), true);

  const phnum = options.pvh ? 2 : 1;
  const textOffset = 0x1000;
  const noteOffset = textOffset + text.length;
  const file = new Uint8Array(noteOffset + note.length);
  const v = new DataView(file.buffer);
  file.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  v.setUint16(16, 2, true); // ET_EXEC
  v.setUint16(18, 62, true); // EM_X86_64
  v.setUint32(20, 1, true);
  v.setBigUint64(24, BigInt(KERNEL_PADDR), true); // e_entry: physical startup_64
  v.setBigUint64(32, 64n, true);
  v.setUint16(52, 64, true);
  v.setUint16(54, 56, true);
  v.setUint16(56, phnum, true);
  const phdr = (at: number, type: number, offset: number, vaddr: bigint, paddr: number, fileSize: number, memSize: number) => {
    v.setUint32(at, type, true);
    v.setUint32(at + 4, 5, true);
    v.setBigUint64(at + 8, BigInt(offset), true);
    v.setBigUint64(at + 16, vaddr, true);
    v.setBigUint64(at + 24, BigInt(paddr), true);
    v.setBigUint64(at + 32, BigInt(fileSize), true);
    v.setBigUint64(at + 40, BigInt(memSize), true);
    v.setBigUint64(at + 48, 4n, true);
  };
  phdr(64, 1, textOffset, KERNEL_VADDR, KERNEL_PADDR, text.length, text.length + BSS_SIZE);
  if (options.pvh) phdr(64 + 56, 4, noteOffset, 0n, 0, note.length, note.length);
  file.set(text, textOffset);
  file.set(note, noteOffset);
  return file;
}

/** An LZ4 legacy stream of one literals-only block, with the decompressed size appended as the kernel build does. */
function lz4Payload(data: Uint8Array): Uint8Array {
  const rest = data.length - 15;
  const block = Uint8Array.of(0xf0, ...new Array(Math.floor(rest / 255)).fill(255), rest % 255, ...data);
  const out = new Uint8Array(8 + block.length + 4);
  const v = new DataView(out.buffer);
  v.setUint32(0, 0x184c2102, true);
  v.setUint32(4, block.length, true);
  out.set(block, 8);
  v.setUint32(8 + block.length, data.length, true);
  return out;
}

interface BzOptions {
  payload?: Uint8Array;
  version?: number;
  xloadflags?: number;
  relocatable?: boolean;
  prefAddress?: number;
  initSize?: number;
  cmdlineSize?: number;
  initrdAddrMax?: number;
}

const SETUP_SECTS = 4;
const SETUP_SIZE = (SETUP_SECTS + 1) * 512;
/** Where the payload starts in the protected-mode kernel: after a fake decompressor. */
const PAYLOAD_OFFSET = 0x300;
const ROOT_DEV_MARK = 0x0801;

/** A bzImage whose fields are written at boot.rst's offsets, independently of the loader's struct. */
function bzImage(o: BzOptions = {}): Uint8Array {
  const payload = o.payload ?? gzipSync(vmlinux({ pvh: true }));
  // The build pads the protected-mode kernel to whole 16-byte paragraphs (syssize).
  const protectedMode = new Uint8Array(Math.ceil((PAYLOAD_OFFSET + payload.length + 0x40) / 16) * 16);
  protectedMode.set(pattern(PAYLOAD_OFFSET));
  protectedMode.set(payload, PAYLOAD_OFFSET);
  const file = new Uint8Array(SETUP_SIZE + protectedMode.length);
  file.set(protectedMode, SETUP_SIZE);
  const v = new DataView(file.buffer);
  file[0x1f1] = SETUP_SECTS;
  v.setUint32(0x1f4, protectedMode.length / 16, true);
  v.setUint16(0x1fc, ROOT_DEV_MARK, true);
  v.setUint16(0x1fe, 0xaa55, true);
  file.set([0xeb, 0x6a], 0x200); // jmp to 0x26c: the end of the 2.15 header
  file.set(Buffer.from('HdrS'), 0x202);
  v.setUint16(0x206, o.version ?? 0x020f, true);
  const release = 0x600;
  file.set(Buffer.from(RELEASE + '\0'), release);
  v.setUint16(0x20e, release - 0x200, true);
  file[0x211] = 0x01; // LOADED_HIGH
  v.setUint32(0x214, 0x100000, true);
  v.setUint32(0x22c, o.initrdAddrMax ?? 0x7fffffff, true);
  v.setUint32(0x230, 0x200000, true);
  file[0x234] = o.relocatable === false ? 0 : 1;
  v.setUint16(0x236, o.xloadflags ?? 0x7f, true);
  v.setUint32(0x238, o.cmdlineSize ?? 2047, true);
  v.setUint32(0x248, PAYLOAD_OFFSET, true);
  v.setUint32(0x24c, payload.length, true);
  v.setBigUint64(0x258, BigInt(o.prefAddress ?? KERNEL_PADDR), true);
  v.setUint32(0x260, o.initSize ?? 0x400000, true);
  return file;
}

const options = (ram: LinuxLoadOptions['ram'], extra: Partial<LinuxLoadOptions> = {}): LinuxLoadOptions => ({
  ram,
  cmdline: 'console=ttyS0 panic=-1',
  ...extra,
});

const zeroPage = (memory: GuestMemory) => {
  const page = memory.read(BOOT_PARAMS_ADDRESS, 4096);
  return { page, v: new DataView(page.buffer) };
};

function e820Of(memory: GuestMemory): { addr: number; size: number; type: number }[] {
  const { page, v } = zeroPage(memory);
  return Array.from({ length: page[0x1e8] }, (_, i) => ({
    addr: Number(v.getBigUint64(0x2d0 + i * 20, true)),
    size: Number(v.getBigUint64(0x2d0 + i * 20 + 8, true)),
    type: v.getUint32(0x2d0 + i * 20 + 16, true),
  }));
}

function refuses(fn: () => unknown, kind: typeof LinuxImageError | typeof LinuxLoadError, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof kind, `expected ${kind.name}, got ${String(e)}`);
    assert.match(e.message, message);
    assert.ok(!e.message.includes('\n'), 'one line');
    return true;
  });
}

test('describeLinuxImage reports a bzImage without decompressing it', () => {
  const file = bzImage();
  const info = describeLinuxImage(file);
  assert.equal(info.format, 'bzImage');
  assert.equal(info.protocol, '2.15');
  assert.equal(info.compression, 'gzip');
  assert.equal(info.release, RELEASE);
  assert.equal(info.decompressedSize, vmlinux({ pvh: true }).length);
  assert.equal(info.relocatable, true);
  assert.equal(info.prefAddress, KERNEL_PADDR);
  assert.equal(info.cmdlineSize, 2047);

  const elf = describeLinuxImage(vmlinux({ pvh: true }));
  assert.deepEqual(
    { format: elf.format, entry: elf.entry, pvhEntry: elf.pvhEntry, loadStart: elf.loadStart, loadEnd: elf.loadEnd },
    { format: 'vmlinux', entry: KERNEL_PADDR, pvhEntry: PVH_ENTRY, loadStart: KERNEL_PADDR, loadEnd: KERNEL_PADDR + 0x2000 + BSS_SIZE },
  );
  assert.equal(elf.release, '9.9.9-test (tsvmm@example) (gcc) #1 SMP PREEMPT');
});

test('a gzip bzImage is decompressed on the host and its vmlinux loaded at 16 MiB with a full zero page', () => {
  const { ram, memory } = newMemory();
  memory.fill(KERNEL_PADDR + 0x2000, BSS_SIZE, 0xee); // the bss must come out zeroed
  const initrd = pattern(100_000);
  const boot = loadLinux(bzImage(), memory, options(ram, { initrd, rsdpAddress: 0xe0000 }));

  assert.equal(boot.format, 'bzImage');
  assert.equal(boot.compression, 'gzip');
  assert.equal(boot.protocol, '64bit');
  assert.equal(boot.entry, KERNEL_PADDR);
  assert.equal(boot.bootParams, BOOT_PARAMS_ADDRESS);
  assert.equal(boot.release, RELEASE);
  assert.equal(boot.pvhEntry, PVH_ENTRY);
  assert.equal(boot.kernelStart, KERNEL_PADDR);
  assert.equal(boot.kernelEnd, KERNEL_PADDR + 0x2000 + BSS_SIZE);
  assert.deepEqual(memory.read(KERNEL_PADDR, 0x2000), kernelText());
  assert.ok(memory.read(KERNEL_PADDR + 0x2000, BSS_SIZE).every((b) => b === 0));

  const { page, v } = zeroPage(memory);
  // Copied from the image's header...
  assert.equal(v.getUint16(0x1fc, true), ROOT_DEV_MARK);
  assert.equal(v.getUint16(0x1fe, true), 0xaa55);
  assert.equal(Buffer.from(page.subarray(0x202, 0x206)).toString('latin1'), 'HdrS');
  assert.equal(v.getUint16(0x206, true), 0x020f);
  assert.equal(v.getUint16(0x236, true), 0x7f);
  assert.equal(v.getBigUint64(0x258, true), BigInt(KERNEL_PADDR));
  // ...and filled in by the loader.
  assert.equal(page[0x210], 0xff, 'type_of_loader');
  assert.equal(page[0x211], 0x81, 'loadflags: LOADED_HIGH kept, CAN_USE_HEAP set');
  assert.equal(v.getUint16(0x224, true), 0xfe00, 'heap_end_ptr');
  assert.equal(v.getUint32(0x228, true), CMDLINE_ADDRESS);
  assert.equal(v.getUint32(0x0c8, true), 0);
  assert.equal(memory.readCString(CMDLINE_ADDRESS), 'console=ttyS0 panic=-1');
  assert.equal(v.getBigUint64(0x070, true), 0xe0000n, 'acpi_rsdp_addr');
  assert.equal(page[0x1ef], 0, 'sentinel');

  const initrdAddress = Math.floor((RAM_SIZE - initrd.length) / 4096) * 4096;
  assert.deepEqual(boot.initrd, { address: initrdAddress, size: initrd.length });
  assert.equal(v.getUint32(0x218, true), initrdAddress);
  assert.equal(v.getUint32(0x21c, true), initrd.length);
  assert.equal(v.getUint32(0x0c0, true), 0);
  assert.deepEqual(memory.read(initrdAddress, initrd.length), initrd);

  assert.deepEqual(e820Of(memory), [
    { addr: 0, size: 0x9fc00, type: E820_RAM },
    { addr: 0x9fc00, size: 0x100000 - 0x9fc00, type: E820_RESERVED },
    { addr: 0x100000, size: RAM_SIZE - 0x100000, type: E820_RAM },
  ]);
  assert.deepEqual(boot.e820, e820Of(memory));
});

test('an LZ4 bzImage (the Debian kernel format) is decompressed on the host', () => {
  const { ram, memory } = newMemory();
  const boot = loadLinux(bzImage({ payload: lz4Payload(vmlinux()) }), memory, options(ram));
  assert.equal(boot.compression, 'lz4');
  assert.equal(boot.entry, KERNEL_PADDR);
  assert.equal(boot.pvhEntry, undefined);
  assert.deepEqual(memory.read(KERNEL_PADDR, 0x2000), kernelText());
});

test('reserved ranges appear in the map and push the initrd below them', () => {
  const { ram, memory } = newMemory();
  const acpi = { start: RAM_SIZE - 64 * 1024, end: RAM_SIZE, type: E820_ACPI };
  const initrd = pattern(8192);
  const boot = loadLinux(bzImage(), memory, options(ram, { initrd, reserved: [acpi] }));
  assert.equal(boot.initrd?.address, acpi.start - 8192);
  assert.deepEqual(e820Of(memory).slice(-2), [
    { addr: 0x100000, size: acpi.start - 0x100000, type: E820_RAM },
    { addr: acpi.start, size: 64 * 1024, type: E820_ACPI },
  ]);
});

test('the initrd stays below initrd_addr_max', () => {
  const { ram, memory } = newMemory();
  const boot = loadLinux(bzImage({ initrdAddrMax: 0x2ffffff }), memory, options(ram, { initrd: pattern(5000) }));
  assert.equal(boot.initrd?.address, Math.floor((0x3000000 - 5000) / 4096) * 4096);
});

test("decompress: 'guest' loads the protected-mode kernel and enters it at +0x200", () => {
  const file = bzImage({ initSize: 0x800000 });
  const { ram, memory } = newMemory();
  const boot = loadLinux(file, memory, options(ram, { decompress: 'guest', initrd: pattern(4096) }));
  // Relocatable: loaded where it will run, pref_address.
  assert.equal(boot.entry, KERNEL_PADDR + 0x200);
  assert.equal(boot.compression, 'gzip');
  assert.deepEqual(memory.read(KERNEL_PADDR, file.length - SETUP_SIZE), file.subarray(SETUP_SIZE));
  assert.equal(boot.kernelEnd, KERNEL_PADDR + 0x800000, 'init_size from the run address');
  assert.equal(zeroPage(memory).page[0x210], 0xff);

  const fixed = bzImage({ relocatable: false });
  const second = newMemory();
  const fixedBoot = loadLinux(fixed, second.memory, options(second.ram, { decompress: 'guest' }));
  assert.equal(fixedBoot.entry, 0x100000 + 0x200);
  assert.equal(fixedBoot.kernelStart, 0x100000);
  assert.equal(fixedBoot.kernelEnd, KERNEL_PADDR + 0x400000, 'it decompresses to pref_address');
  assert.deepEqual(second.memory.read(0x100000, fixed.length - SETUP_SIZE), fixed.subarray(SETUP_SIZE));
});

test('an ELF vmlinux is loaded as it is, with a header made for it', () => {
  const { ram, memory } = newMemory();
  const boot = loadLinux(vmlinux(), memory, options(ram));
  assert.equal(boot.format, 'vmlinux');
  assert.equal(boot.compression, undefined);
  assert.equal(boot.entry, KERNEL_PADDR);
  assert.equal(boot.release, '9.9.9-test (tsvmm@example) (gcc) #1 SMP PREEMPT');
  const { page, v } = zeroPage(memory);
  assert.equal(v.getUint16(0x1fe, true), 0xaa55);
  assert.equal(Buffer.from(page.subarray(0x202, 0x206)).toString('latin1'), 'HdrS');
  assert.equal(page[0x210], 0xff);
  assert.equal(v.getUint32(0x228, true), CMDLINE_ADDRESS);
  assert.equal(page[0x1e8], 3);
  refuses(() => loadLinux(vmlinux(), newMemory().memory, options(ram, { cmdline: 'x'.repeat(2048) })), LinuxLoadError, /2048 bytes, the kernel accepts at most 2047/);
  refuses(() => loadLinux(vmlinux(), newMemory().memory, options(ram, { decompress: 'guest' })), LinuxLoadError, /needs a bzImage/);
});

test('PVH boot enters the note address with an hvm_start_info', () => {
  const { ram, memory } = newMemory();
  const initrd = pattern(3000);
  const boot = loadLinux(bzImage(), memory, options(ram, { protocol: 'pvh', initrd, rsdpAddress: 0xe0000 }));
  assert.equal(boot.protocol, 'pvh');
  assert.equal(boot.entry, PVH_ENTRY);
  const at = boot.bootParams;
  assert.equal(memory.readU32(at), 0x336ec578);
  assert.equal(memory.readU32(at + 4), 1, 'version');
  assert.equal(memory.readU32(at + 12), 1, 'nr_modules');
  assert.equal(memory.readU64(at + 24), BigInt(CMDLINE_ADDRESS));
  assert.equal(memory.readU64(at + 32), 0xe0000n);
  assert.equal(memory.readU32(at + 48), 3, 'memmap_entries');
  const memmap = Number(memory.readU64(at + 40));
  assert.equal(memory.readU64(memmap + 48), 0x100000n);
  assert.equal(memory.readU32(memmap + 48 + 16), E820_RAM);
  const modlist = Number(memory.readU64(at + 16));
  assert.equal(memory.readU64(modlist), BigInt(boot.initrd!.address));
  assert.equal(memory.readU64(modlist + 8), 3000n);

  refuses(() => loadLinux(vmlinux(), newMemory().memory, options(ram, { protocol: 'pvh' })), LinuxImageError, /no PVH entry note/);
  refuses(() => loadLinux(bzImage(), newMemory().memory, options(ram, { protocol: 'pvh', decompress: 'guest' })), LinuxLoadError, /decompress: 'host'/);
});

test('malformed bzImages are refused with one clear line', () => {
  const { ram } = newMemory();
  const load = (file: Uint8Array) => () => loadLinux(file, newMemory().memory, options(ram));
  const patched = (patch: (f: Uint8Array, v: DataView) => void, o: BzOptions = {}) => {
    const f = bzImage(o);
    patch(f, new DataView(f.buffer));
    return f;
  };

  refuses(load(new Uint8Array(100)), LinuxImageError, /100 bytes, too short/);
  refuses(load(patched((f) => (f[0x1fe] = 0))), LinuxImageError, /no boot signature 0xAA55/);
  refuses(load(patched((f) => f.set(Buffer.from('HdrX'), 0x202))), LinuxImageError, /no "HdrS"/);
  refuses(load(bzImage({ version: 0x0205 })), LinuxImageError, /boot protocol 2\.05 is too old/);
  refuses(load(bzImage({ version: 0x020b })), LinuxImageError, /not 64-bit capable \(boot protocol 2\.11/);
  refuses(load(bzImage({ xloadflags: 0x7e })), LinuxImageError, /not 64-bit capable/);
  const whole = bzImage();
  refuses(load(whole.subarray(0, whole.length - 100)), LinuxImageError, /truncated/);
  refuses(load(whole.subarray(0, 0x220)), LinuxImageError, /truncated: 544 bytes, but its setup header ends at 0x26c/);
  refuses(load(patched((_, v) => v.setUint32(0x24c, 1 << 24, true))), LinuxImageError, /lies outside the/);
  refuses(load(patched((f) => (f[0x201] = 0xa0))), LinuxImageError, /past the zero page's header area/);
  refuses(load(bzImage({ payload: Buffer.from('BZh91AY&SY....') })), LinuxImageError, /bzip2.*decompress: 'guest'/);
  refuses(load(bzImage({ payload: gzipSync(Buffer.from('not an ELF file')) })), LinuxImageError, /not a valid ELF vmlinux/);
});

test('kernels and initrds that do not fit are refused, leaving guest RAM untouched', () => {
  const small = newMemory(16 * MiB);
  refuses(() => loadLinux(bzImage(), small.memory, options(small.ram)), LinuxLoadError, /needs RAM at \[0x1000000, 0x1005000\).*16 MiB/);

  const { ram, memory } = newMemory();
  refuses(
    () => loadLinux(bzImage(), memory, options(ram, { initrd: new Uint8Array(RAM_SIZE - KERNEL_PADDR) })),
    LinuxLoadError,
    /initrd \(50331648 bytes\) does not fit/,
  );
  refuses(
    () => loadLinux(bzImage(), memory, options(ram, { reserved: [{ start: KERNEL_PADDR + 0x1000, end: KERNEL_PADDR + 0x2000, type: E820_RESERVED }] })),
    LinuxLoadError,
    /the kernel .* would overlap the reserved range/,
  );
  refuses(
    () => loadLinux(bzImage(), memory, options(ram, { reserved: [{ start: 0x7000, end: 0x8000, type: E820_RESERVED }] })),
    LinuxLoadError,
    /the boot parameters .* would overlap/,
  );
  refuses(() => loadLinux(bzImage({ cmdlineSize: 10 }), memory, options(ram)), LinuxLoadError, /22 bytes, the kernel accepts at most 10/);
  assert.ok(memory.regions.every((r) => r.bytes.every((b) => b === 0)), 'nothing was written');
});
