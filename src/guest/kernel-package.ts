/**
 * What the guest needs from a Debian kernel package (linux-image-<release>):
 * the compressed kernel (boot/vmlinuz-<release>), the modules under
 * lib/modules/<release>/ and the catalog of their dependencies.
 */
import { debDataTar, DebArchiveError, type UnpackProgress } from './deb-archive.js';
import { catalogFromModinfo, catalogFromModulesDep, parseModulesBuiltin, type ModuleCatalog } from './kernel-modules.js';
import { readTarMembers } from './tar-reader.js';

export interface KernelPackage {
  /** The kernel release, e.g. "6.1.0-56-cloud-amd64" (what `uname -r` prints in the guest). */
  release: string;
  /** The bzImage. */
  vmlinuz: Uint8Array;
  /** Every module file, by path under lib/modules/<release>/. */
  moduleFiles: Map<string, Uint8Array>;
  catalog: ModuleCatalog;
}

/** Merged-/usr releases may place modules under usr/lib/modules. */
const MODULES_PATH = /^(?:usr\/)?lib\/modules\/([^/]+)\/(.+)$/;

export async function readKernelPackage(deb: Uint8Array, progress?: UnpackProgress): Promise<KernelPackage> {
  const wanted = (path: string) => path.startsWith('boot/vmlinuz-') || (MODULES_PATH.test(path) && /(\.ko|\/modules\.dep|\/modules\.builtin)$/.test(path));
  const members = await readTarMembers(debDataTar(deb, progress), wanted);

  const releases = new Set<string>();
  const underModules = new Map<string, Uint8Array>();
  let vmlinuz: Uint8Array | undefined;
  for (const member of members) {
    if (member.data === undefined) continue;
    if (member.path.startsWith('boot/vmlinuz-')) {
      vmlinuz = member.data;
      continue;
    }
    const [, release, path] = MODULES_PATH.exec(member.path)!;
    releases.add(release);
    underModules.set(path, member.data);
  }
  if (vmlinuz === undefined) throw new DebArchiveError('the kernel package holds no boot/vmlinuz-*');
  if (releases.size !== 1) throw new DebArchiveError(`the kernel package holds modules for ${releases.size} kernel releases, expected 1`);
  const [release] = releases;

  const text = (path: string) => {
    const data = underModules.get(path);
    return data && Buffer.from(data).toString('utf8');
  };
  const builtin = parseModulesBuiltin(text('modules.builtin') ?? '');
  const moduleFiles = new Map([...underModules].filter(([path]) => path.endsWith('.ko')));
  const modulesDep = text('modules.dep');
  const catalog = modulesDep !== undefined ? catalogFromModulesDep(modulesDep, builtin) : catalogFromModinfo(moduleFiles, builtin);
  return { release, vmlinuz, moduleFiles, catalog };
}
