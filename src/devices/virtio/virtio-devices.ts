/**
 * The virtio devices a machine can have, by DeviceSpec kind, and what each
 * needs at the three places a device comes to life: the build (main
 * thread: open what it uses), every thread's transport (what it shows the
 * driver), and its I/O thread (the device itself).
 */
import { openRawImage, RawImage, type OpenedImage } from '../disk/raw-image.js';
import type { PciFunctionWiring } from '../pci/wiring.js';
import { BLK_QUEUE_SIZES, blkInfo, checkBlkId, VirtioBlk, type BlkOptions } from './blk.js';
import type { VirtioDevice, VirtioDeviceInfo } from './device.js';
import { RNG_INFO, VirtioRng } from './rng.js';
import { existsSync, rmSync } from 'node:fs';
import { basename } from 'node:path';
import { VhostFd } from '../../vhost/vhost.js';
import { openTap, Tap } from '../net/tap.js';
import type { VhostDevice } from './vhost-backend.js';
import { VhostNet } from './vhost-net.js';
import { openVhostVsock, VHOST_VSOCK_PATH, VhostVsock } from './vhost-vsock.js';
import { listenUds, VsockUds } from './vsock-uds.js';
import { checkGuestCid, VSOCK_QUEUE_SIZES, vsockInfo } from './vsock.js';
import { derivedMac, NET_HEADER_SIZE, NET_QUEUE_SIZES, netInfo, parseMac, RX_QUEUE, TX_QUEUE, VirtioNet } from './net.js';
import { QueueLimiter, RateLimiter, SharedRateLimits, type RateLimiterConfig } from './rate-limiter.js';

export type VirtioKind = 'virtio-rng' | 'virtio-blk' | 'virtio-net' | 'virtio-vsock';
/** The virtio devices as DeviceSpec carries them: what the user chose, and what the builder adds. */
export type VirtioSpec =
  /** An entropy source on PCI. The builder gives it `pci`: its slot, BAR and interrupts. */
  | { kind: 'virtio-rng'; pci?: PciFunctionWiring }
  /** A disk on PCI over a raw image file. `id` is the ID string the guest reads (default: from the file's
   *  device and inode numbers). The builder opens the image (`image`), puts the rate limiter in shared
   *  memory (`limits`, which the API may change later) and gives it `pci`. */
  | {
    kind: 'virtio-blk'; path: string; readOnly?: boolean; id?: string; rateLimiter?: RateLimiterConfig;
    pci?: PciFunctionWiring; image?: OpenedImage; limits?: SharedArrayBuffer;
  }
  /** A network card on PCI over an existing tap interface. `mac` defaults to one derived from the tap's name.
   *  `vhost`: the data path in the host kernel (/dev/vhost-net); default where the host has it and no rate
   *  limiter is set, false for userspace. The builder opens the tap (`tapFd`) and vhost-net (`vhostFd`), puts
   *  the receive and transmit limiters in shared memory (`limits`), and gives it `pci`. */
  | {
    kind: 'virtio-net'; tap: string; id?: string; mac?: string; vhost?: boolean; rxRateLimiter?: RateLimiterConfig; txRateLimiter?: RateLimiterConfig;
    pci?: PciFunctionWiring; tapFd?: number; vhostFd?: number; limits?: SharedArrayBuffer;
  }
  /** A socket line to the host, guest context ID `cid`: with `uds`, over Unix sockets at that path as
   *  Firecracker's hybrid vsock does (the device in the VMM); without, the host kernel's vhost-vsock and
   *  the host's AF_VSOCK sockets. The builder opens the socket (`listenFd`) or vhost-vsock (`vhostFd`), and gives it `pci`. */
  | { kind: 'virtio-vsock'; cid: number; uds?: string; pci?: PciFunctionWiring; vhostFd?: number; listenFd?: number };

interface VirtioKindEntry<S extends VirtioSpec> {
  /** The same for every device of the kind: they size its shared state. */
  queueSizes: readonly number[];
  /**
   * At build time: the spec with what the device's threads need; the fds it opens go to `own`, who
   * closes them, and what else must be undone when the machine goes (a socket file) to `cleanUp`.
   */
  prepare(spec: S, own: (fd: number) => void, cleanUp: (undo: () => void) => void): S;
  info(spec: S): VirtioDeviceInfo;
  /** On the device's I/O thread, for the userspace path; `report` hears what the device wants the user to know. */
  create?(spec: S, report: (message: string) => void): VirtioDevice;
  /** On the device's I/O thread, when the builder gave the device a vhost fd: the kernel serves its queues. */
  vhost?(spec: S, report: (message: string) => void): VhostDevice | undefined;
}

type BlkSpec = Extract<VirtioSpec, { kind: 'virtio-blk' }>;

function openedImage(spec: BlkSpec): OpenedImage {
  if (spec.image === undefined) throw new Error(`virtio-blk '${spec.path}': the image is not open yet: the builder opens it`);
  return spec.image;
}

type NetSpec = Extract<VirtioSpec, { kind: 'virtio-net' }>;

function netMac(spec: NetSpec) {
  try {
    return spec.mac === undefined ? derivedMac(spec.tap) : parseMac(spec.mac);
  } catch (e) {
    throw new Error(`network tap '${spec.tap}': mac ${(e as Error).message}`);
  }
}

function tapFd(spec: NetSpec): number {
  if (spec.tapFd === undefined) throw new Error(`virtio-net '${spec.tap}': the tap is not open yet: the builder opens it`);
  return spec.tapFd;
}

const VHOST_NET_PATH = '/dev/vhost-net';

/**
 * Opens a vhost device for `what`: when `wanted` is true (an error if it cannot be opened), or undefined
 * (where the host has one and lets us open it); never when false. Undefined when not opened.
 */
function openVhost(path: string, wanted: boolean | undefined, what: string): number | undefined {
  if (wanted === false || (wanted === undefined && !existsSync(path))) return undefined;
  try {
    return VhostFd.open(path).fd;
  } catch (e) {
    // Not asked for by name: the userspace path serves instead.
    if (wanted === undefined) return undefined;
    throw new Error(`${what}: vhost: ${(e as Error).message}${existsSync(path) ? '' : ` (load the module: modprobe ${basename(path).replace('-', '_')}, or ask for the userspace path with vhost=off)`}`);
  }
}

function blkOptions(spec: BlkSpec): BlkOptions {
  return { readOnly: spec.readOnly ?? false, id: spec.id ?? openedImage(spec).fileId };
}

/** The limits the builder put in shared memory for the device. */
function sharedLimits(spec: BlkSpec | NetSpec): SharedRateLimits {
  if (spec.limits === undefined) throw new Error(`${spec.kind}: its rate limits are not set up yet: the builder does that`);
  return new SharedRateLimits(spec.limits);
}

/** Which of a device's limiters is which, in its shared limits. */
export const LimiterIndex = { BLK: 0, NET_RX: 0, NET_TX: 1 } as const;

const kinds: { [K in VirtioKind]: VirtioKindEntry<Extract<VirtioSpec, { kind: K }>> } = {
  'virtio-rng': {
    queueSizes: RNG_INFO.queueSizes,
    prepare: (spec) => spec,
    info: () => RNG_INFO,
    create: () => new VirtioRng(),
  },
  'virtio-blk': {
    queueSizes: BLK_QUEUE_SIZES,
    prepare: (spec, own) => {
      if (spec.id !== undefined) checkBlkId(spec.id);
      const image = openRawImage(spec.path, spec.readOnly ?? false);
      own(image.fd);
      return { ...spec, image, limits: SharedRateLimits.create([spec.rateLimiter]).buffer };
    },
    info: (spec) => blkInfo(openedImage(spec).size, blkOptions(spec)),
    create: (spec, report) => {
      const limiter = new QueueLimiter(sharedLimits(spec), LimiterIndex.BLK, 0);
      return new VirtioBlk(new RawImage(openedImage(spec).fd, openedImage(spec).size), { ...blkOptions(spec), limiter }, report);
    },
  },
  'virtio-net': {
    queueSizes: NET_QUEUE_SIZES,
    prepare: (spec, own) => {
      netMac(spec);
      const fd = openTap(spec.tap, NET_HEADER_SIZE);
      own(fd);
      // A rate limiter needs the frames to pass through the VMM.
      const limited = RateLimiter.limits(spec.rxRateLimiter) || RateLimiter.limits(spec.txRateLimiter);
      const vhostFd = openVhost(VHOST_NET_PATH, spec.vhost ?? (limited ? false : undefined), `network tap '${spec.tap}'`);
      if (vhostFd !== undefined) own(vhostFd);
      return { ...spec, tapFd: fd, vhostFd, limits: SharedRateLimits.create([spec.rxRateLimiter, spec.txRateLimiter]).buffer };
    },
    info: (spec) => netInfo(netMac(spec)),
    create: (spec, report) => {
      const limits = sharedLimits(spec);
      return new VirtioNet(netMac(spec), new Tap(tapFd(spec), report), {
        rx: new QueueLimiter(limits, LimiterIndex.NET_RX, RX_QUEUE),
        tx: new QueueLimiter(limits, LimiterIndex.NET_TX, TX_QUEUE),
      });
    },
    vhost: (spec, report) => (spec.vhostFd === undefined ? undefined : new VhostNet(new VhostFd(spec.vhostFd), new Tap(tapFd(spec), report))),
  },
  'virtio-vsock': {
    queueSizes: VSOCK_QUEUE_SIZES,
    prepare: (spec, own, cleanUp) => {
      checkGuestCid(spec.cid);
      if (spec.uds !== undefined) {
        const listenFd = listenUds(spec.uds);
        own(listenFd);
        // The socket file would keep the next VM off the path.
        const path = spec.uds;
        cleanUp(() => rmSync(path, { force: true }));
        return { ...spec, listenFd };
      }
      if (!existsSync(VHOST_VSOCK_PATH)) {
        throw new Error(`vsock cid=${spec.cid}: this host has no ${VHOST_VSOCK_PATH} (modprobe vhost_vsock); or give uds=PATH for vsock over Unix sockets`);
      }
      const vhostFd = openVhostVsock(spec.cid);
      own(vhostFd);
      return { ...spec, vhostFd };
    },
    info: (spec) => vsockInfo(spec.cid),
    create: (spec, report) => {
      if (spec.uds === undefined || spec.listenFd === undefined) throw new Error(`vsock cid=${spec.cid}: the Unix socket is not open yet: the builder opens it`);
      return new VsockUds(spec.cid, spec.uds, spec.listenFd, report);
    },
    vhost: (spec) => (spec.vhostFd === undefined ? undefined : new VhostVsock(new VhostFd(spec.vhostFd), vsockInfo(spec.cid))),
  },
};

function kindOf<S extends VirtioSpec>(spec: S): VirtioKindEntry<S> {
  return kinds[spec.kind] as unknown as VirtioKindEntry<S>;
}

export function isVirtioSpec(spec: { kind: string }): spec is VirtioSpec {
  return Object.hasOwn(kinds, spec.kind);
}

export function virtioQueueSizes(kind: VirtioKind): readonly number[] {
  return kinds[kind].queueSizes;
}

export function prepareVirtioSpec<S extends VirtioSpec>(spec: S, own: (fd: number) => void, cleanUp: (undo: () => void) => void): S {
  return kindOf(spec).prepare(spec, own, cleanUp);
}

export function virtioInfo(spec: VirtioSpec): VirtioDeviceInfo {
  return kindOf(spec).info(spec);
}

export function createVhostDevice(spec: VirtioSpec, report: (message: string) => void): VhostDevice | undefined {
  return kindOf(spec).vhost?.(spec, report);
}

export function createVirtioDevice(spec: VirtioSpec, report: (message: string) => void): VirtioDevice {
  const { create } = kindOf(spec);
  if (create === undefined) throw new Error(`${spec.kind} has no userspace path: it runs through vhost`);
  return create(spec, report);
}
