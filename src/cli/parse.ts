/**
 * Parsers for option values, each failing with a sentence that names the
 * option and shows what is expected.
 */
import { readFileSync } from 'node:fs';
import { parseSize } from '../memory/layout.js';
import { parseWebAddress, type WebAddress } from '../web/web-address.js';
import { UsageError } from './fail.js';

export function parseAddress(flag: string) {
  return (text: string): number => {
    const value = /^0x[0-9a-f]+$/i.test(text) ? parseInt(text.slice(2), 16) : /^\d+$/.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(value)) throw new UsageError(`${flag}: '${text}' is not an address (e.g. 0x100000)`);
    return value;
  };
}

export function parseMemorySize(text: string): number {
  try {
    const bytes = parseSize(text);
    if (bytes < 1 << 20) throw new Error(`'${text}' is less than the 1M minimum`);
    if (bytes % 4096 !== 0) throw new Error(`'${text}' is not a multiple of 4K`);
    return bytes;
  } catch (e) {
    throw new UsageError(`--mem: ${(e as Error).message}`);
  }
}

export function parseCount(flag: string, max: number) {
  return (text: string): number => {
    const n = /^\d+$/.test(text) ? Number(text) : NaN;
    if (!(n >= 1 && n <= max)) throw new UsageError(`${flag}: '${text}' is not a number from 1 to ${max}`);
    return n;
  };
}

/** Reads a file the user named, with a one-line error when it cannot. */
export function readUserFile(what: string, path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (e as Error).message;
    throw new UsageError(`${what} '${path}': ${why}`);
  }
}

/** --web [HOST:]PORT and --web-token, as the dashboard takes them; undefined without --web. */
export function parseWebFlags(opts: { web?: string; webToken?: string }): WebAddress | undefined {
  if (opts.web === undefined) {
    if (opts.webToken !== undefined) throw new UsageError('--web-token goes with --web [HOST:]PORT');
    return undefined;
  }
  try {
    return parseWebAddress(opts.web, opts.webToken);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}
