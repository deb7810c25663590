/**
 * Rate limits changed on a running machine (Firecracker's PATCH /drives and
 * PATCH /network-interfaces): the new limits go to the shared memory the
 * device's I/O thread reads them from, and take effect at its next request
 * or frame. Runs on the main thread.
 */
import type { MachineDevice } from '../devices/registry.js';
import type { RateLimiterConfig } from '../devices/virtio/rate-limiter.js';
import { SharedRateLimits } from '../devices/virtio/rate-limiter.js';
import { LimiterIndex } from '../devices/virtio/virtio-devices.js';

/** Which limiter: a disk's, or a network card's for one direction; each by its configured id. */
export type LimiterTarget = { disk: string } | { net: string; direction: 'rx' | 'tx' };

/** Throws a one-line Error naming the device when there is no such device or its limits cannot change. */
export function updateRateLimiter(devices: readonly MachineDevice[], target: LimiterTarget, update: RateLimiterConfig): void {
  if ('disk' in target) {
    const disk = devices.find((d) => d.spec.kind === 'virtio-blk' && d.spec.id === target.disk)?.spec;
    if (disk?.kind !== 'virtio-blk' || disk.limits === undefined) throw new Error(`drive '${target.disk}': this machine has no such drive`);
    new SharedRateLimits(disk.limits).update(LimiterIndex.BLK, update);
    return;
  }
  const net = devices.find((d) => d.spec.kind === 'virtio-net' && d.spec.id === target.net)?.spec;
  if (net?.kind !== 'virtio-net' || net.limits === undefined) throw new Error(`network interface '${target.net}': this machine has no such interface`);
  if (net.vhostFd !== undefined) {
    throw new Error(`network interface '${target.net}': its frames go through vhost-net in the host kernel, where tsvmm cannot rate-limit them; give it a rate limiter (or vhost off) when it is configured`);
  }
  new SharedRateLimits(net.limits).update(target.direction === 'rx' ? LimiterIndex.NET_RX : LimiterIndex.NET_TX, update);
}
