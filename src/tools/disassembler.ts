/**
 * Names an instruction from its bytes with objdump (binutils), for reports
 * about instructions tsvmm cannot run. Returns undefined without objdump.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function disassembleOne(bytes: Uint8Array, bits: 16 | 32 | 64): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'tsvmm-dis-'));
  try {
    const file = join(dir, 'insn.bin');
    writeFileSync(file, bytes);
    const machine = bits === 64 ? 'i386:x86-64' : bits === 32 ? 'i386' : 'i8086';
    const out = execFileSync('objdump', ['-D', '-b', 'binary', '-m', machine, '--stop-address=1', file], {
      encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'],
    });
    const line = out.split('\n').find((l) => /^\s+0:/.test(l));
    return line?.split('\t').slice(2).join(' ').replace(/\s+/g, ' ').trim() || undefined;
  } catch {
    return undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
