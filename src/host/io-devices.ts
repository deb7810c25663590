/**
 * The host devices tsvmm's network and vsock devices use, for `tsvmm
 * check`: whether each is there and usable by this user, and what tsvmm
 * does without it.
 */
import type { HostProbe } from './host-probe.js';

export interface IoDeviceStatus {
  path: string;
  /** There and readable and writable by this user. */
  usable: boolean;
  /** What it gives, or what happens without it. */
  note: string;
}

const DEVICES = [
  { path: '/dev/net/tun', module: 'tun', with: 'taps for --net', without: '--net cannot open a tap' },
  { path: '/dev/vhost-net', module: 'vhost_net', with: '--net data path in the kernel', without: '--net uses the userspace path' },
  { path: '/dev/vhost-vsock', module: 'vhost_vsock', with: '--vsock through the kernel (host AF_VSOCK)', without: '--vsock needs uds=PATH' },
] as const;

export function inspectIoDevices(host: HostProbe): IoDeviceStatus[] {
  return DEVICES.map((d) => {
    if (host.stat(d.path) === undefined) return { path: d.path, usable: false, note: `absent (modprobe ${d.module}): ${d.without}` };
    const denied = host.readWriteDenied(d.path);
    if (denied !== undefined) return { path: d.path, usable: false, note: `no access (${denied}): ${d.without}` };
    return { path: d.path, usable: true, note: d.with };
  });
}
