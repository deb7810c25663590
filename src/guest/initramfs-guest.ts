/**
 * A guest built from Debian packages: a kernel behind a metapackage, and an
 * initramfs of busybox, some of that kernel's modules (each after its
 * dependencies) and an /init, kept in the user's cache under the recipe's
 * name. Once built, asking again costs a hash check of the two files;
 * `force` rebuilds from the packages apt offers now.
 *
 * The default guest is one such recipe; the test rig's machine is another.
 */
import { join } from 'node:path';
import { cachedFile, cacheRoot, readCachedGuest, storeGuest, type GuestManifest } from './guest-cache.js';
import { buildInitramfs } from './initramfs.js';
import { withKernelAndBusybox } from './kernel-and-busybox.js';
import { resolveModules, type WantedModule } from './kernel-modules.js';
import { formatMiB, secondsSince, silentProgress, type Progress } from './progress.js';

export interface GuestRecipe {
  /** Directory name in the cache. */
  name: string;
  /** Bump when what goes into the guest changes, so that cached guests are rebuilt. */
  version: number;
  /** The Debian metapackage that names the kernel, e.g. linux-image-cloud-amd64. */
  kernelMetapackage: string;
  modules: WantedModule[];
  /** The /init script, given the module files in load order as absolute paths inside the initramfs. */
  init(modules: string[]): string;
}

export interface BuiltGuest {
  /** Path of the bzImage. */
  kernel: string;
  /** Path of the gzip-compressed cpio initramfs. */
  initrd: string;
  /** Kernel release, e.g. "6.1.0-56-cloud-amd64": what `uname -r` prints in the guest. */
  release: string;
  packages: { name: string; version: string }[];
  /** Modules /init loads, in load order. */
  modules: string[];
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

function describe(dir: string, manifest: GuestManifest, cached: boolean): BuiltGuest {
  return {
    kernel: join(dir, manifest.kernel.file),
    initrd: join(dir, manifest.initrd.file),
    release: manifest.release,
    packages: manifest.packages.map(({ name, version }) => ({ name, version })),
    modules: manifest.modules,
    cached,
  };
}

/** The guest `recipe` describes, from the cache or built now. */
export async function ensureGuest(recipe: GuestRecipe, options: EnsureGuestOptions = {}): Promise<BuiltGuest> {
  const progress = options.progress ?? silentProgress;
  const dir = join(options.cacheDir ?? cacheRoot(), recipe.name);
  const cached = options.force ? undefined : readCachedGuest(dir, recipe.version);
  if (cached) return describe(dir, cached, true);

  const manifest = await withKernelAndBusybox(recipe.kernelMetapackage, progress, async ({ kernel, busybox, packages }) => {
    const started = performance.now();
    const modules = resolveModules(kernel.catalog, recipe.modules);
    const modulePath = (path: string) => `lib/modules/${kernel.release}/${path}`;
    const initrd = await buildInitramfs({
      busybox,
      modules: modules.map((m) => ({ path: modulePath(m.path), data: kernel.moduleFiles.get(m.path)! })),
      init: recipe.init(modules.map((m) => `/${modulePath(m.path)}`)),
    });
    progress.done('initramfs', `busybox and ${modules.length} modules, ${formatMiB(initrd.length)} in ${secondsSince(started)}`);

    const kernelFile = `vmlinuz-${kernel.release}`;
    const initrdFile = `initramfs-${kernel.release}.cpio.gz`;
    const manifest: GuestManifest = {
      recipe: recipe.version,
      builtAt: new Date().toISOString(),
      release: kernel.release,
      packages,
      modules: modules.map((m) => m.name),
      kernel: cachedFile(kernelFile, kernel.vmlinuz),
      initrd: cachedFile(initrdFile, initrd),
    };
    storeGuest(dir, new Map([[kernelFile, kernel.vmlinuz], [initrdFile, initrd]]), manifest);
    return manifest;
  });
  return describe(dir, manifest, false);
}
