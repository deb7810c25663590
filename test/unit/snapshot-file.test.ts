import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readStateFile, SnapshotError, writeStateFile } from '../../src/snapshot/snapshot-file.js';

const dir = mkdtempSync(join(tmpdir(), 'tsvmm-snapshot-file-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('the state file keeps bigints and bytes, and refuses what is cut, changed or foreign', () => {
  const path = join(dir, 'vm.state');
  const state = { rip: 0xffff_ffff_8100_0000n, lapic: Uint8Array.of(1, 2, 3), nested: [{ count: 7 }], image: Buffer.from('a Buffer too') };
  writeStateFile(path, state);
  assert.deepEqual(readStateFile(path), { ...state, image: Uint8Array.from(state.image) });
  const bytes = readFileSync(path);
  const refused = (name: string, data: Uint8Array, message: RegExp) => {
    const p = join(dir, name);
    writeFileSync(p, data);
    assert.throws(() => readStateFile(p), (e: unknown) => e instanceof SnapshotError && message.test(e.message));
  };
  refused('cut', bytes.subarray(0, bytes.length - 1), /cut short or grew/);
  const flipped = Buffer.from(bytes);
  flipped[20] ^= 1;
  refused('flipped', flipped, /fails its checksum/);
  const v1 = Buffer.from(bytes);
  v1.writeUInt32LE(1, 8);
  refused('v1', v1, /has format version 1; this tsvmm reads version 2/);
  refused('foreign', Buffer.alloc(100), /is not a tsvmm snapshot/);
  assert.throws(() => readStateFile(join(dir, 'absent')), /snapshot '.*absent': no such file/);
});
