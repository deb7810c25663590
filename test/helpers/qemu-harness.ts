/**
 * A test harness's view of QEMU: the same `qemu-system-x86_64 ...` command
 * line run with the real QEMU and with tsvmm's front end under that name
 * (a directory early on PATH whose qemu-system-x86_64 runs tsvmm-qemu), so
 * a test can require the same output and exit status from both.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startProcess, type CliResult } from './cli.js';

const QEMU_MAIN = fileURLToPath(new URL('../../src/cli/qemu-main.js', import.meta.url));
export const QEMU = 'qemu-system-x86_64';

let shimDir: string | undefined;

/** A directory holding a qemu-system-x86_64 that is tsvmm. */
function tsvmmAsQemu(): string {
  if (shimDir === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'tsvmm-as-qemu-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, QEMU), `#!/bin/sh\nexec '${process.execPath}' '${QEMU_MAIN}' "$@"\n`);
    chmodSync(join(dir, QEMU), 0o755);
    shimDir = dir;
  }
  return shimDir;
}

/** Runs `qemu-system-x86_64 args` as found on PATH: the real one, or with `asTsvmm` tsvmm under its name. */
export function runQemuCommand(args: string[], options: { asTsvmm: boolean; timeoutMs?: number }): Promise<CliResult> {
  const path = options.asTsvmm ? `${tsvmmAsQemu()}:${process.env.PATH}` : process.env.PATH;
  return startProcess([QEMU, ...args], { env: { PATH: path }, timeoutMs: options.timeoutMs ?? 120_000 }).done;
}

/** The same command line under both. */
export async function underBoth(args: string[], timeoutMs?: number): Promise<{ qemu: CliResult; tsvmm: CliResult }> {
  const tsvmm = await runQemuCommand(args, { asTsvmm: true, timeoutMs });
  const qemu = await runQemuCommand(args, { asTsvmm: false, timeoutMs });
  return { qemu, tsvmm };
}
