/**
 * QEMU's command line as `tsvmm qemu` reads it: the option syntax, and the
 * machine each command line describes, or the one-line refusal.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { UsageError } from '../../src/cli/fail.js';
import { parseQemuArgs, parseQemuList, splitQemuList } from '../../src/cli/qemu/qemu-args.js';
import { qemuMachine, type QemuMachine } from '../../src/cli/qemu/qemu-machine.js';

const dir = mkdtempSync(join(tmpdir(), 'tsvmm-qemu-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, data: Uint8Array): string => {
  const path = join(dir, name);
  writeFileSync(path, data);
  return path;
};

/** A multiboot 1 header (flags 0) at the start of 64 bytes: enough for the loader's checks here. */
function multiboot1(): Uint8Array {
  const image = new Uint8Array(64);
  const v = new DataView(image.buffer);
  v.setUint32(0, 0x1badb002, true);
  v.setUint32(4, 0, true);
  v.setUint32(8, -0x1badb002 >>> 0, true);
  return image;
}

function multiboot2(): Uint8Array {
  const image = new Uint8Array(64);
  const v = new DataView(image.buffer);
  v.setUint32(0, 0xe85250d6, true);
  v.setUint32(8, 24, true);
  v.setUint32(12, -(0xe85250d6 + 24) >>> 0, true);
  v.setUint32(20, 8, true); // end tag
  return image;
}

const mb1 = file('mb1.elf', multiboot1());
const mb2 = file('mb2.elf', multiboot2());
const linux = file('bzImage', new Uint8Array(16));
const modA = file('a', new Uint8Array([1]));
const modB = file('b,c', new Uint8Array([2]));
const disk = file('disk.img', new Uint8Array(4096));

const machine = (...argv: string[]): QemuMachine => qemuMachine(parseQemuArgs(argv));
const refused = (argv: string[], message: RegExp) => assert.throws(() => machine(...argv), (e: unknown) => e instanceof UsageError && message.test(e.message));
const kinds = (m: QemuMachine) => m.config.devices!.map((d) => d.kind);

test('option syntax: one or two dashes, values, QEMU lists with ,, for a comma', () => {
  assert.deepEqual(parseQemuArgs(['--kernel', 'k', '-no-reboot', '-m', '64']), [{ name: 'kernel', value: 'k' }, { name: 'no-reboot' }, { name: 'm', value: '64' }]);
  assert.deepEqual(splitQemuList('a,,b,c'), ['a,b', 'c']);
  const list = parseQemuList('device', 'isa-debug-exit,iobase=0xf4,iosize=1');
  assert.equal(list.head, 'isa-debug-exit');
  assert.deepEqual([...list.props], [['iobase', '0xf4'], ['iosize', '1']]);
  assert.deepEqual([...parseQemuList('m', '512M', 'size').props], [['size', '512M']]);
  assert.throws(() => parseQemuArgs(['-hda', 'x']), /unsupported QEMU option '-hda' \(tsvmm qemu takes -kernel/);
  assert.throws(() => parseQemuArgs(['-kernel']), /-kernel needs a value/);
  assert.throws(() => parseQemuArgs(['kernel']), /'kernel' is not an option/);
  assert.throws(() => parseQemuList('device', 'x,iobase=1,iobase=2'), /'iobase' is given twice/);
});

test('a harness\'s usual line: a multiboot kernel, its console on stdio, debug-exit, no reboot', () => {
  const m = machine('-kernel', mb1, '-append', 'a b', '-display', 'none', '-serial', 'stdio', '-monitor', 'none', '-no-reboot',
    '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04', '-enable-kvm', '-machine', 'q35,accel=kvm', '-accel', 'kvm');
  assert.deepEqual(m.console, { kind: 'stdio' });
  assert.equal(m.noReboot, true);
  assert.equal(m.config.memory, 128 << 20, 'QEMU\'s default 128 MiB');
  assert.equal(m.config.cpus, 1);
  const boot = m.config.boot;
  assert.equal(boot.kind, 'multiboot');
  assert.equal(boot.kind === 'multiboot' && boot.cmdline, `${mb1} a b`, 'as QEMU: the kernel path, then -append');
  assert.deepEqual(m.config.devices!.find((d) => d.kind === 'debug-exit'), { kind: 'debug-exit', port: 0xf4, size: 4 });
  assert.deepEqual(kinds(m).slice(0, 4), ['serial', 'i8042', 'rtc', 'acpi-pm']);
});

test('no debug-exit port unless asked, and no COM1 with -nodefaults unless -serial', () => {
  assert.ok(!kinds(machine('-kernel', mb1)).includes('debug-exit'));
  assert.ok(!kinds(machine('-kernel', mb1, '-nodefaults')).includes('serial'));
  assert.ok(kinds(machine('-kernel', mb1, '-nodefaults', '-serial', 'stdio')).includes('serial'));
  assert.deepEqual(machine('-kernel', mb1, '-nographic').console, { kind: 'stdio' });
  assert.deepEqual(machine('-kernel', mb1, '-serial', 'file:/tmp/x').console, { kind: 'file', path: '/tmp/x' });
  const quiet = machine('-kernel', mb1);
  assert.deepEqual(quiet.console, { kind: 'none' });
  assert.match(quiet.consoleNote!, /no -serial and no -nographic/);
});

test('-initrd for a multiboot kernel: modules split at commas (,, a comma in a name), arguments after a space', () => {
  const m = machine('-kernel', mb1, '-initrd', `${modA} x y,${modB.replace(',', ',,')}`);
  const boot = m.config.boot;
  assert.ok(boot.kind === 'multiboot');
  assert.deepEqual(boot.modules!.map((x) => [x.cmdline, [...x.data]]), [[`${modA} x y`, [1]], [modB, [2]]], 'QEMU gives each module its whole item');
  const v2 = machine('-kernel', mb2, '-initrd', `${modA} x y`, '-append', 'z').config.boot;
  assert.ok(v2.kind === 'multiboot');
  assert.deepEqual([v2.version, v2.cmdline, v2.modules![0].cmdline], [2, 'z', 'x y'], 'multiboot2 as GRUB 2: arguments only');
});

test('a Linux kernel gets -append as it is and -initrd as its initramfs', () => {
  const boot = machine('-kernel', linux, '-initrd', modA, '-append', 'console=ttyS0').config.boot;
  assert.ok(boot.kind === 'linux');
  assert.deepEqual([boot.cmdline, [...boot.initrd!]], ['console=ttyS0', [1]]);
});

test('memory and CPUs as QEMU writes them', () => {
  assert.equal(machine('-kernel', mb1, '-m', '256').config.memory, 256 << 20, 'a bare number is MiB');
  assert.equal(machine('-kernel', mb1, '-m', '1G').config.memory, 1 << 30);
  assert.equal(machine('-kernel', mb1, '-m', 'size=64M').config.memory, 64 << 20);
  assert.equal(machine('-kernel', mb1, '-smp', '4').config.cpus, 4);
  assert.equal(machine('-kernel', mb1, '-smp', 'cpus=3').config.cpus, 3);
  assert.equal(machine('-kernel', mb1, '-smp', 'sockets=2,cores=2,threads=2').config.cpus, 8);
  refused(['-kernel', mb1, '-m', '512M,slots=2,maxmem=4G'], /-m 512M,slots=2,maxmem=4G: unsupported properties slots, maxmem/);
  refused(['-kernel', mb1, '-smp', '2,maxcpus=4'], /no CPU hotplug/);
  refused(['-kernel', mb1, '-m', 'lots'], /-m: 'lots' is not a size/);
});

test('-cpu models and features by QEMU\'s names', () => {
  const m = machine('-kernel', mb1, '-cpu', 'max,+x2apic,-avx,pdpe1gb=off');
  assert.equal(m.config.cpuTemplate, 'host');
  assert.deepEqual(m.config.cpuFeatures, { x2apic: true, avx: false, pdpe1gb: false });
  assert.equal(machine('-kernel', mb1, '-cpu', 'qemu64').config.cpuTemplate, 'minimal');
  refused(['-kernel', mb1, '-cpu', 'Skylake-Server'], /-cpu Skylake-Server: tsvmm offers host, max, qemu64 and kvm64/);
  refused(['-kernel', mb1, '-cpu', 'host,+warp-drive'], /-cpu: unknown CPU feature 'warp-drive'/);
});

test('disks and network cards: -drive if=virtio, or if=none with -device virtio-blk-pci; -netdev tap with virtio-net-pci', () => {
  const m = machine('-kernel', mb1, '-drive', `file=${disk},format=raw,if=virtio,readonly=on`, '-drive', `file=${disk},if=none,id=d1,serial=vol1`,
    '-device', 'virtio-blk-pci,drive=d1', '-netdev', 'tap,id=n0,ifname=tap0,script=no,downscript=no,vhost=off',
    '-device', 'virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56', '-device', 'virtio-rng-pci', '-device', 'pc-testdev', '-device', 'pci-testdev');
  assert.ok(kinds(m).includes('pc-testdev') && kinds(m).includes('pci-testdev'), 'QEMU\'s test devices, opt-in');
  assert.deepEqual(m.config.devices!.filter((d) => d.kind.startsWith('virtio')), [
    { kind: 'virtio-blk', path: disk, readOnly: true, id: undefined },
    { kind: 'virtio-blk', path: disk, readOnly: undefined, id: 'vol1' },
    { kind: 'virtio-net', tap: 'tap0', mac: '52:54:00:12:34:56', vhost: false },
    { kind: 'virtio-rng' },
  ]);
  refused(['-kernel', mb1, '-drive', `file=${disk},format=qcow2,if=virtio`], /format=qcow2: tsvmm reads raw images only/);
  refused(['-kernel', mb1, '-drive', `file=${disk},if=ide`], /tsvmm takes if=virtio/);
  refused(['-kernel', mb1, '-drive', `file=${disk},if=none,id=d`], /-drive\/-netdev d: no -device uses it/);
  refused(['-kernel', mb1, '-device', 'virtio-blk-pci,drive=nope'], /drive=nope names no -drive id/);
  refused(['-kernel', mb1, '-netdev', 'tap,id=n,ifname=t,script=/etc/qemu-ifup', '-device', 'virtio-net-pci,netdev=n'], /runs no scripts/);
  refused(['-kernel', mb1, '-netdev', 'user,id=n'], /-netdev user,id=n: tsvmm takes tap/);
  refused(['-kernel', mb1, '-device', 'e1000'], /-device e1000: tsvmm qemu offers/);
  refused(['-kernel', mb1, '-device', 'isa-debug-exit,iosize=3'], /iosize=3 is not 1, 2 or 4/);
  refused(['-kernel', mb1, '-device', 'isa-debug-exit,colour=red'], /-device isa-debug-exit: unsupported property colour/);
});

test('what tsvmm is not, refused in one line naming it', () => {
  refused([], /-kernel is required/);
  refused(['-kernel', join(dir, 'missing')], /-kernel '.*missing': no such file/);
  refused(['-kernel', mb1, '-accel', 'tcg'], /-accel tcg: tsvmm runs guests on KVM only/);
  refused(['-kernel', mb1, '-machine', 'pc,accel=tcg'], /accel=tcg: tsvmm runs guests on KVM only/);
  refused(['-kernel', mb1, '-M', 'microvm'], /-M microvm: tsvmm's machine is a PC/);
  refused(['-kernel', mb1, '-machine', 'q35,smm=off'], /-machine q35: unsupported property smm/);
  refused(['-kernel', mb1, '-display', 'gtk'], /-display gtk: tsvmm has no display/);
  refused(['-kernel', mb1, '-monitor', 'stdio'], /-monitor stdio: tsvmm has no monitor/);
  refused(['-kernel', mb1, '-serial', 'stdio', '-serial', 'null'], /more than once/);
  refused(['-kernel', mb1, '-serial', 'tcp::4444'], /-serial tcp::4444: tsvmm takes stdio/);
  refused(['-kernel', mb1, '-fw_cfg', 'opt/x'], /-fw_cfg: 'opt\/x' is not NAME,file=PATH/);
});
