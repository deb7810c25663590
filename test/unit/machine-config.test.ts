/**
 * The library's configuration is checked before /dev/kvm is opened: each
 * refusal is a ConfigError naming the field, and comes before any KVM
 * error (on a host without /dev/kvm these would otherwise fail to open it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildMachine, ConfigError } from '../../src/vmm/builder.js';
import type { MachineConfig } from '../../src/vmm/config.js';

const raw = { kind: 'raw', image: Uint8Array.of(0xf4), mode: 'long', loadAddr: 0x100000 } as const;
const refused = (config: unknown, message: RegExp) =>
  assert.throws(() => buildMachine(config as MachineConfig), (e: unknown) => e instanceof ConfigError && message.test(e.message));

test('sizes, counts and kinds out of range are refused, naming the field', () => {
  refused({ memory: 1000, cpus: 1, boot: raw }, /^machine config: memory: Too small/);
  refused({ memory: (64 << 20) + 1, cpus: 1, boot: raw }, /^machine config: memory: must be a multiple of 4 KiB$/);
  refused({ memory: 64 << 20, cpus: 0, boot: raw }, /^machine config: cpus: Too small/);
  refused({ memory: 64 << 20, cpus: 1, boot: { ...raw, mode: 'unreal' } }, /^machine config: boot\.mode: /);
  refused({ memory: 64 << 20, cpus: 1, boot: { kind: 'floppy' } }, /^machine config: boot\.kind: /);
  refused({ memory: 64 << 20, cpus: 1, boot: raw, colour: 'red' }, /^machine config: unknown field 'colour'$/);
});

test('devices: unknown options, bad values from the device\'s own checks, files that are not there', () => {
  const withDevice = (device: unknown) => ({ memory: 64 << 20, cpus: 1, boot: raw, devices: [{ kind: 'serial' }, device] });
  refused(withDevice({ kind: 'virtio-blk', path: '/nonexistent/disk.img' }), /^machine config: devices\.1\.path: '\/nonexistent\/disk.img': no such file$/);
  refused(withDevice({ kind: 'virtio-blk', path: '/etc/hostname', cache: 'none' }), /^machine config: devices\.1: unknown field 'cache'$/);
  refused(withDevice({ kind: 'virtio-net', tap: 'tap0', mac: '01:00:00:00:00:01' }), /^machine config: devices\.1\.mac: /);
  refused(withDevice({ kind: 'virtio-vsock', cid: 2 }), /^machine config: devices\.1\.cid: /);
  refused(withDevice({ kind: 'debug-exit', size: 3 }), /^machine config: devices\.1\.size: must be 1, 2 or 4$/);
  refused(withDevice({ kind: 'pci-ecam', base: 0 }), /^machine config: devices\.1\.kind: /, );
  refused({ memory: 64 << 20, cpus: 1, boot: raw, cpuFeatures: { warp: true } }, /^machine config: cpuFeatures\.warp: unknown CPU feature 'warp'/);
});
