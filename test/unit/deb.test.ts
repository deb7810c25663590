import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { packTar, type TarEntry } from 'modern-tar';
import { debDataTar, readArArchive, DebArchiveError } from '../../src/guest/deb-archive.js';
import { readTarMembers } from '../../src/guest/tar-reader.js';

/** Writes an ar archive the way dpkg-deb does: 60-byte headers, members on even offsets. */
function arArchive(members: { name: string; data: Uint8Array }[]): Buffer {
  const parts: Buffer[] = [Buffer.from('!<arch>\n')];
  for (const { name, data } of members) {
    const field = (text: string | number, width: number) => String(text).padEnd(width, ' ');
    parts.push(Buffer.from(field(name, 16) + field(0, 12) + field(0, 6) + field(0, 6) + field('100644', 8) + field(data.length, 10) + '`\n', 'latin1'));
    parts.push(Buffer.from(data));
    if (data.length % 2 === 1) parts.push(Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}

const deb = (dataName: string, data: Uint8Array) =>
  arArchive([
    { name: 'debian-binary', data: Buffer.from('2.0\n') },
    { name: 'control.tar.gz', data: gzipSync(Buffer.alloc(1024)) },
    { name: dataName, data },
  ]);

const at0 = new Date(0);
const SAMPLE: TarEntry[] = [
  { header: { name: './', type: 'directory', size: 0, mtime: at0 } },
  { header: { name: './bin/', type: 'directory', size: 0, mtime: at0 } },
  { header: { name: './bin/busybox', size: 11, mode: 0o755, mtime: at0 }, body: 'hello, xz!\n' },
  { header: { name: './bin/sh', type: 'symlink', linkname: 'busybox', size: 0, mtime: at0 } },
];

/** `xz -9 --check=crc64` of packTar(SAMPLE), made once with the xz tool so that the test needs none. */
const SAMPLE_TAR_XZ = Buffer.from(
  '/Td6WFoAAATm1rRGAgAhARwAAAAQz1jM4A3/AIBdABcLvBx9AZXAHUo+eRW/ePpNfSwPtQBAEYs9nHIx9qGlaiO+1eVNekUIBbuOztfZNa1WtE8fCaSsMeVAV+MVMSLrDtap0TXzggM90+2pzu53asWpWhqNgXcZ1XsOjoZ6AZK0A2QhGN4wZSr6Dh0LSCPj/TXhzqh5sYSb8qeou9sAANAPGrKnbBhBAAGcAYAcAAB6x/RsscRn+wIAAAAABFla',
  'base64',
);

async function assertSampleMembers(stream: ReadableStream<Uint8Array>) {
  const members = await readTarMembers(stream, () => true);
  assert.deepEqual(
    members.map(({ path, type, linkTarget }) => ({ path, type, linkTarget })),
    [
      { path: '', type: 'directory', linkTarget: undefined },
      { path: 'bin', type: 'directory', linkTarget: undefined },
      { path: 'bin/busybox', type: 'file', linkTarget: undefined },
      { path: 'bin/sh', type: 'symlink', linkTarget: 'busybox' },
    ],
  );
  const busybox = members.find((m) => m.path === 'bin/busybox')!;
  assert.equal(Buffer.from(busybox.data!).toString(), 'hello, xz!\n');
  assert.equal(busybox.mode, 0o755);
}

test('ar members are read in order, with odd sizes padded and GNU "name/" endings', () => {
  const archive = arArchive([
    { name: 'debian-binary', data: Buffer.from('2.0\n') },
    { name: 'odd/', data: Buffer.from('abc') },
    { name: 'after-odd', data: Buffer.from('xy') },
  ]);
  const members = readArArchive(archive);
  assert.deepEqual(
    members.map((m) => [m.name, Buffer.from(m.data).toString()]),
    [
      ['debian-binary', '2.0\n'],
      ['odd', 'abc'],
      ['after-odd', 'xy'],
    ],
  );
});

test('broken ar archives are refused with a reason', () => {
  const good = arArchive([{ name: 'debian-binary', data: Buffer.from('2.0\n') }]);
  assert.throws(() => readArArchive(Buffer.from('!<arch?\n')), /bad magic/);
  assert.throws(() => readArArchive(good.subarray(0, 40)), /truncated/);
  assert.throws(() => readArArchive(good.subarray(0, good.length - 1)), /extends past the end/);
  const badSize = Buffer.from(good);
  badSize.write('12x4      ', 8 + 48, 'latin1');
  assert.throws(() => readArArchive(badSize), /bad size field/);
  const badEnd = Buffer.from(good);
  badEnd.write('??', 8 + 58, 'latin1');
  assert.throws(() => readArArchive(badEnd), /corrupt/);
});

test('the data.tar.xz of a .deb unpacks, with progress up to 100%', async () => {
  const fractions: number[] = [];
  await assertSampleMembers(debDataTar(deb('data.tar.xz', SAMPLE_TAR_XZ), (f) => fractions.push(f)));
  assert.equal(fractions.at(-1), 1);
});

test('data.tar.gz and uncompressed data.tar unpack too', async () => {
  const tar = await packTar(SAMPLE);
  await assertSampleMembers(debDataTar(deb('data.tar.gz', gzipSync(tar))));
  await assertSampleMembers(debDataTar(deb('data.tar', tar)));
});

test('what is not a Debian package, or uses an unknown compression, is refused', () => {
  assert.throws(() => debDataTar(arArchive([{ name: 'data.tar.xz', data: SAMPLE_TAR_XZ }])), DebArchiveError);
  assert.throws(() => debDataTar(arArchive([{ name: 'debian-binary', data: Buffer.from('2.0\n') }])), /no data.tar member/);
  assert.throws(() => debDataTar(deb('data.tar.zst', Buffer.alloc(8))), /data\.tar\.zst uses a compression tsvmm cannot read/);
});

test('the tar reader keeps only the members asked for, long names included', async () => {
  const longName = `lib/modules/6.1.0-test/kernel/drivers/thermal/intel/int340x_thermal/${'x'.repeat(60)}.ko`;
  const tar = await packTar([
    { header: { name: 'skip-me', size: 3 }, body: 'abc' },
    { header: { name: longName, size: 4 }, body: 'kmod' },
    { header: { name: 'lib/', type: 'directory', size: 0 } },
  ]);
  const members = await readTarMembers(new Blob([tar]).stream(), (path) => path.endsWith('.ko'));
  assert.deepEqual(
    members.map((m) => [m.path, Buffer.from(m.data!).toString()]),
    [[longName, 'kmod']],
  );
});

test('a large member after skipped small ones is read whole from a chunked stream', { timeout: 10_000 }, async () => {
  // modern-tar's decoder stalled here when skipped bodies were cancelled rather than drained.
  const big = Buffer.alloc(1 << 20, 7);
  const tar = await packTar([
    { header: { name: 'small-a', size: 100 }, body: Buffer.alloc(100) },
    { header: { name: 'small-b', size: 70_000 }, body: Buffer.alloc(70_000) },
    { header: { name: 'big', size: big.length }, body: big },
  ]);
  let offset = 0;
  const chunked = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= tar.length) return controller.close();
      controller.enqueue(tar.slice(offset, offset + 65_536));
      offset += 65_536;
    },
  });
  const [member] = await readTarMembers(chunked, (path) => path === 'big');
  assert.equal(member.path, 'big');
  assert.ok(Buffer.from(member.data!).equals(big));
});
