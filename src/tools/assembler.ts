/**
 * Builds guest binaries from the project's assembly sources with the GNU
 * assembler and linker (binutils), for the demo guest and the tests.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export interface AssembleOptions {
  /** Address the code is linked to run at. */
  address: number;
  /** 'binary' for a raw image, 'elf32' for an i386 ELF (multiboot kernels). */
  format?: 'binary' | 'elf32';
  /** elf32: link as ld does by default, the ELF headers in a page of their own in front of the code (no -n). */
  headersInFront?: boolean;
}

export class AssemblerError extends Error {}

function tool(name: string, args: string[]): void {
  try {
    execFileSync(name, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
    if (err.code === 'ENOENT') throw new AssemblerError(`'${name}' was not found: install binutils (apt-get install binutils)`);
    throw new AssemblerError(`${name} failed: ${err.stderr?.toString().trim() ?? err.message}`);
  }
}

export function assemble(sourcePath: string, options: AssembleOptions): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), 'tsvmm-as-'));
  try {
    const elf32 = options.format === 'elf32';
    const object = join(dir, 'guest.o');
    const output = join(dir, elf32 ? 'guest.elf' : 'guest.bin');
    // -I: a guest can `.include` shared files by a path relative to its own folder.
    tool('as', [elf32 ? '--32' : '--64', '-I', dirname(sourcePath), '-o', object, sourcePath]);
    tool('ld', [
      '-m', elf32 ? 'elf_i386' : 'elf_x86_64', '-nostdlib', `-Ttext=0x${options.address.toString(16)}`,
      // -n: no page-aligned ELF headers in front of the code, so a kernel linked at 1 MiB loads at 1 MiB.
      ...(elf32 ? (options.headersInFront ? [] : ['-n']) : ['--oformat', 'binary']), '-o', output, object,
    ]);
    return readFileSync(output);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
