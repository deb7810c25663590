/**
 * Where built guests live: the user's cache directory (TSVMM_CACHE_DIR, else
 * $XDG_CACHE_HOME/tsvmm, else ~/.cache/tsvmm), one directory per guest
 * holding its files and a manifest.json that describes them. The manifest is
 * written last, by rename, so a guest is either complete or absent.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { sha256Hex } from './sha256.js';

export const MANIFEST_FILE = 'manifest.json';

export interface CachedFile {
  /** File name inside the guest's directory. */
  file: string;
  size: number;
  sha256: string;
}

export interface PackageRecord {
  name: string;
  version: string;
  /** Of the .deb file. */
  sha256: string;
}

export interface GuestManifest {
  /** Which recipe built the guest: a guest built by another recipe is rebuilt. */
  recipe: number;
  builtAt: string;
  release: string;
  packages: PackageRecord[];
  /** Modules /init loads, in load order. */
  modules: string[];
  kernel: CachedFile;
  initrd: CachedFile;
}

export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TSVMM_CACHE_DIR) return env.TSVMM_CACHE_DIR;
  // The XDG spec says to ignore a relative XDG_CACHE_HOME.
  if (env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME)) return join(env.XDG_CACHE_HOME, 'tsvmm');
  return join(homedir(), '.cache', 'tsvmm');
}

/**
 * The guest's manifest if the guest is complete: built by `recipe`, and
 * each file present with the recorded hash. Anything else means "build it".
 */
export function readCachedGuest(dir: string, recipe: number): GuestManifest | undefined {
  let manifest: GuestManifest;
  try {
    manifest = JSON.parse(readFileSync(join(dir, MANIFEST_FILE), 'utf8'));
  } catch {
    return undefined;
  }
  if (manifest.recipe !== recipe) return undefined;
  const intact = (f: CachedFile | undefined) => {
    try {
      return f !== undefined && sha256Hex(readFileSync(join(dir, f.file))) === f.sha256;
    } catch {
      return false;
    }
  };
  return intact(manifest.kernel) && intact(manifest.initrd) ? manifest : undefined;
}

/** Describes `data` as the file `file`, for a manifest. */
export const cachedFile = (file: string, data: Uint8Array): CachedFile => ({ file, size: data.length, sha256: sha256Hex(data) });

/**
 * Stores a guest: its files, then the manifest naming them; then removes
 * whatever else the directory held (an older guest's files).
 */
export function storeGuest(dir: string, files: Map<string, Uint8Array>, manifest: GuestManifest): void {
  mkdirSync(dir, { recursive: true });
  const writeAtomically = (name: string, data: Uint8Array | string) => {
    const temporary = join(dir, `.${name}.${process.pid}.tmp`);
    writeFileSync(temporary, data);
    renameSync(temporary, join(dir, name));
  };
  for (const [name, data] of files) writeAtomically(name, data);
  writeAtomically(MANIFEST_FILE, `${JSON.stringify(manifest, null, 2)}\n`);
  const kept = new Set([MANIFEST_FILE, ...files.keys()]);
  for (const name of readdirSync(dir)) {
    if (!kept.has(name) && !name.startsWith('.')) rmSync(join(dir, name), { recursive: true, force: true });
  }
}
