/**
 * Finds and downloads the guest's Debian packages with the host's own apt
 * (apt-cache for the candidate versions, `apt-get download` for the files),
 * so the mirror, proxy and release come from the host's apt configuration.
 */
import { execFile, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sha256Hex } from './sha256.js';

export const BUSYBOX_PACKAGE = 'busybox-static';

export interface AptPackage {
  name: string;
  version: string;
  /** Size of the .deb in bytes, as the archive index says. */
  size: number;
  sha256: string;
  depends: string[];
}

export interface DownloadedPackage extends AptPackage {
  file: string;
}

export class AptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AptError';
  }
}

const run = promisify(execFile);

/** The last "E:" line apt printed, else its last line: what went wrong, in apt's words. */
function aptComplaint(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  return (lines.filter((l) => l.startsWith('E:')).at(-1) ?? lines.at(-1) ?? 'no message').replace(/^E:\s*/, '');
}

function missingApt(e: unknown, tool: string): AptError | undefined {
  if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return undefined;
  return new AptError(`building the default guest needs ${tool} (a Debian host), and it is not installed`);
}

/** One deb822 paragraph of `apt-cache show` as field → value (continuation lines joined). */
function parseParagraph(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  let key = '';
  for (const line of text.split('\n')) {
    if (/^\s/.test(line) && key !== '') fields.set(key, `${fields.get(key)}\n${line.trim()}`);
    else if (line.includes(':')) {
      key = line.slice(0, line.indexOf(':'));
      fields.set(key, line.slice(line.indexOf(':') + 1).trim());
    }
  }
  return fields;
}

/** The package names a Depends field requires, first alternative of each, without version constraints. */
const dependencyNames = (depends: string | undefined): string[] =>
  (depends ?? '')
    .split(',')
    .map((d) => d.split('|')[0].trim().split(/[\s(:]/)[0])
    .filter((d) => d !== '');

/** The candidate versions apt would install of `names`, in the same order. */
export async function aptCandidates(names: string[]): Promise<AptPackage[]> {
  let stdout: string;
  try {
    ({ stdout } = await run('apt-cache', ['show', '--no-all-versions', ...names], { maxBuffer: 16 << 20 }));
  } catch (e) {
    throw missingApt(e, 'apt-cache') ?? new AptError(`apt-cache cannot find ${names.join(', ')}: ${aptComplaint(String((e as { stderr?: string }).stderr ?? e))} (run apt-get update and try again)`);
  }
  const found = stdout
    .split(/\n\s*\n/)
    .map(parseParagraph)
    .filter((p) => p.has('Package'));
  return names.map((name) => {
    const fields = found.find((p) => p.get('Package') === name);
    const version = fields?.get('Version');
    const size = Number(fields?.get('Size'));
    const sha256 = fields?.get('SHA256');
    if (!fields || !version || !Number.isFinite(size) || !sha256) throw new AptError(`apt has no downloadable version of ${name} (run apt-get update and try again)`);
    return { name, version, size, sha256, depends: dependencyNames(fields.get('Depends')) };
  });
}

function directoryBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) total += statSync(join(dir, name), { throwIfNoEntry: false })?.size ?? 0;
  return total;
}

/**
 * Downloads `packages` with `apt-get download` into a temporary directory,
 * reporting the bytes arrived so far against the expected total, hands the
 * files to `use` and removes the directory afterwards. The directory is
 * world-writable because apt, run as root, downloads as the unprivileged
 * _apt user.
 */
export async function withAptDownload<T>(
  packages: AptPackage[],
  progress: (fraction: number) => void,
  use: (files: DownloadedPackage[]) => Promise<T>,
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'tsvmm-debs-'));
  try {
    chmodSync(dir, 0o777);
    return await use(await download(packages, dir, progress));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function download(packages: AptPackage[], dir: string, progress: (fraction: number) => void): Promise<DownloadedPackage[]> {
  const total = packages.reduce((sum, p) => sum + p.size, 0);
  const child = spawn('apt-get', ['download', '-q', ...packages.map((p) => `${p.name}=${p.version}`)], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const poll = setInterval(() => progress(directoryBytes(dir) / total), 200);
  const status = await new Promise<number | null>((resolve, reject) => {
    child.on('error', (e) => reject(missingApt(e, 'apt-get') ?? e));
    child.on('close', resolve);
  }).finally(() => clearInterval(poll));
  if (status !== 0) throw new AptError(`apt-get download failed: ${aptComplaint(stderr)} (if apt's package lists are old, run apt-get update)`);
  progress(1);

  const names = readdirSync(dir);
  return packages.map((p) => {
    const file = names.find((n) => n.startsWith(`${p.name}_`) && n.endsWith('.deb'));
    if (file === undefined) throw new AptError(`apt-get download left no .deb for ${p.name}`);
    const path = join(dir, file);
    if (sha256Hex(readFileSync(path)) !== p.sha256) throw new AptError(`the downloaded ${file} does not match the archive's SHA256`);
    return { ...p, file: path };
  });
}
