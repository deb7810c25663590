/**
 * Assembles the test guests in test/guests into temporary files the CLI can run.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assemble, type AssembleOptions } from '../../src/tools/assembler.js';

const GUESTS = fileURLToPath(new URL('../../../test/guests/', import.meta.url));
const outDir = mkdtempSync(join(tmpdir(), 'tsvmm-test-guests-'));

/** Assembles test/guests/<name> and returns the path of the result. */
export function guestFile(name: string, options: AssembleOptions): string {
  const path = join(outDir, `${name}.${options.address.toString(16)}${options.headersInFront ? '.headers-in-front' : ''}.${options.format ?? 'bin'}`);
  writeFileSync(path, assemble(join(GUESTS, name), options));
  return path;
}
