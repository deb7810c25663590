/**
 * Start to a usable Linux: from spawn to the default guest's
 * `TSVMM-READY cpus=<n>` line on the console, tsvmm (`tsvmm run`) against
 * QEMU -M microvm on the same kernel, initramfs and command line. Each
 * run is ended with SIGTERM once the line is seen.
 */
import { spawn, spawnSync } from 'node:child_process';
import { READY_LINE } from '../../src/guest/init-script.js';
import { qemuBaseArgs, QEMU } from './boot-qemu.js';
import { RunFailure, type Contender } from './boot-spawn.js';
import { median } from './sample.js';

export interface LinuxFigures {
  tsvmm_ms: number;
  qemu_microvm_ms: number;
  tsvmm_min_ms: number;
  qemu_microvm_min_ms: number;
  ratio_vs_qemu_microvm: number;
  runs: number;
  kernel: string;
}

// What `tsvmm run` gives the default guest: its base command line, 512M, one vCPU, the host CPU.
const CMDLINE = 'console=ttyS0 panic=-1';
const MEMORY = '512M';
const KEPT_OUTPUT = 8 * 1024;
const LAST_LINES = 20;

type Starter = Pick<Contender, 'label' | 'command' | 'args'>;

export async function compareLinuxBoot(cli: string, runs: number, timeoutMs: number, log: (line: string) => void): Promise<LinuxFigures> {
  const { kernel, initrd } = defaultGuestFiles(cli);
  const tsvmm: Starter = { label: 'tsvmm run', command: process.execPath, args: [cli, 'run'] };
  const qemu: Starter = {
    label: 'QEMU -M microvm',
    command: QEMU,
    args: [...qemuBaseArgs('microvm'), '-cpu', 'host', '-m', MEMORY, '-smp', '1', '-serial', 'stdio', '-kernel', kernel, '-initrd', initrd, '-append', CMDLINE],
  };
  const times: Record<'tsvmm' | 'qemu', number[]> = { tsvmm: [], qemu: [] };
  for (let i = 0; i < runs; i++) {
    log(`Linux to TSVMM-READY: run ${i + 1} of ${runs}`);
    times.tsvmm.push(await timeToReady(tsvmm, timeoutMs));
    times.qemu.push(await timeToReady(qemu, timeoutMs));
  }
  const [t, q] = [median(times.tsvmm), median(times.qemu)];
  return {
    tsvmm_ms: t, qemu_microvm_ms: q, tsvmm_min_ms: Math.min(...times.tsvmm), qemu_microvm_min_ms: Math.min(...times.qemu),
    ratio_vs_qemu_microvm: t / q, runs, kernel,
  };
}

/** The default guest's kernel and initramfs, built or found by `tsvmm guest fetch`. */
export function defaultGuestFiles(cli: string): { kernel: string; initrd: string } {
  const r = spawnSync(process.execPath, [cli, 'guest', 'fetch'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const field = (name: string) => new RegExp(`^${name}:\\s+(.+)$`, 'm').exec(r.stdout ?? '')?.[1].trim();
  const kernel = field('kernel');
  const initrd = field('initrd');
  if (r.status !== 0 || kernel === undefined || initrd === undefined) throw new RunFailure(`'tsvmm guest fetch' failed (status ${r.status}): ${r.stdout ?? ''}`);
  return { kernel, initrd };
}

/** Milliseconds from spawn to the READY line on stdout; the process is then ended and waited for. */
function timeToReady(s: Starter, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    // stdin stays open: the guest's shell would end at end of input.
    const child = spawn(s.command, s.args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    let partial = '';
    let readyMs: number | undefined;
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const collect = (d: Buffer) => (output = (output + d.toString('latin1')).slice(-KEPT_OUTPUT));
    child.stderr.on('data', collect);
    child.stdout.on('data', (d: Buffer) => {
      collect(d);
      const lines = (partial + d.toString('latin1')).split('\n');
      partial = lines.pop() ?? '';
      if (readyMs === undefined && lines.some((l) => READY_LINE.test(l.replace(/\r$/, '')))) {
        readyMs = Number(process.hrtime.bigint() - start) / 1e6;
        child.kill('SIGTERM');
      }
    });
    child.on('error', (e) => reject(new RunFailure(`${s.label}: could not start ${s.command}: ${e.message}`)));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (readyMs !== undefined) resolve(readyMs);
      else {
        const how = signal === 'SIGKILL' ? `did not print TSVMM-READY within ${timeoutMs / 1000} s` : `ended (${signal ?? `status ${code}`}) before TSVMM-READY`;
        const lines = output.trim().split('\n');
        // tsvmm says why it stopped on a line of its own.
        const why = lines.find((l) => l.startsWith('tsvmm: '));
        reject(new RunFailure(`${s.label} ${how}${why ? ` (${why})` : ''}; its last output:\n${lines.slice(-LAST_LINES).join('\n')}`));
      }
    });
  });
}
