import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG } from '../../src/guest/cpio-writer.js';
import { elfSection } from '../../src/boot/elf-sections.js';
import { ElfError } from '../../src/boot/elf.js';
import { EXIT_LINE, guestCommandParameter, READY_LINE, renderInitScript, RUN_COMMAND_FUNCTION } from '../../src/guest/init-script.js';
import { buildInitramfs, initramfsEntries } from '../../src/guest/initramfs.js';
import {
  catalogFromModinfo,
  catalogFromModulesDep,
  moduleNameFromPath,
  parseModulesBuiltin,
  readModinfo,
  resolveModules,
  type ModuleCatalog,
} from '../../src/guest/kernel-modules.js';
import { readNewc } from '../helpers/newc-reader.js';

/** A minimal ELF64 relocatable file with the given sections (plus the null section and .shstrtab). */
function relocatableElf(sections: Record<string, Uint8Array>): Buffer {
  const names = ['', ...Object.keys(sections), '.shstrtab'];
  const nameTable = Buffer.from(names.map((n) => `${n}\0`).join(''), 'latin1');
  const nameOffsets = names.map((_, i) => names.slice(0, i).reduce((sum, n) => sum + n.length + 1, 0));
  const bodies = [new Uint8Array(0), ...Object.values(sections), nameTable];
  const offsets: number[] = [];
  let at = 64;
  for (const body of bodies) {
    offsets.push(at);
    at += body.length;
  }
  const shoff = Math.ceil(at / 8) * 8;
  const file = Buffer.alloc(shoff + names.length * 64);
  file.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  file.writeUInt16LE(1, 16); // ET_REL
  file.writeUInt16LE(62, 18); // EM_X86_64
  file.writeBigUInt64LE(BigInt(shoff), 40);
  file.writeUInt16LE(64, 58);
  file.writeUInt16LE(names.length, 60);
  file.writeUInt16LE(names.length - 1, 62);
  bodies.forEach((body, i) => {
    file.set(body, offsets[i]);
    const header = shoff + i * 64;
    file.writeUInt32LE(nameOffsets[i], header);
    file.writeUInt32LE(i === 0 ? 0 : i === names.length - 1 ? 3 : 1, header + 4); // SHT_NULL, SHT_STRTAB, SHT_PROGBITS
    file.writeBigUInt64LE(BigInt(offsets[i]), header + 24);
    file.writeBigUInt64LE(BigInt(body.length), header + 32);
  });
  return file;
}

const modinfo = (fields: string[]) => Buffer.from(fields.map((f) => `${f}\0`).join(''), 'utf8');

test('the .modinfo section of a module is read as key=value pairs', () => {
  const ko = relocatableElf({
    '.text': Buffer.alloc(16, 0x90),
    '.modinfo': modinfo(['license=GPL', 'depends=virtio,virtio_ring', 'alias=virtio:d00000002v*', 'alias=second', 'name=virtio_blk']),
  });
  assert.deepEqual(readModinfo(ko), [
    ['license', 'GPL'],
    ['depends', 'virtio,virtio_ring'],
    ['alias', 'virtio:d00000002v*'],
    ['alias', 'second'],
    ['name', 'virtio_blk'],
  ]);
  assert.deepEqual(Buffer.from(elfSection(ko, '.text')!), Buffer.alloc(16, 0x90));
  assert.equal(elfSection(ko, '.nothing'), undefined);
  assert.deepEqual(readModinfo(relocatableElf({ '.text': Buffer.alloc(4) })), []);
  assert.throws(() => elfSection(Buffer.from('not an elf at all, no, not at all, not one bit of it, no way at all'), '.modinfo'), ElfError);
});

test('module names come from .modinfo, else from the file name with dashes as underscores', () => {
  assert.equal(moduleNameFromPath('kernel/drivers/char/hw_random/virtio-rng.ko'), 'virtio_rng');
  assert.equal(moduleNameFromPath('kernel/net/core/failover.ko.xz'), 'failover');
  const catalog = catalogFromModinfo(
    new Map([
      ['kernel/drivers/char/hw_random/virtio-rng.ko', relocatableElf({ '.modinfo': modinfo(['depends=virtio,virtio-ring']) })],
      ['kernel/a/renamed.ko', relocatableElf({ '.modinfo': modinfo(['name=real_name', 'depends=']) })],
    ]),
    new Set(),
  );
  assert.deepEqual(catalog.modules.get('virtio_rng'), { name: 'virtio_rng', path: 'kernel/drivers/char/hw_random/virtio-rng.ko', depends: ['virtio', 'virtio_ring'] });
  assert.deepEqual(catalog.modules.get('real_name')?.depends, []);
});

test('modules.dep and modules.builtin are parsed into the same catalog form', () => {
  const catalog = catalogFromModulesDep(
    ['kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko', 'kernel/drivers/virtio/virtio_ring.ko:', ''].join('\n'),
    parseModulesBuiltin('kernel/drivers/char/hw_random/rng-core.ko\nkernel/fs/ext4/ext4.ko\n'),
  );
  assert.deepEqual(catalog.modules.get('virtio_blk')?.depends, ['virtio', 'virtio_ring']);
  assert.deepEqual(catalog.modules.get('virtio_ring')?.depends, []);
  assert.deepEqual([...catalog.builtin], ['rng_core', 'ext4']);
});

/** Shaped like Debian's cloud kernel: rng-core built in, virtio_console absent in the "minimal" variant. */
function sampleCatalog(options: { withConsole: boolean }): ModuleCatalog {
  const deps: Record<string, string[]> = {
    virtio_ring: [],
    virtio: ['virtio_ring'],
    virtio_pci_modern_dev: [],
    virtio_pci_legacy_dev: [],
    virtio_pci: ['virtio_ring', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev', 'virtio'],
    virtio_blk: ['virtio', 'virtio_ring'],
    failover: [],
    net_failover: ['failover'],
    virtio_net: ['virtio_ring', 'virtio', 'net_failover'],
    virtio_rng: ['virtio', 'virtio_ring', 'rng_core'],
    vsock: [],
    vmw_vsock_virtio_transport_common: ['vsock'],
    vmw_vsock_virtio_transport: ['virtio', 'vmw_vsock_virtio_transport_common', 'virtio_ring', 'vsock'],
    ...(options.withConsole ? { virtio_console: ['virtio', 'virtio_ring'] } : {}),
  };
  return {
    modules: new Map(Object.entries(deps).map(([name, depends]) => [name, { name, path: `kernel/${name}.ko`, depends }])),
    builtin: new Set(['rng_core']),
  };
}

test('modules are ordered after their dependencies, each once, built-in ones left out', () => {
  const wanted = ['virtio_pci', 'virtio_blk', 'virtio_net', 'virtio_rng', 'vmw_vsock_virtio_transport'].map((name) => ({ name }));
  const order = resolveModules(sampleCatalog({ withConsole: false }), wanted).map((m) => m.name);
  assert.deepEqual(order, [
    'virtio_ring',
    'virtio_pci_modern_dev',
    'virtio_pci_legacy_dev',
    'virtio',
    'virtio_pci',
    'virtio_blk',
    'failover',
    'net_failover',
    'virtio_net',
    'virtio_rng',
    'vsock',
    'vmw_vsock_virtio_transport_common',
    'vmw_vsock_virtio_transport',
  ]);
  const catalog = sampleCatalog({ withConsole: false });
  for (const [i, name] of order.entries()) {
    for (const dependency of catalog.modules.get(name)!.depends) {
      if (!catalog.builtin.has(dependency)) assert.ok(order.indexOf(dependency) < i, `${dependency} before ${name}`);
    }
  }
});

test('an optional module is skipped when absent and loaded when present; a missing one is an error naming who needs it', () => {
  const wanted = [{ name: 'virtio-console', optional: true }];
  assert.deepEqual(resolveModules(sampleCatalog({ withConsole: false }), wanted), []);
  assert.deepEqual(
    resolveModules(sampleCatalog({ withConsole: true }), wanted).map((m) => m.name),
    ['virtio_ring', 'virtio', 'virtio_console'],
  );
  assert.throws(() => resolveModules(sampleCatalog({ withConsole: false }), [{ name: 'virtio_console' }]), /kernel module virtio_console is neither/);
  const broken = sampleCatalog({ withConsole: false });
  broken.modules.get('virtio')!.depends.push('virtio_anchor');
  assert.throws(() => resolveModules(broken, [{ name: 'virtio_blk' }]), /virtio_anchor \(needed by virtio_blk → virtio\)/);
});

test('a dependency cycle is reported, not looped on', () => {
  const catalog: ModuleCatalog = {
    modules: new Map([
      ['a', { name: 'a', path: 'a.ko', depends: ['b'] }],
      ['b', { name: 'b', path: 'b.ko', depends: ['a'] }],
    ]),
    builtin: new Set(),
  };
  assert.throws(() => resolveModules(catalog, [{ name: 'a' }]), /cycle: a → b → a/);
});

const SPEC = {
  busybox: Buffer.from('\x7fELF busybox'),
  modules: [
    { path: 'lib/modules/6.1.0-test/kernel/drivers/virtio/virtio_ring.ko', data: Buffer.from('ring') },
    { path: 'lib/modules/6.1.0-test/kernel/drivers/block/virtio_blk.ko', data: Buffer.from('blk') },
  ],
  init: renderInitScript({ modules: ['/lib/modules/6.1.0-test/kernel/drivers/virtio/virtio_ring.ko', '/lib/modules/6.1.0-test/kernel/drivers/block/virtio_blk.ko'] }),
};

test('the initramfs tree has /init, busybox, /dev/console, the modules and every parent directory first', () => {
  const entries = initramfsEntries(SPEC);
  const paths = entries.map((e) => e.path);
  for (const [i, path] of paths.entries()) {
    if (!path.includes('/')) continue;
    const parent = path.slice(0, path.lastIndexOf('/'));
    assert.ok(paths.indexOf(parent) >= 0 && paths.indexOf(parent) < i, `${parent} before ${path}`);
  }
  for (const dir of ['proc', 'sys', 'dev', 'bin', 'sbin', 'usr/bin', 'usr/sbin', 'tmp']) assert.ok(paths.includes(dir), dir);
  assert.deepEqual(
    entries.filter((e) => e.kind !== 'directory').map((e) => e.path),
    ['init', 'bin/busybox', 'bin/sh', 'dev/console', ...SPEC.modules.map((m) => m.path)],
  );
});

test('the gzip-compressed archive holds the tree with the right types and modes', async () => {
  const entries = readNewc(gunzipSync(await buildInitramfs(SPEC)));
  const byName = new Map(entries.map((e) => [e.name, e]));
  assert.equal(byName.get('init')!.mode, S_IFREG | 0o755);
  assert.equal(Buffer.from(byName.get('init')!.data).toString(), SPEC.init);
  assert.equal(byName.get('bin/busybox')!.mode, S_IFREG | 0o755);
  assert.equal(byName.get('bin/sh')!.mode, S_IFLNK | 0o777);
  assert.equal(byName.get('dev/console')!.mode, S_IFCHR | 0o600);
  assert.deepEqual([byName.get('dev/console')!.rdevMajor, byName.get('dev/console')!.rdevMinor], [5, 1]);
  assert.equal(byName.get('lib/modules/6.1.0-test/kernel/drivers/block')!.mode, S_IFDIR | 0o755);
  assert.equal(Buffer.from(byName.get(SPEC.modules[1].path)!.data).toString(), 'blk');
});

test('/init loads the modules in the order given, then announces itself', () => {
  const script = SPEC.init;
  assert.ok(script.startsWith('#!/bin/sh\n'));
  assert.match(script, /for module in \/lib\/modules\/6\.1\.0-test\/kernel\/drivers\/virtio\/virtio_ring\.ko \/lib\/modules\/6\.1\.0-test\/kernel\/drivers\/block\/virtio_blk\.ko; do/);
  for (const step of ['mount -t proc proc /proc', 'mount -t sysfs sysfs /sys', 'mount -t devtmpfs devtmpfs /dev', '--install -s', 'TSVMM-READY cpus=', 'TSVMM-EXIT status=', 'poweroff -f', 'setsid cttyhack sh']) {
    assert.ok(script.includes(step), step);
  }
  assert.ok(script.indexOf('insmod') < script.indexOf('TSVMM-READY'));
  assert.throws(() => renderInitScript({ modules: ['/lib/modules/x/a b.ko'] }), /does not quote/);
});

test('the marker lines are matched whole', () => {
  assert.equal(READY_LINE.exec('TSVMM-READY cpus=4\r')?.[1], '4');
  assert.equal(EXIT_LINE.exec('TSVMM-EXIT status=127')?.[1], '127');
  assert.equal(EXIT_LINE.exec('[    1.2] TSVMM-EXIT status=1'), null);
  assert.equal(READY_LINE.exec('TSVMM-READY cpus='), null);
});

test('tsvmm.cmd carries any argv: base64 fields joined by commas', () => {
  assert.equal(guestCommandParameter(['ls', '-l']), `tsvmm.cmd=${Buffer.from('ls.').toString('base64')},${Buffer.from('-l.').toString('base64')}`);
  assert.doesNotMatch(guestCommandParameter(['echo', 'a b', '"quoted"', 'x,y', '']), /[\s"]/);
  assert.throws(() => guestCommandParameter([]), /at least a program name/);
});

const SH = '/bin/sh';
test('run_command, as /init has it, rebuilds the exact argv and returns its status', { skip: existsSync(SH) ? false : `${SH} is missing` }, () => {
  const argv = ['printf', '[%s]\\n', 'a b', '', 'trailing newline\n', "it's", 'é', '*', '$HOME', 'a,b', ''];
  const fields = guestCommandParameter(argv).slice('tsvmm.cmd='.length);
  const script = `${RUN_COMMAND_FUNCTION}\nrun_command "$1"; echo "status=$?"; run_command "$2"; echo "status=$?"`;
  const exit3 = guestCommandParameter(['sh', '-c', 'exit 3']).slice('tsvmm.cmd='.length);
  const out = execFileSync(SH, ['-c', script, 'sh', fields, exit3], { cwd: '/' }).toString();
  assert.equal(out, "[a b]\n[]\n[trailing newline\n]\n[it's]\n[é]\n[*]\n[$HOME]\n[a,b]\n[]\nstatus=0\nstatus=3\n");
});
