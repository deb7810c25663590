import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpioChunks, S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG, type CpioEntry } from '../../src/guest/cpio-writer.js';
import { readNewc } from '../helpers/newc-reader.js';

const archive = (entries: CpioEntry[], options?: { mtime?: number }) => Buffer.concat([...cpioChunks(entries, options)]);
const hex8 = (n: number) => n.toString(16).padStart(8, '0');

test('a file entry has the exact newc header, name and padded data, then the trailer', () => {
  const bytes = archive([{ kind: 'file', path: 'a', mode: 0o644, data: Buffer.from('hello') }]);
  // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
  const fileHeader = '070701' + [1, S_IFREG | 0o644, 0, 0, 1, 0, 5, 0, 0, 0, 0, 2, 0].map(hex8).join('');
  const trailerHeader = '070701' + [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 11, 0].map(hex8).join('');
  const expected = Buffer.concat([
    Buffer.from(fileHeader + 'a\0', 'latin1'), // 110 + 2 = 112: already a multiple of 4
    Buffer.from('hello\0\0\0', 'latin1'), // 5 data bytes padded to 8
    Buffer.from(trailerHeader + 'TRAILER!!!\0', 'latin1'), // 110 + 11 = 121, padded to 124
    Buffer.alloc(3),
  ]);
  assert.equal(fileHeader.length, 110);
  assert.deepEqual(bytes, expected);
});

test('names are NUL-terminated and padded so that data starts on a multiple of 4', () => {
  for (const path of ['a', 'ab', 'abc', 'abcd', 'abcde', 'dir/é']) {
    const bytes = archive([{ kind: 'file', path, mode: 0o600, data: Buffer.from('x') }]);
    const [entry] = readNewc(bytes);
    assert.equal(entry.name, path);
    // The name size field counts the UTF-8 bytes and the NUL.
    const nameSize = Buffer.byteLength(path) + 1;
    assert.equal(bytes.toString('latin1', 94, 102), hex8(nameSize));
    assert.equal(entry.dataOffset, Math.ceil((110 + nameSize) / 4) * 4, `data of "${path}"`);
  }
});

test('data is padded to a multiple of 4 with zeros, whatever its length', () => {
  for (let length = 0; length <= 9; length++) {
    const data = Buffer.alloc(length, 0xaa);
    const bytes = archive([
      { kind: 'file', path: 'f', mode: 0o644, data },
      { kind: 'file', path: 'g', mode: 0o644, data: Buffer.from('next') },
    ]);
    const [f, g] = readNewc(bytes);
    assert.deepEqual(Buffer.from(f.data), data);
    assert.equal(g.offset % 4, 0);
    assert.equal(g.offset, 112 + Math.ceil(length / 4) * 4);
  }
});

test('directories, symlinks and character devices carry their type, target and device number', () => {
  const entries = readNewc(
    archive([
      { kind: 'directory', path: 'dev', mode: 0o755 },
      { kind: 'char-device', path: 'dev/console', mode: 0o600, major: 5, minor: 1 },
      { kind: 'directory', path: 'bin', mode: 0o755 },
      { kind: 'file', path: 'bin/busybox', mode: 0o755, data: Buffer.from('\x7fELF') },
      { kind: 'symlink', path: 'bin/sh', target: 'busybox' },
    ]),
  );
  const byName = new Map(entries.map((e) => [e.name, e]));
  assert.deepEqual([...byName.keys()], ['dev', 'dev/console', 'bin', 'bin/busybox', 'bin/sh']);
  assert.equal(byName.get('dev')!.mode, S_IFDIR | 0o755);
  assert.equal(byName.get('dev')!.nlink, 2);
  assert.equal(byName.get('dev')!.data.length, 0);
  const console = byName.get('dev/console')!;
  assert.equal(console.mode, S_IFCHR | 0o600);
  assert.deepEqual([console.rdevMajor, console.rdevMinor, console.data.length], [5, 1, 0]);
  assert.equal(byName.get('bin/busybox')!.mode, S_IFREG | 0o755);
  const sh = byName.get('bin/sh')!;
  assert.equal(sh.mode, S_IFLNK | 0o777);
  assert.equal(Buffer.from(sh.data).toString(), 'busybox');
  // Distinct inodes (equal ones with nlink > 1 would be taken as hard links), all owned by root.
  assert.equal(new Set(entries.map((e) => e.ino)).size, entries.length);
  assert.ok(entries.every((e) => e.uid === 0 && e.gid === 0 && e.check === 0 && e.devMajor === 0 && e.devMinor === 0));
});

test('equal input gives equal archives; mtime is 0 unless given', () => {
  const entries: CpioEntry[] = [{ kind: 'file', path: 'init', mode: 0o755, data: Buffer.from('#!/bin/sh\n') }];
  assert.deepEqual(archive(entries), archive(entries));
  assert.equal(readNewc(archive(entries))[0].mtime, 0);
  assert.equal(readNewc(archive(entries, { mtime: 1_700_000_000 }))[0].mtime, 1_700_000_000);
});

test('paths must be relative and plain', () => {
  for (const path of ['', '/init', 'a//b', './init', 'a/../b', 'dir/']) {
    assert.throws(() => archive([{ kind: 'directory', path, mode: 0o755 }]), /must be relative/, `path "${path}"`);
  }
});

test('an empty archive is just the trailer', () => {
  const bytes = archive([]);
  assert.equal(bytes.length, 124);
  assert.deepEqual(readNewc(bytes), []);
});

const CPIO = '/usr/bin/cpio';
test('GNU cpio lists the archive as written', { skip: existsSync(CPIO) ? false : `${CPIO} is not installed` }, () => {
  const bytes = archive([
    { kind: 'directory', path: 'bin', mode: 0o755 },
    { kind: 'file', path: 'bin/busybox', mode: 0o755, data: Buffer.alloc(1001, 1) },
    { kind: 'symlink', path: 'bin/sh', target: 'busybox' },
  ]);
  const listing = execFileSync(CPIO, ['-t', '--quiet'], { input: bytes }).toString().trim().split('\n');
  assert.deepEqual(listing, ['bin', 'bin/busybox', 'bin/sh']);
});
