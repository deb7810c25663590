/**
 * The default Linux guest: Debian's current cloud kernel and an initramfs
 * of busybox, the virtio modules and tsvmm's /init, built from Debian
 * packages and kept in the user's cache. Once built, asking again costs a
 * hash check of the two files; `force` rebuilds from the packages apt
 * offers now.
 */
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { resolveGuestPackages, withAptDownload, BUSYBOX_PACKAGE, type DownloadedPackage } from './apt-download.js';
import { debDataTar, DebArchiveError } from './deb-archive.js';
import { cachedFile, cacheRoot, readCachedGuest, storeGuest, type GuestManifest } from './guest-cache.js';
import { renderInitScript } from './init-script.js';
import { buildInitramfs } from './initramfs.js';
import { resolveModules, type WantedModule } from './kernel-modules.js';
import { readKernelPackage } from './kernel-package.js';
import { silentProgress, type Progress } from './progress.js';
import { readTarMembers } from './tar-reader.js';

/** Bump when what goes into the guest changes, so that cached guests are rebuilt. */
export const GUEST_RECIPE = 1;

/** The drivers for tsvmm's virtio devices; dependencies are found by resolveModules. */
export const GUEST_MODULES: WantedModule[] = [
  { name: 'virtio_pci' },
  { name: 'virtio_mmio' },
  { name: 'virtio_blk' },
  { name: 'virtio_net' },
  { name: 'virtio_rng' },
  { name: 'vmw_vsock_virtio_transport' },
  { name: 'virtio_console', optional: true },
];

export interface DefaultGuest {
  /** Path of the bzImage. */
  kernel: string;
  /** Path of the gzip-compressed cpio initramfs. */
  initrd: string;
  /** Kernel release, e.g. "6.1.0-56-cloud-amd64". */
  release: string;
  packages: { name: string; version: string }[];
  /** False when this call built the guest. */
  cached: boolean;
}

export interface EnsureGuestOptions {
  progress?: Progress;
  /** Rebuild even if a complete guest is cached. */
  force?: boolean;
  /** Defaults to cacheRoot(). */
  cacheDir?: string;
}

const MiB = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const seconds = (since: number): string => `${((performance.now() - since) / 1000).toFixed(1)} s`;

function describe(dir: string, manifest: GuestManifest, cached: boolean): DefaultGuest {
  return {
    kernel: join(dir, manifest.kernel.file),
    initrd: join(dir, manifest.initrd.file),
    release: manifest.release,
    packages: manifest.packages.map(({ name, version }) => ({ name, version })),
    cached,
  };
}

/** Runs `read` on the package's bytes; whatever fails names the package. */
async function unpack<T>(deb: DownloadedPackage, read: (bytes: Uint8Array) => Promise<T>): Promise<T> {
  try {
    return await read(readFileSync(deb.file));
  } catch (e) {
    throw new DebArchiveError(`cannot unpack ${basename(deb.file)}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

async function readBusybox(deb: Uint8Array): Promise<Uint8Array> {
  const [binary] = await readTarMembers(debDataTar(deb), (path) => path === 'bin/busybox');
  if (binary?.data === undefined) throw new Error(`${BUSYBOX_PACKAGE} holds no bin/busybox`);
  return binary.data;
}

export async function ensureDefaultGuest(options: EnsureGuestOptions = {}): Promise<DefaultGuest> {
  const progress = options.progress ?? silentProgress;
  const dir = join(options.cacheDir ?? cacheRoot(), 'default-guest');
  const cached = options.force ? undefined : readCachedGuest(dir, GUEST_RECIPE);
  if (cached) return describe(dir, cached, true);

  const { kernel, busybox } = await resolveGuestPackages();
  progress.done('packages', `${kernel.name} ${kernel.version}, ${busybox.name} ${busybox.version}`);
  let started = performance.now();
  const manifest = await withAptDownload(
    [kernel, busybox],
    (fraction) => progress.update(`downloading ${kernel.name} and ${busybox.name}`, fraction),
    async ([kernelDeb, busyboxDeb]) => {
      progress.done('download', `${MiB(kernel.size + busybox.size)} in ${seconds(started)}`);

      started = performance.now();
      const kernelPackage = await unpack(kernelDeb, (bytes) => readKernelPackage(bytes, (fraction) => progress.update(`unpacking ${kernel.name}`, fraction)));
      const busyboxBinary = await unpack(busyboxDeb, readBusybox);
      progress.done('unpack', `kernel ${kernelPackage.release} (${MiB(kernelPackage.vmlinuz.length)}), ${kernelPackage.moduleFiles.size} modules, busybox (${MiB(busyboxBinary.length)}) in ${seconds(started)}`);

      started = performance.now();
      const modules = resolveModules(kernelPackage.catalog, GUEST_MODULES);
      const modulePath = (path: string) => `lib/modules/${kernelPackage.release}/${path}`;
      const initrd = await buildInitramfs({
        busybox: busyboxBinary,
        modules: modules.map((m) => ({ path: modulePath(m.path), data: kernelPackage.moduleFiles.get(m.path)! })),
        init: renderInitScript({ modules: modules.map((m) => `/${modulePath(m.path)}`) }),
      });
      progress.done('initramfs', `busybox and ${modules.length} modules, ${MiB(initrd.length)} in ${seconds(started)}`);

      const kernelFile = `vmlinuz-${kernelPackage.release}`;
      const initrdFile = `initramfs-${kernelPackage.release}.cpio.gz`;
      const manifest: GuestManifest = {
        recipe: GUEST_RECIPE,
        builtAt: new Date().toISOString(),
        release: kernelPackage.release,
        packages: [kernelDeb, busyboxDeb].map((p) => ({ name: p.name, version: p.version, sha256: p.sha256 })),
        modules: modules.map((m) => m.name),
        kernel: cachedFile(kernelFile, kernelPackage.vmlinuz),
        initrd: cachedFile(initrdFile, initrd),
      };
      storeGuest(dir, new Map([[kernelFile, kernelPackage.vmlinuz], [initrdFile, initrd]]), manifest);
      return manifest;
    },
  );
  return describe(dir, manifest, false);
}
