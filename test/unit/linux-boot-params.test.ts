import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootParams, buildBootParams } from '../../src/boot/linux/boot-params.js';
import { E820_RAM, E820_RESERVED } from '../../src/boot/linux/e820.js';
import { hvmMemmapEntry, hvmModlistEntry, hvmStartInfo, buildPvhStartInfo, HVM_START_MAGIC } from '../../src/boot/linux/pvh.js';
import { setupHeader, SETUP_HEADER_OFFSET } from '../../src/boot/linux/setup-header.js';

test('the zero page layout matches arch/x86/include/uapi/asm/bootparam.h', () => {
  assert.equal(bootParams.size, 4096);
  const o = bootParams.offsets;
  assert.equal(o.acpi_rsdp_addr, 0x070);
  assert.equal(o.ext_ramdisk_image, 0x0c0);
  assert.equal(o.ext_ramdisk_size, 0x0c4);
  assert.equal(o.ext_cmd_line_ptr, 0x0c8);
  assert.equal(o.cc_blob_address, 0x13c);
  assert.equal(o.e820_entries, 0x1e8);
  assert.equal(o.sentinel, 0x1ef);
  assert.equal(o.hdr, 0x1f1);
  assert.equal(o.edd_mbr_sig_buffer, 0x290);
  assert.equal(o.e820_table, 0x2d0);
  assert.equal(o.eddbuf, 0xd00);
});

test('the setup header layout matches Documentation/arch/x86/boot.rst', () => {
  const at = (field: keyof typeof setupHeader.offsets) => SETUP_HEADER_OFFSET + setupHeader.offsets[field];
  assert.equal(at('boot_flag'), 0x1fe);
  assert.equal(at('header'), 0x202);
  assert.equal(at('version'), 0x206);
  assert.equal(at('kernel_version'), 0x20e);
  assert.equal(at('type_of_loader'), 0x210);
  assert.equal(at('loadflags'), 0x211);
  assert.equal(at('code32_start'), 0x214);
  assert.equal(at('ramdisk_image'), 0x218);
  assert.equal(at('ramdisk_size'), 0x21c);
  assert.equal(at('heap_end_ptr'), 0x224);
  assert.equal(at('cmd_line_ptr'), 0x228);
  assert.equal(at('initrd_addr_max'), 0x22c);
  assert.equal(at('kernel_alignment'), 0x230);
  assert.equal(at('relocatable_kernel'), 0x234);
  assert.equal(at('xloadflags'), 0x236);
  assert.equal(at('cmdline_size'), 0x238);
  assert.equal(at('payload_offset'), 0x248);
  assert.equal(at('payload_length'), 0x24c);
  assert.equal(at('pref_address'), 0x258);
  assert.equal(at('init_size'), 0x260);
  assert.equal(SETUP_HEADER_OFFSET + setupHeader.size, 0x26c);
});

test('addresses above 4 GiB are split into the header field and its ext_ field', () => {
  const page = buildBootParams({
    cmdlineAddress: 0x1_2345_6000,
    initrd: { address: 0x2_0000_1000, size: 0x1_0000_0200 },
    e820: [{ addr: 0, size: 0x9fc00, type: E820_RAM }],
  });
  const v = new DataView(page.buffer);
  assert.equal(v.getUint32(0x228, true), 0x2345_6000);
  assert.equal(v.getUint32(0x0c8, true), 1);
  assert.equal(v.getUint32(0x218, true), 0x1000);
  assert.equal(v.getUint32(0x0c0, true), 2);
  assert.equal(v.getUint32(0x21c, true), 0x200);
  assert.equal(v.getUint32(0x0c4, true), 1);
});

test('a vmlinux gets a minimal header: boot flag, "HdrS", loader id, heap', () => {
  const page = buildBootParams({ cmdlineAddress: 0x20000, e820: [] });
  const v = new DataView(page.buffer);
  assert.equal(v.getUint16(0x1fe, true), 0xaa55);
  assert.equal(Buffer.from(page.subarray(0x202, 0x206)).toString('latin1'), 'HdrS');
  assert.equal(page[0x210], 0xff);
  assert.equal(page[0x211], 0x80);
  assert.equal(v.getUint16(0x224, true), 0xfe00);
  assert.equal(v.getUint32(0x230, true), 0x1000000);
  assert.equal(page[0x1ef], 0, 'sentinel');
});

test('the PVH start info points at the command line, memory map and initrd module', () => {
  const e820 = [
    { addr: 0, size: 0x9fc00, type: E820_RAM },
    { addr: 0x9fc00, size: 0x60400, type: E820_RESERVED },
  ];
  const base = 0x7000;
  const block = buildPvhStartInfo({ address: base, cmdlineAddress: 0x20000, e820, initrd: { address: 0x3000000, size: 1234 }, rsdpAddress: 0xe0000 });
  assert.equal(hvmStartInfo.size, 56);
  assert.equal(hvmMemmapEntry.size, 24);
  assert.equal(hvmModlistEntry.size, 32);
  const info = hvmStartInfo.decode(block);
  assert.equal(info.magic, HVM_START_MAGIC);
  assert.equal(info.version, 1);
  assert.equal(info.cmdline_paddr, 0x20000n);
  assert.equal(info.rsdp_paddr, 0xe0000n);
  assert.equal(info.memmap_entries, 2);
  assert.equal(info.nr_modules, 1);
  const memmapAt = Number(info.memmap_paddr) - base;
  assert.deepEqual(hvmMemmapEntry.decode(block, memmapAt + 24), { addr: 0x9fc00n, size: 0x60400n, type: E820_RESERVED, reserved: 0 });
  const module = hvmModlistEntry.decode(block, Number(info.modlist_paddr) - base);
  assert.equal(module.paddr, 0x3000000n);
  assert.equal(module.size, 1234n);
});
