/**
 * Snapshot memory files: a diff holds the marked pages at their offsets and
 * holes elsewhere; merged onto a base it gives the later RAM; files of
 * different machines are refused in one line.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DirtyPages, PAGE_SIZE } from '../../src/memory/dirty-pages.js';
import { GuestMemory } from '../../src/memory/guest-memory.js';
import { mergeDiffMemory, writeDiffMemory, writeFullMemory } from '../../src/snapshot/memory-file.js';

const dir = mkdtempSync(join(tmpdir(), 'tsvmm-memory-file-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const PAGES = 512;
const ram = [{ gpa: 0, size: 256 * PAGE_SIZE, fileOffset: 0 }, { gpa: 0x1_0000_0000, size: 256 * PAGE_SIZE, fileOffset: 256 * PAGE_SIZE }];

test('pages a thread writes are marked, by their place in the memory file; a diff holds them and merges onto the base', () => {
  const dirty = new DirtyPages(DirtyPages.allocate(PAGES * PAGE_SIZE), ram);
  const regions = ram.map((r) => ({ gpa: r.gpa, bytes: new Uint8Array(r.size).fill(1) }));
  const memory = new GuestMemory(regions, (region, gpa, length) => dirty.mark(region, gpa, length));
  const base = join(dir, 'base.mem');
  writeFullMemory(base, memory.regions);
  assert.equal(dirty.take().some((b) => b !== 0), false, 'reads and the full write mark nothing');

  memory.writeU32(3 * PAGE_SIZE + 10, 0xdeadbeef);
  memory.write(0x1_0000_0000 + 7 * PAGE_SIZE - 2, new Uint8Array([9, 9, 9, 9])); // across two pages of the second range
  memory.readU32(100 * PAGE_SIZE);
  const taken = dirty.take();
  const marked = [...Array(PAGES).keys()].filter((p) => (taken[p >> 3] & (1 << (p & 7))) !== 0);
  assert.deepEqual(marked, [3, 256 + 6, 256 + 7]);
  assert.equal(dirty.take().some((b) => b !== 0), false, 'take() clears');

  const diff = join(dir, 'diff.mem');
  assert.equal(writeDiffMemory(diff, memory.regions, taken), 3 * PAGE_SIZE);
  assert.equal(statSync(diff).size, PAGES * PAGE_SIZE);
  assert.ok(statSync(diff).blocks * 512 <= 8 * PAGE_SIZE, `sparse: ${statSync(diff).blocks} blocks`);
  assert.equal(mergeDiffMemory(diff, base), 3 * PAGE_SIZE);
  const merged = readFileSync(base);
  const expected = Buffer.concat(regions.map((r) => r.bytes));
  assert.ok(merged.equals(expected), 'the base now holds the later RAM');
});

test('a diff and a base of different sizes, or a missing file, are refused in one line', () => {
  const small = join(dir, 'small.mem');
  const big = join(dir, 'big.mem');
  writeFileSync(small, new Uint8Array(PAGE_SIZE));
  writeFileSync(big, new Uint8Array(2 * PAGE_SIZE));
  assert.throws(() => mergeDiffMemory(small, big), /^SnapshotError: '.*small.mem' \(4096 bytes\) and '.*big.mem' \(8192 bytes\) are not memory files of one machine$/);
  assert.throws(() => mergeDiffMemory(join(dir, 'none.mem'), big), /memory file '.*none.mem': no such file/);
  assert.deepEqual(readFileSync(big), Buffer.alloc(2 * PAGE_SIZE), 'the base is untouched');
});
