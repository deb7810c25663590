/**
 * The two files of a snapshot, as Firecracker keeps them: the VM state
 * (a header, JSON, a checksum) and guest memory (RAM's bytes, range after
 * range). The header names the format version and the tsvmm that wrote
 * it; a file that is cut short, changed or of another version is refused
 * in one line before anything is built from it.
 *
 *   "TSVMMSNP"  u32 format version  u32 JSON length  JSON  SHA-256 of all before
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync, renameSync } from 'node:fs';

const MAGIC = 'TSVMMSNP';
/** 2: each vCPU's debug registers and TSC frequency. */
export const SNAPSHOT_FORMAT_VERSION = 2;
const HEADER_SIZE = 16;
const DIGEST_SIZE = 32;

export class SnapshotError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SnapshotError';
  }
}

/**
 * JSON with what JSON lacks: bigints (registers) and bytes (device state,
 * LAPIC pages, images). The holder's own value is looked at, not the one
 * JSON passes: a Buffer has been through its toJSON() by then.
 */
function replacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const original = this[key];
  if (typeof original === 'bigint') return { $bigint: original.toString() };
  if (original instanceof Uint8Array) return { $bytes: Buffer.from(original.buffer, original.byteOffset, original.byteLength).toString('base64') };
  return value;
}
const reviver = (_key: string, value: unknown): unknown => {
  if (value !== null && typeof value === 'object') {
    const v = value as { $bigint?: string; $bytes?: string };
    if (typeof v.$bigint === 'string') return BigInt(v.$bigint);
    if (typeof v.$bytes === 'string') return new Uint8Array(Buffer.from(v.$bytes, 'base64'));
  }
  return value;
};

/** Writes the state file whole or not at all (a temporary file renamed over the path). */
export function writeStateFile(path: string, state: unknown): void {
  const json = Buffer.from(JSON.stringify(state, replacer), 'utf8');
  const header = Buffer.alloc(HEADER_SIZE);
  header.write(MAGIC, 0, 'latin1');
  header.writeUInt32LE(SNAPSHOT_FORMAT_VERSION, 8);
  header.writeUInt32LE(json.length, 12);
  const body = Buffer.concat([header, json]);
  const digest = createHash('sha256').update(body).digest();
  const temporary = `${path}.tmp-${process.pid}`;
  writeFileSync(temporary, Buffer.concat([body, digest]));
  renameSync(temporary, path);
}

export function readStateFile(path: string): unknown {
  let file: Buffer;
  try {
    file = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SnapshotError(`snapshot '${path}': ${code === 'ENOENT' ? 'no such file' : code ?? (e as Error).message}`);
  }
  if (file.length < HEADER_SIZE + DIGEST_SIZE || file.toString('latin1', 0, 8) !== MAGIC) {
    throw new SnapshotError(`snapshot '${path}' is not a tsvmm snapshot (no ${MAGIC} header)`);
  }
  const version = file.readUInt32LE(8);
  if (version !== SNAPSHOT_FORMAT_VERSION) {
    throw new SnapshotError(`snapshot '${path}' has format version ${version}; this tsvmm reads version ${SNAPSHOT_FORMAT_VERSION}`);
  }
  const length = file.readUInt32LE(12);
  if (file.length !== HEADER_SIZE + length + DIGEST_SIZE) {
    throw new SnapshotError(`snapshot '${path}' is ${file.length} bytes, not the ${HEADER_SIZE + length + DIGEST_SIZE} its header says: it was cut short or grew`);
  }
  const body = file.subarray(0, HEADER_SIZE + length);
  if (!createHash('sha256').update(body).digest().equals(file.subarray(HEADER_SIZE + length))) {
    throw new SnapshotError(`snapshot '${path}' fails its checksum: it was changed or damaged`);
  }
  return JSON.parse(body.toString('utf8', HEADER_SIZE), reviver);
}
