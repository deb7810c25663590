/**
 * The default guest's initramfs: busybox, the kernel modules it loads and
 * /init, as a gzip-compressed newc cpio archive.
 *
 * Besides the files, the tree has the directories /init mounts on and
 * /dev/console: the kernel opens it for /init's stdin, stdout and stderr
 * before any devtmpfs is mounted, so without it /init would run mute.
 */
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { cpioChunks, type CpioEntry } from './cpio-writer.js';

export interface InitramfsSpec {
  busybox: Uint8Array;
  /** Kernel modules by path inside the initramfs (e.g. lib/modules/<release>/kernel/...). */
  modules: { path: string; data: Uint8Array }[];
  init: string;
}

/** Mount points and the directories `busybox --install -s` fills. */
const BASE_DIRECTORIES = ['bin', 'dev', 'proc', 'root', 'sbin', 'sys', 'tmp', 'usr/bin', 'usr/sbin'];
const CONSOLE = { major: 5, minor: 1 };

const parentsOf = (path: string): string[] => path.split('/').slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join('/'));

/** Every entry of the tree, directories first (a parent before its children), then the rest. */
export function initramfsEntries(spec: InitramfsSpec): CpioEntry[] {
  const files: CpioEntry[] = [
    { kind: 'file', path: 'init', mode: 0o755, data: Buffer.from(spec.init, 'utf8') },
    { kind: 'file', path: 'bin/busybox', mode: 0o755, data: spec.busybox },
    // /init's interpreter; the other applet links are made at boot.
    { kind: 'symlink', path: 'bin/sh', target: 'busybox' },
    { kind: 'char-device', path: 'dev/console', mode: 0o600, ...CONSOLE },
    ...spec.modules.map(({ path, data }): CpioEntry => ({ kind: 'file', path, mode: 0o644, data })),
  ];
  const directories = new Set<string>();
  for (const path of [...BASE_DIRECTORIES.map((d) => `${d}/`), ...files.map((f) => f.path)]) {
    for (const parent of parentsOf(path)) directories.add(parent);
  }
  // Sorting puts each directory after its parent, whose path is a prefix of its own.
  const directoryEntries = [...directories].sort().map((path): CpioEntry => ({ kind: 'directory', path, mode: 0o755 }));
  return [...directoryEntries, ...files];
}

/** The tree as a gzip-compressed newc archive, the form the kernel takes as an initrd. */
export async function buildInitramfs(spec: InitramfsSpec): Promise<Buffer> {
  const archive = Buffer.concat([...cpioChunks(initramfsEntries(spec))]);
  return promisify(gzip)(archive, { level: 9 });
}
