/**
 * virtio-blk seen from inside a VM: a raw long-mode guest drives the disk
 * itself (test/guests/virtio-blk.s), so the requests go the whole way:
 * guest rings, ioeventfd, the device's I/O thread, the image file.
 */
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bar0 } from '../../src/devices/virtio/pci-transport.js';
import { buildMachine } from '../../src/vmm/builder.js';
import { guestFile } from '../helpers/guests.js';
import { kvmTest } from '../helpers/kvm.js';
import { runBounded } from '../helpers/machine.js';

const ONE_MIB = 0x100000;
const BAR0 = 0xc100_0000;
const SECTORS = 16;

kvmTest('a guest driver reads, writes and flushes a virtio-blk disk through its I/O thread, notifying with no exit', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvmm-blk-e2e-'));
  t.after(() => rmSync(dir, { recursive: true }));
  const imagePath = join(dir, 'disk.img');
  const image = new Uint8Array(SECTORS * 512);
  image.set(Buffer.from('sector one, from the host\0'), 512);
  writeFileSync(imagePath, image);
  const tracePath = join(dir, 'exits.trace');
  const traceFd = openSync(tracePath, 'w');
  t.after(() => closeSync(traceFd));

  let console = '';
  const deviceLog: string[] = [];
  const machine = buildMachine({
    memory: 64 * ONE_MIB, cpus: 1, traceFd,
    devices: [{ kind: 'serial' }, { kind: 'debug-exit' }, { kind: 'virtio-blk', path: imagePath, id: 'e2e-disk' }],
    boot: { kind: 'raw', image: readFileSync(guestFile('virtio-blk.s', { address: ONE_MIB })), mode: 'long', loadAddr: ONE_MIB },
    console: (d) => (console += Buffer.from(d).toString('latin1')),
  });
  machine.deviceLog = (m) => deviceLog.push(m);
  const stop = await runBounded(machine).finally(() => machine.destroy());

  assert.equal(stop.kind, 'debug-exit', stop.message);
  assert.equal(stop.exitCode, 1, console);
  assert.equal(
    console,
    [
      `capacity=${SECTORS.toString(16).padStart(16, '0')}`,
      'id=00000000 e2e-disk',
      'read=00000000 sector one, from the host',
      'write=00000000',
      'flush=00000000',
      'past-end=00000001', // VIRTIO_BLK_S_IOERR
      '',
    ].join('\n'),
  );
  assert.deepEqual(deviceLog, []);
  const written = readFileSync(imagePath).subarray(2 * 512, 3 * 512);
  assert.equal(Buffer.from(written.subarray(0, 21)).toString('latin1'), 'written by the guest\0');
  assert.ok(written.subarray(21).every((b) => b === 0));

  const notify = `addr=0x${(BAR0 + Bar0.NOTIFY).toString(16)}`;
  const mmio = readFileSync(tracePath, 'utf8').split('\n').filter((l) => l.includes(' MMIO '));
  assert.ok(mmio.some((l) => l.includes(`addr=0x${(BAR0 + Bar0.DEVICE).toString(16)}`)), 'the capacity read is trapped MMIO');
  assert.deepEqual(mmio.filter((l) => l.includes(notify)), [], 'no exit for the five notify writes');
});
