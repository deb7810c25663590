/**
 * Where tsvmm's start goes: the phases bench/lib/boot-phase-probe.ts
 * reports from inside a fresh process, and the rest of the spawn-to-exit
 * time, which only the parent sees (exec of node before its clock starts,
 * process exit, spawn itself).
 */
import { fileURLToPath } from 'node:url';
import { MULTIBOOT_STATUS } from './boot-guest.js';
import type { Contender } from './boot-spawn.js';
import { median } from './sample.js';

export const PROBE_PHASES = ['node_start', 'koffi_load', 'library_modules', 'cli_modules', 'vm_build', 'vcpu_start', 'first_exit', 'teardown'] as const;
export type Phase = (typeof PROBE_PHASES)[number];
export type PhaseTimes = Record<Phase | 'process_exit', number>;

export const PHASE_MEANINGS: Record<keyof PhaseTimes, string> = {
  node_start: 'Node bootstrap, up to the first line of the entry module',
  koffi_load: "import('koffi'): the FFI addon",
  library_modules: 'the rest of the library graph (vmm/builder and all it imports)',
  cli_modules: 'commander and the run command modules',
  vm_build: 'buildMachine: KVM, VM, memory, devices, guest load, vCPU state; spawns the vCPU worker',
  vcpu_start: 'machine.start(): waits for the worker thread to boot and load its modules',
  first_exit: 'from the worker resumed to the debug exit reaching the main thread',
  teardown: 'machine.destroy(): worker ends, fds closed, memory unmapped',
  process_exit: 'the rest of spawn to exit: exec before Node\'s clock starts, exit, spawn',
};

const PROBE = fileURLToPath(new URL('./boot-phase-probe.js', import.meta.url));

export function phaseProbeContender(elf: string): Contender {
  return {
    key: 'tsvmm_library',
    label: 'tsvmm, library',
    command: process.execPath,
    args: [PROBE, elf],
    status: MULTIBOOT_STATUS,
    failureMark: 'tsvmm:',
  };
}

/** One run's phases, from the probe's stdout and the run's spawn-to-exit time. */
export function parsePhases(stdout: string, totalMs: number): PhaseTimes {
  const reported = JSON.parse(stdout.trim().split('\n').pop() ?? '') as Record<string, number>;
  const missing = PROBE_PHASES.filter((p) => typeof reported[p] !== 'number');
  if (missing.length > 0) throw new Error(`the phase probe did not report ${missing.join(', ')}`);
  const inside = PROBE_PHASES.reduce((sum, p) => sum + reported[p], 0);
  return { ...(Object.fromEntries(PROBE_PHASES.map((p) => [p, reported[p]])) as Record<Phase, number>), process_exit: totalMs - inside };
}

/** From the start of the process (by Node's clock) to the guest's first instruction, as the probe saw it. */
export function untilFirstExit(p: PhaseTimes): number {
  return PROBE_PHASES.slice(0, PROBE_PHASES.indexOf('first_exit') + 1).reduce((sum, phase) => sum + p[phase], 0);
}

/** The median of each phase over the runs. */
export function medianPhases(runs: PhaseTimes[]): PhaseTimes {
  const keys = Object.keys(PHASE_MEANINGS) as (keyof PhaseTimes)[];
  return Object.fromEntries(keys.map((k) => [k, median(runs.map((r) => r[k]))])) as PhaseTimes;
}
