/**
 * The two Debian packages every tsvmm-built initramfs starts from: a kernel
 * (reached through a metapackage such as linux-image-cloud-amd64, whose
 * dependency names the current versioned package) and busybox-static.
 * Downloads both with the host's apt, unpacks them and hands the parts to
 * the caller; the .deb files are gone when it returns.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { aptCandidates, withAptDownload, AptError, BUSYBOX_PACKAGE, type AptPackage, type DownloadedPackage } from './apt-download.js';
import { debDataTar, DebArchiveError } from './deb-archive.js';
import type { PackageRecord } from './guest-cache.js';
import { readKernelPackage, type KernelPackage } from './kernel-package.js';
import { formatMiB as MiB, secondsSince as seconds, type Progress } from './progress.js';
import { readTarMembers } from './tar-reader.js';

export interface KernelAndBusybox {
  kernel: KernelPackage;
  busybox: Uint8Array;
  /** The two packages as a manifest records them. */
  packages: PackageRecord[];
}

/** The versioned kernel package `metapackage` depends on, and busybox-static, as apt would install them today. */
async function resolveKernelAndBusybox(metapackage: string): Promise<{ kernel: AptPackage; busybox: AptPackage }> {
  const [meta] = await aptCandidates([metapackage]);
  const kernelName = meta.depends.find((d) => /^linux-image-\d/.test(d));
  if (kernelName === undefined) throw new AptError(`${metapackage} ${meta.version} depends on no linux-image-<version> package`);
  const [kernel, busybox] = await aptCandidates([kernelName, BUSYBOX_PACKAGE]);
  return { kernel, busybox };
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

/** Downloads and unpacks the kernel behind `metapackage` and busybox-static, reporting each step to `progress`. */
export async function withKernelAndBusybox<T>(metapackage: string, progress: Progress, use: (parts: KernelAndBusybox) => Promise<T>): Promise<T> {
  const { kernel, busybox } = await resolveKernelAndBusybox(metapackage);
  progress.done('packages', `${kernel.name} ${kernel.version}, ${busybox.name} ${busybox.version}`);
  let started = performance.now();
  return withAptDownload(
    [kernel, busybox],
    (fraction) => progress.update(`downloading ${kernel.name} and ${busybox.name}`, fraction),
    async ([kernelDeb, busyboxDeb]) => {
      progress.done('download', `${MiB(kernel.size + busybox.size)} in ${seconds(started)}`);
      started = performance.now();
      const kernelPackage = await unpack(kernelDeb, (bytes) => readKernelPackage(bytes, (fraction) => progress.update(`unpacking ${kernel.name}`, fraction)));
      const busyboxBinary = await unpack(busyboxDeb, readBusybox);
      progress.done('unpack', `kernel ${kernelPackage.release} (${MiB(kernelPackage.vmlinuz.length)}), ${kernelPackage.moduleFiles.size} modules, busybox (${MiB(busyboxBinary.length)}) in ${seconds(started)}`);
      const packages = [kernelDeb, busyboxDeb].map((p) => ({ name: p.name, version: p.version, sha256: p.sha256 }));
      return use({ kernel: kernelPackage, busybox: busyboxBinary, packages });
    },
  );
}
