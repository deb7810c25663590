/**
 * Which kernel modules the guest must load, and in what order.
 *
 * A kernel package may ship modules.dep, but Debian's does not (depmod
 * writes it at install time), so the dependencies can also be read from
 * each module's own .modinfo section ("depends=a,b"). Either way the
 * result is a catalog: every module by name, with the names it depends on.
 * Modules listed in modules.builtin are part of the kernel image and need
 * no loading.
 */
import { elfSection } from '../boot/elf-sections.js';

export interface KernelModule {
  /** The name the kernel knows it by: dashes become underscores ("virtio-rng.ko" is virtio_rng). */
  name: string;
  /** Path under /lib/modules/<release>/, e.g. "kernel/drivers/block/virtio_blk.ko". */
  path: string;
  /** Names of the modules that must be loaded first. */
  depends: string[];
}

export interface ModuleCatalog {
  modules: Map<string, KernelModule>;
  builtin: Set<string>;
}

export interface WantedModule {
  name: string;
  /** Skipped without complaint if the kernel has it neither as a module nor built in. */
  optional?: boolean;
}

export class ModuleResolutionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModuleResolutionError';
  }
}

export const normalizeModuleName = (name: string): string => name.replaceAll('-', '_');

/** "kernel/drivers/char/hw_random/virtio-rng.ko" → "virtio_rng". */
export function moduleNameFromPath(path: string): string {
  const file = path.slice(path.lastIndexOf('/') + 1);
  return normalizeModuleName(file.replace(/\.ko(\.(xz|gz|zst))?$/, ''));
}

/** The key=value pairs of a module's .modinfo section; keys such as alias repeat. */
export function readModinfo(ko: Uint8Array): [string, string][] {
  const section = elfSection(ko, '.modinfo');
  if (section === undefined) return [];
  return Buffer.from(section)
    .toString('utf8')
    .split('\0')
    .filter((field) => field.includes('='))
    .map((field) => {
      const eq = field.indexOf('=');
      return [field.slice(0, eq), field.slice(eq + 1)];
    });
}

const splitList = (text: string | undefined): string[] => (text ?? '').split(/[\s,]+/).filter((s) => s !== '');

/** Builds the catalog from the module files themselves: path → contents of each .ko. */
export function catalogFromModinfo(files: Map<string, Uint8Array>, builtin: Set<string>): ModuleCatalog {
  const modules = new Map<string, KernelModule>();
  for (const [path, ko] of files) {
    const info = readModinfo(ko);
    const field = (key: string) => info.find(([k]) => k === key)?.[1];
    const name = normalizeModuleName(field('name') ?? moduleNameFromPath(path));
    modules.set(name, { name, path, depends: splitList(field('depends')).map(normalizeModuleName) });
  }
  return { modules, builtin };
}

/** Builds the catalog from depmod's modules.dep: "kernel/a.ko: kernel/b.ko kernel/c.ko" per line. */
export function catalogFromModulesDep(text: string, builtin: Set<string>): ModuleCatalog {
  const modules = new Map<string, KernelModule>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const path = line.slice(0, colon).trim();
    const name = moduleNameFromPath(path);
    modules.set(name, { name, path, depends: splitList(line.slice(colon + 1)).map(moduleNameFromPath) });
  }
  return { modules, builtin };
}

/** The names in modules.builtin (one path per line, as in modules.dep). */
export function parseModulesBuiltin(text: string): Set<string> {
  return new Set(splitList(text).map(moduleNameFromPath));
}

/**
 * The modules to load for `wanted`, each after everything it depends on,
 * each once. Built-in modules are left out: they are already there.
 */
export function resolveModules(catalog: ModuleCatalog, wanted: WantedModule[]): KernelModule[] {
  const order: KernelModule[] = [];
  const state = new Map<string, 'visiting' | 'done'>();

  const visit = (name: string, chain: string[], optional: boolean): void => {
    if (state.get(name) === 'done' || catalog.builtin.has(name)) return;
    if (state.get(name) === 'visiting') throw new ModuleResolutionError(`kernel modules depend on each other in a cycle: ${[...chain, name].join(' → ')}`);
    const module = catalog.modules.get(name);
    if (module === undefined) {
      if (optional) return;
      const neededBy = chain.length > 0 ? ` (needed by ${chain.join(' → ')})` : '';
      throw new ModuleResolutionError(`kernel module ${name}${neededBy} is neither in the kernel package nor built in`);
    }
    state.set(name, 'visiting');
    for (const dependency of module.depends) visit(dependency, [...chain, name], false);
    state.set(name, 'done');
    order.push(module);
  };

  for (const { name, optional } of wanted) visit(normalizeModuleName(name), [], optional ?? false);
  return order;
}
