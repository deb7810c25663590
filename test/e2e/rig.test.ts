/**
 * What the test rig promises the tests that run in it (test/rig): hardware-
 * style KVM from kvm_amd, the devices for taps, vhost and vsock, network
 * namespaces joined by veth, and a TMPDIR of its own. Only meaningful in
 * the rig: elsewhere these skip, saying so.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { test } from 'node:test';

const skip = process.env.TSVMM_TEST_PLACE === 'rig' ? false : 'about the test rig; this run is not in it';

test('the rig has /dev/kvm from kvm_amd, and the tun, vhost-net and vhost-vsock devices', { skip }, () => {
  assert.ok(existsSync('/sys/module/kvm_amd'), 'kvm_amd is loaded');
  assert.match(readFileSync('/proc/misc', 'utf8'), /^\s*\d+ kvm$/m);
  for (const device of ['/dev/kvm', '/dev/net/tun', '/dev/vhost-net', '/dev/vhost-vsock']) {
    assert.ok(statSync(device, { throwIfNoEntry: false })?.isCharacterDevice(), `${device} is a character device`);
  }
});

test('the rig makes network namespaces, veth pairs and taps', { skip }, () => {
  const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });
  const ns = `tsvmm-rig-${process.pid}`;
  ip('netns', 'add', ns);
  try {
    ip('link', 'add', `rv${process.pid}a`, 'type', 'veth', 'peer', 'name', `rv${process.pid}b`);
    ip('link', 'set', `rv${process.pid}b`, 'netns', ns);
    assert.match(ip('netns', 'exec', ns, 'ip', 'link', 'show'), new RegExp(`rv${process.pid}b@`));
    ip('tuntap', 'add', 'dev', `rt${process.pid}`, 'mode', 'tap');
    assert.match(ip('link', 'show', `rt${process.pid}`), new RegExp(`rt${process.pid}: `));
  } finally {
    execFileSync('sh', ['-c', `ip link del rv${process.pid}a; ip tuntap del dev rt${process.pid} mode tap; ip netns del ${ns}`], { stdio: 'ignore' });
  }
});

test('the rig\'s TMPDIR is a tmpfs of its own, and the checkout is where it is on the host', { skip }, () => {
  const mount = readFileSync('/proc/mounts', 'utf8').split('\n').find((line) => line.split(' ')[1] === '/run');
  assert.equal(mount?.split(' ')[2], 'tmpfs', '/run (which holds TMPDIR) is a tmpfs');
  assert.ok(tmpdir().startsWith('/run/'), `TMPDIR is ${tmpdir()}`);
  assert.ok(existsSync(new URL('../../../package.json', import.meta.url)), 'the checkout is there');
});
