/**
 * QEMU beside tsvmm, for the tests that compare the two byte for byte:
 * a kernel under qemu-system-x86_64 (TCG) as tsvmm runs it, and a test
 * harness's view, the same `qemu-system-x86_64 ...` command line run with
 * the real QEMU and with tsvmm's front end under that name (a directory
 * early on PATH whose qemu-system-x86_64 runs tsvmm-qemu). QEMU is
 * installed wherever the suite runs (.ci/run installs it for the rig).
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

/** QEMU's flags for a kernel run as tsvmm runs it: COM1 on stdout, the debug-exit port at 0xf4, no display, monitor or reboot. */
export const KERNEL_HARNESS_FLAGS = [
  '-display', 'none', '-serial', 'stdio', '-monitor', 'none', '-no-reboot', '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x01',
];

/** Boots `kernel` under QEMU with `-kernel`, the given flags (e.g. `-append`, `-smp`, `-m`) and the harness flags. */
export async function runQemuKernel(kernel: string, args: string[] = []): Promise<{ stdout: string; status: number | null }> {
  const { stdout, status } = await runQemuCommand(['-kernel', kernel, ...args, ...KERNEL_HARNESS_FLAGS], { asTsvmm: false });
  return { stdout, status };
}

/** The same command line under both. */
export async function underBoth(args: string[], timeoutMs?: number): Promise<{ qemu: CliResult; tsvmm: CliResult }> {
  const tsvmm = await runQemuCommand(args, { asTsvmm: true, timeoutMs });
  const qemu = await runQemuCommand(args, { asTsvmm: false, timeoutMs });
  return { qemu, tsvmm };
}
