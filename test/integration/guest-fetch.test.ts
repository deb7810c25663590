/**
 * Builds the default guest from the real Debian packages (apt-get must work
 * and reach a Debian mirror; TSVMM_SKIP_NETWORK_TESTS=1 skips this file)
 * into a temporary cache directory, and checks what came out.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ensureDefaultGuest, type DefaultGuest } from '../../src/guest/default-guest.js';
import { MANIFEST_FILE, type GuestManifest } from '../../src/guest/guest-cache.js';
import { guestCommandParameter, RUN_COMMAND_FUNCTION } from '../../src/guest/init-script.js';
import { sha256Hex } from '../../src/guest/sha256.js';
import { readNewc, type NewcEntry } from '../helpers/newc-reader.js';

const skip = process.env.TSVMM_SKIP_NETWORK_TESTS === '1' ? 'TSVMM_SKIP_NETWORK_TESTS=1' : false;

describe('tsvmm guest fetch', { skip, timeout: 600_000 }, () => {
  const cacheDir = mkdtempSync(join(tmpdir(), 'tsvmm-cache-test-'));
  const savedCacheDir = process.env.TSVMM_CACHE_DIR;
  const steps: string[] = [];
  let guest: DefaultGuest;
  let archive: Buffer;
  let entries: Map<string, NewcEntry>;
  let buildMs: number;

  before(async () => {
    process.env.TSVMM_CACHE_DIR = cacheDir;
    const started = performance.now();
    guest = await ensureDefaultGuest({ progress: { update() {}, done: (step, detail) => steps.push(`${step}: ${detail}`) } });
    buildMs = performance.now() - started;
    archive = gunzipSync(readFileSync(guest.initrd));
    entries = new Map(readNewc(archive).map((e) => [e.name, e]));
  });

  after(() => {
    if (savedCacheDir === undefined) delete process.env.TSVMM_CACHE_DIR;
    else process.env.TSVMM_CACHE_DIR = savedCacheDir;
    rmSync(cacheDir, { recursive: true, force: true });
  });

  test('the first call builds the guest in TSVMM_CACHE_DIR and reports each step', (t) => {
    t.diagnostic(`built in ${(buildMs / 1000).toFixed(1)} s: ${steps.join(' | ')}`);
    assert.equal(guest.cached, false);
    assert.ok(guest.kernel.startsWith(cacheDir) && guest.initrd.startsWith(cacheDir));
    assert.deepEqual(
      steps.map((s) => s.split(':')[0]),
      ['packages', 'download', 'unpack', 'initramfs'],
    );
    assert.match(guest.release, /^\d+\.\d+\.\d+-\d+-cloud-amd64$/);
    assert.deepEqual(
      guest.packages.map((p) => p.name),
      [`linux-image-${guest.release}`, 'busybox-static'],
    );
  });

  test('the kernel is a bzImage', () => {
    const kernel = readFileSync(guest.kernel);
    assert.equal(kernel.toString('latin1', 0x202, 0x206), 'HdrS');
    assert.ok(kernel.length > 4 << 20, `${kernel.length} bytes`);
  });

  test('the initramfs holds /init, busybox and virtio_blk.ko with its dependencies, loaded in order', () => {
    const init = entries.get('init');
    assert.ok(init, 'init');
    assert.equal(init.mode & 0o111, 0o111);
    assert.ok(entries.get('bin/busybox')!.data.length > 1 << 20);
    const modules = `lib/modules/${guest.release}/kernel/drivers`;
    const script = Buffer.from(init.data).toString();
    const ring = `${modules}/virtio/virtio_ring.ko`;
    const virtio = `${modules}/virtio/virtio.ko`;
    const blk = `${modules}/block/virtio_blk.ko`;
    for (const path of [ring, virtio, blk]) {
      assert.ok(entries.has(path), path);
      assert.equal(Buffer.from(entries.get(path)!.data.subarray(0, 4)).toString('latin1'), '\x7fELF', path);
    }
    assert.ok(script.indexOf(`/${ring} `) < script.indexOf(`/${virtio} `) && script.indexOf(`/${virtio} `) < script.indexOf(`/${blk} `));
  });

  test('the manifest records the packages and the hashes of both files', () => {
    const manifest: GuestManifest = JSON.parse(readFileSync(join(cacheDir, 'default-guest', MANIFEST_FILE), 'utf8'));
    assert.equal(manifest.kernel.sha256, sha256Hex(readFileSync(guest.kernel)));
    assert.equal(manifest.initrd.sha256, sha256Hex(readFileSync(guest.initrd)));
    assert.deepEqual(
      manifest.packages.map(({ name, version }) => ({ name, version })),
      guest.packages,
    );
    assert.ok(manifest.packages.every((p) => /^[0-9a-f]{64}$/.test(p.sha256)));
    assert.ok(manifest.modules.includes('virtio_blk'));
  });

  test("the guest's own busybox lists the archive as written and runs /init's command decoder", () => {
    const work = mkdtempSync(join(tmpdir(), 'tsvmm-busybox-'));
    try {
      const busybox = join(work, 'busybox');
      writeFileSync(busybox, entries.get('bin/busybox')!.data);
      chmodSync(busybox, 0o755);
      const listing = execFileSync(busybox, ['cpio', '-t'], { input: archive, stdio: ['pipe', 'pipe', 'ignore'] }).toString().trim().split('\n');
      assert.deepEqual(listing, [...entries.keys()]);

      const fields = guestCommandParameter(['printf', '<%s>', 'two words', '', '*']).slice('tsvmm.cmd='.length);
      const out = execFileSync(busybox, ['sh', '-c', `${RUN_COMMAND_FUNCTION}\nrun_command "$1"`, 'sh', fields], { cwd: work }).toString();
      assert.equal(out, '<two words><><*>');
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  test('a second call is answered from the cache at once', async (t) => {
    const started = performance.now();
    const again = await ensureDefaultGuest();
    const ms = performance.now() - started;
    t.diagnostic(`cached call: ${ms.toFixed(0)} ms`);
    assert.equal(again.cached, true);
    assert.deepEqual({ ...again, cached: false }, guest);
    assert.ok(ms < 1000, `${ms} ms`);
  });

  test('force rebuilds, and the same packages give the same bytes', async (t) => {
    const before = sha256Hex(readFileSync(guest.initrd));
    const started = performance.now();
    const rebuilt = await ensureDefaultGuest({ force: true });
    t.diagnostic(`forced rebuild: ${((performance.now() - started) / 1000).toFixed(1)} s`);
    assert.equal(rebuilt.cached, false);
    assert.equal(rebuilt.initrd, guest.initrd);
    assert.equal(sha256Hex(readFileSync(rebuilt.initrd)), before);
  });
});

