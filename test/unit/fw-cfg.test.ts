import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { parseFwCfg } from '../../src/cli/run-command.js';
import { DeviceState } from '../../src/devices/device-state.js';
import { buildFwCfgContent, checkFwCfgName, FwCfgKey } from '../../src/devices/legacy/fw-cfg-content.js';
import { FwCfg } from '../../src/devices/legacy/fw-cfg.js';
import { GuestMemory } from '../../src/memory/guest-memory.js';

const RAM = 0x10000;

function device(files = [{ name: 'opt/org.example/greeting', data: Buffer.from('hello, fw_cfg') }]) {
  const memory = new GuestMemory([{ gpa: 0, bytes: new Uint8Array(RAM) }]);
  const content = buildFwCfgContent({ cpus: 3, ramBytes: 128 << 20, ram: [{ gpa: 0, size: 0x9fc00 }, { gpa: 0x100000, size: (128 << 20) - 0x100000 }], cmdline: 'console=ttyS0', files });
  const ctx = { vcpuId: 0, console: () => {}, irq: () => {}, stop: () => {}, memory };
  const fw = new FwCfg(ctx, new DeviceState(DeviceState.allocate(FwCfg.stateSize)), content);
  const select = (key: number) => fw.write(0, Uint8Array.of(key & 0xff, key >> 8));
  const readData = (n: number) => Buffer.from(Array.from({ length: n }, () => { const b = new Uint8Array(1); fw.read(1, b); return b[0]; }));
  const be32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return new Uint8Array(b); };
  /** Writes an FWCfgDmaAccess at `at` and starts it with two 32-bit writes; returns its control word afterwards. */
  const dma = (at: number, control: number, length: number, address: number) => {
    const access = Buffer.alloc(16);
    access.writeUInt32BE(control >>> 0, 0);
    access.writeUInt32BE(length, 4);
    access.writeBigUInt64BE(BigInt(address), 8);
    memory.write(at, access);
    fw.write(4, be32(0));
    fw.write(8, be32(at));
    return Buffer.from(memory.read(at, 4)).readUInt32BE(0);
  };
  return { fw, memory, select, readData, dma };
}

test('fw_cfg answers as QEMU\'s does at 0x510/0x511: signature, features, CPUs, RAM, command line', () => {
  const { select, readData } = device();
  select(FwCfgKey.SIGNATURE);
  assert.equal(readData(4).toString('latin1'), 'QEMU');
  select(FwCfgKey.ID);
  assert.equal(readData(4).readUInt32LE(0), 3, 'traditional and DMA interfaces');
  select(FwCfgKey.NB_CPUS);
  assert.equal(readData(2).readUInt16LE(0), 3);
  select(FwCfgKey.RAM_SIZE);
  assert.equal(readData(8).readBigUInt64LE(0), 128n << 20n);
  select(FwCfgKey.CMDLINE_SIZE);
  assert.equal(readData(4).readUInt32LE(0), 14);
  select(FwCfgKey.CMDLINE_DATA);
  assert.equal(readData(16).toString('latin1'), 'console=ttyS0\0\0\0', 'zeros past the end');
  select(0x1234);
  assert.deepEqual([...readData(2)], [0, 0], 'an item that does not exist reads as zeros');
});

test('the file directory lists etc/e820 and the user\'s files in name order, each readable by its key', () => {
  const { select, readData } = device([{ name: 'opt/b', data: Buffer.from('bee') }, { name: 'opt/a', data: Buffer.from('ay') }]);
  select(FwCfgKey.FILE_DIR);
  const count = readData(4).readUInt32BE(0);
  const entries = Array.from({ length: count }, () => {
    const e = readData(64);
    return { size: e.readUInt32BE(0), key: e.readUInt16BE(4), name: e.subarray(8).toString('latin1').replace(/\0.*$/s, '') };
  });
  assert.deepEqual(entries.map((e) => e.name), ['etc/e820', 'opt/a', 'opt/b']);
  assert.deepEqual(entries.map((e) => e.key), [0x20, 0x21, 0x22]);
  select(entries[2].key);
  assert.equal(readData(entries[2].size).toString(), 'bee');
  select(entries[0].key);
  const e820 = readData(40);
  assert.deepEqual([e820.readBigUInt64LE(0), e820.readBigUInt64LE(8), e820.readUInt32LE(16)], [0n, 0x9fc00n, 1]);
  assert.deepEqual([e820.readBigUInt64LE(20), e820.readUInt32LE(36)], [0x100000n, 1]);
});

test('the DMA interface selects, reads (zeros past the end), skips, refuses writes, and stays inside guest RAM', () => {
  const { fw, memory, dma } = device();
  const signature = new Uint8Array(8);
  fw.read(4, signature);
  assert.equal(Buffer.from(signature).toString('latin1'), 'QEMU CFG');
  memory.fill(0x2000, 32, 0xee);
  // Select the user file (key 0x21: etc/e820 is 0x20) and read 16 bytes of its 13.
  assert.equal(dma(0x1000, (0x21 << 16) | 8 | 2, 16, 0x2000), 0, 'done, no error');
  assert.equal(Buffer.from(memory.read(0x2000, 16)).toString('latin1'), 'hello, fw_cfg\0\0\0');
  assert.equal(memory.readU8(0x2010), 0xee, 'nothing past the length');
  assert.equal(dma(0x1000, (0x21 << 16) | 8 | 4, 7, 0), 0, 'skip 7');
  assert.equal(dma(0x1000, 2, 6, 0x3000), 0);
  assert.equal(Buffer.from(memory.read(0x3000, 6)).toString('latin1'), 'fw_cfg');
  assert.equal(dma(0x1000, 16, 4, 0x3000), 1, 'write: the items are read-only');
  assert.equal(dma(0x1000, (FwCfgKey.SIGNATURE << 16) | 8 | 2, 64, RAM - 8), 1, 'a read reaching past RAM is an error');
  assert.equal(memory.readU8(RAM - 8), 0, 'and writes nothing');
  fw.write(4, Uint8Array.of(0, 0, 0, 0));
  fw.write(8, Uint8Array.of(0, 0, 0xff, 0xf8)); // an access structure at the end of RAM, half outside
  assert.ok(true, 'ignored without throwing');
});

test('fw_cfg file names: printable, short enough, not one tsvmm makes', () => {
  checkFwCfgName('opt/org.example/x');
  assert.throws(() => checkFwCfgName(''), /1 to 55 printable/);
  assert.throws(() => checkFwCfgName(`opt/${'x'.repeat(60)}`), /1 to 55 printable/);
  assert.throws(() => checkFwCfgName('opt/a b'), /no spaces/);
  assert.throws(() => checkFwCfgName('etc/e820'), /tsvmm provides that file itself/);
  assert.throws(() => buildFwCfgContent({ cpus: 1, ramBytes: 1, ram: [], files: [{ name: 'opt/a', data: new Uint8Array(1) }, { name: 'opt/a', data: new Uint8Array(1) }] }), /given twice/);
});

test('--fw-cfg takes QEMU\'s forms: [name=]NAME,file=PATH and NAME,string=TEXT', () => {
  assert.deepEqual(parseFwCfg('opt/a,string=x,y z'), { name: 'opt/a', data: Buffer.from('x,y z') });
  assert.deepEqual(parseFwCfg('name=opt/b,string='), { name: 'opt/b', data: Buffer.from('') });
  assert.deepEqual(parseFwCfg(`opt/c,file=${fileURLToPath(import.meta.url)}`).name, 'opt/c');
  assert.throws(() => parseFwCfg('opt/d'), /^Error: --fw-cfg: 'opt\/d' is not NAME,file=PATH or NAME,string=TEXT$/);
  assert.throws(() => parseFwCfg('opt/e,file=/no/such/file'), /--fw-cfg opt\/e '\/no\/such\/file': no such file/);
  assert.throws(() => parseFwCfg('etc/e820,string=x'), /--fw-cfg: fw_cfg name 'etc\/e820': tsvmm provides that file itself/);
});
