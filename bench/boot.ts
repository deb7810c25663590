/**
 * `npm run bench:boot [-- --json]`: how long a VMM takes from the spawn of
 * its process to the guest's first instruction. The guest
 * (bench/boot/first-exit.s, a multiboot kernel) writes the debug-exit
 * port with its first instruction, so each figure is spawn to process
 * exit. Contenders: tsvmm's CLI (--kernel, and --raw on the same code),
 * tsvmm through the library with its phases timed, plain Node, QEMU -M pc
 * and -M microvm on the very same file, and a raw C launcher.
 *
 * On hardware KVM it also times spawn to the default Linux guest's
 * TSVMM-READY line, tsvmm against QEMU -M microvm.
 *
 *   --json              one JSON line instead of the tables
 *   --runs N            timed runs of each contender (default 10), after a warm-up
 *   --linux             time the Linux boot even on a software KVM backend (minutes)
 *   --linux-runs N      runs of each side for the Linux boot (default 3)
 *   --linux-timeout S   give up on a Linux boot after S seconds (default 300)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AssemblerError } from '../src/tools/assembler.js';
import { MULTIBOOT_STATUS, RAW_STATUS, writeBootGuest, type BootGuest } from './lib/boot-guest.js';
import { compileLauncher } from './lib/boot-launcher.js';
import { compareLinuxBoot } from './lib/boot-linux.js';
import { medianPhases, parsePhases, phaseProbeContender, untilFirstExit, type PhaseTimes } from './lib/boot-phases.js';
import { ensureQemu, qemuContender } from './lib/boot-qemu.js';
import { bootBenchJson, bootBenchTable, type BootRow, type LinuxOutcome } from './lib/boot-report.js';
import { RunFailure, timeSpawn, whyNot, type Contender } from './lib/boot-spawn.js';
import { BenchSetupError } from './lib/c-loop.js';
import { hostInfo, type HostInfo } from './lib/host.js';
import { parseBenchOptions, positiveNumber, UsageError } from './lib/options.js';
import { median } from './lib/sample.js';


const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const HARDWARE_BACKENDS = ['kvm_intel', 'kvm_amd'];

type Log = (line: string) => void;

interface Options {
  json: boolean;
  runs: number;
  linux: boolean;
  linuxRuns: number;
  linuxTimeoutMs: number;
}

const OPTIONS = {
  json: { type: 'boolean', default: false },
  runs: { type: 'string', default: '10' },
  linux: { type: 'boolean', default: false },
  'linux-runs': { type: 'string', default: '3' },
  'linux-timeout': { type: 'string', default: '300' },
} as const;

function parseOptions(argv: string[]): Options {
  const values = parseBenchOptions(argv, OPTIONS);
  return {
    json: values.json,
    runs: positiveNumber(values.runs, 'runs', true),
    linux: values.linux,
    linuxRuns: positiveNumber(values['linux-runs'], 'linux-runs', true),
    linuxTimeoutMs: positiveNumber(values['linux-timeout'], 'linux-timeout', true) * 1000,
  };
}

interface Entry {
  contender: Contender;
  /** The command as the table shows it. */
  shown: string;
}

function tsvmmEntries(guest: BootGuest): Entry[] {
  const tsvmm = (key: string, label: string, args: string[], status: number): Contender => ({
    key, label, command: process.execPath, args: [CLI, ...args], status, failureMark: 'tsvmm:',
  });
  const hex = (n: number) => `0x${n.toString(16)}`;
  const raw = ['--raw', guest.flat, '--mode', 'protected', '--load-addr', hex(guest.loadAddr), '--entry', hex(guest.entry)];
  return [
    { contender: tsvmm('tsvmm', 'tsvmm', ['run', '--kernel', guest.elf], MULTIBOOT_STATUS), shown: 'tsvmm run --kernel first-exit.elf' },
    { contender: tsvmm('tsvmm_raw', 'tsvmm, raw', ['run', ...raw], RAW_STATUS), shown: `tsvmm run --raw first-exit.bin --mode protected ...` },
    { contender: phaseProbeContender(guest.elf), shown: 'node dist/bench/lib/boot-phase-probe.js first-exit.elf' },
    // The floor for any VMM written for Node.
    { contender: { key: 'node', label: 'Node alone', command: process.execPath, args: ['-e', '0'], status: 0 }, shown: 'node -e 0' },
  ];
}

interface Measured {
  rows: BootRow[];
  phases: PhaseTimes;
  firstExitMs: number;
}

async function measure(entries: Entry[], runs: number, log: Log): Promise<Measured> {
  const times = new Map<string, number[]>(entries.map((e) => [e.contender.key, []]));
  const phaseRuns: PhaseTimes[] = [];
  // Round 0 is the warm-up (page cache, KVM module state); each round runs every contender once.
  for (let round = 0; round <= runs; round++) {
    log(round === 0 ? 'warm-up round' : `round ${round} of ${runs}`);
    for (const { contender } of entries) {
      const { ms, stdout } = await timeSpawn(contender);
      if (round === 0) continue;
      times.get(contender.key)!.push(ms);
      if (contender.key === 'tsvmm_library') phaseRuns.push(parsePhases(stdout, ms));
    }
  }
  const rows = entries.map(({ contender, shown }) => {
    const ms = times.get(contender.key)!;
    return { key: contender.key, label: contender.label, command: shown, medianMs: median(ms), minMs: Math.min(...ms) };
  });
  return { rows, phases: medianPhases(phaseRuns), firstExitMs: median(phaseRuns.map(untilFirstExit)) };
}

async function linuxOutcome(options: Options, host: HostInfo, progress: Log, log: Log): Promise<LinuxOutcome> {
  const hardware = HARDWARE_BACKENDS.some((b) => host.backend.includes(b));
  if (!hardware && !options.linux) {
    return { skipped: `${host.backend} is a software KVM backend: Linux takes minutes there, if it boots at all; --linux runs it anyway` };
  }
  try {
    return { figures: await compareLinuxBoot(CLI, options.linuxRuns, options.linuxTimeoutMs, progress) };
  } catch (e) {
    if (!(e instanceof RunFailure)) throw e;
    // The figures measured so far still get printed; the status says the run failed.
    process.exitCode = 1;
    log(e.message);
    return { failed: e.message.split('\n')[0] };
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const log: Log = (line) => process.stderr.write(`bench:boot: ${line}\n`);
  // Setup news always goes to stderr; progress only with the tables.
  const progress = options.json ? () => {} : log;
  const host = hostInfo();
  const qemuVersion = ensureQemu(log);
  const dir = mkdtempSync(join(tmpdir(), 'tsvmm-bench-boot-'));
  try {
    const guest = writeBootGuest(dir);
    const entries = tsvmmEntries(guest);
    entries.push({ contender: qemuContender('pc', guest.elf), shown: 'qemu-system-x86_64 -M pc ... -kernel first-exit.elf' });
    const microvm = qemuContender('microvm', guest.elf);
    const microvmNote = await whyNot(microvm);
    if (microvmNote === undefined) entries.push({ contender: microvm, shown: 'qemu-system-x86_64 -M microvm ... -kernel first-exit.elf' });
    else log(`QEMU -M microvm cannot run the multiboot kernel: ${microvmNote}`);
    entries.push({ contender: compileLauncher(dir, guest.elf), shown: 'launch first-exit.elf (gcc -O2)' });

    const measured = await measure(entries, options.runs, progress);
    const linux = await linuxOutcome(options, host, progress, log);
    const results = { runs: options.runs, host, qemuVersion, ...measured, microvmNote, linux };
    console.log(options.json ? bootBenchJson(results) : bootBenchTable(results));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: Error) => {
  const known = e instanceof UsageError || e instanceof BenchSetupError || e instanceof AssemblerError || e instanceof RunFailure;
  console.error(`bench:boot: ${known ? e.message : e.stack ?? e.message}`);
  process.exitCode = 1;
});
