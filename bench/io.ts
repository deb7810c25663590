/**
 * `npm run bench:io [-- --json]`: what a guest gets from tsvmm's devices,
 * measured inside the default guest by bench/io/io-probe: virtio-blk
 * sequential read and write MB/s and 4 KiB random-read IOPS, TCP over a
 * tap each way, vsock guest to host. Beside each figure, in the same run:
 * QEMU's virtio-blk-pci / virtio-net-pci (vhost) / vhost-vsock-pci with the
 * same kernel, initramfs and workload, and the host's own figure with
 * io-probe alone (the same file, loopback TCP, loopback vsock), the limit.
 *
 * Where the host has no hardware KVM, the whole benchmark runs in the test
 * rig (QEMU TCG with emulated AMD-V): its figures are only good as ratios.
 *
 *   --json                one JSON line instead of the table
 *   --mib N               MiB per disk pass and per transfer (default 64)
 *   --random-seconds S    seconds of random reads (default 5)
 *   --here                run on this host even without hardware KVM
 *   --timeout S           give up on one VMM's run after S seconds (default 900)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stderrProgress } from '../src/guest/progress.js';
import { ensureDefaultGuest } from '../src/guest/default-guest.js';
import { runInRig } from '../test/rig/rig.js';
import { defaultGuestFiles } from './lib/boot-linux.js';
import { ensureQemu } from './lib/boot-qemu.js';
import { BenchSetupError } from './lib/c-loop.js';
import { hostInfo } from './lib/host.js';
import { ioBenchJson, ioBenchTable, type IoResults } from './lib/io-report.js';
import { measureHost, measureVmm, prepareWorkspace } from './lib/io-workload.js';
import { parseBenchOptions, positiveNumber, UsageError } from './lib/options.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const SELF = fileURLToPath(import.meta.url);
const HARDWARE_BACKENDS = ['kvm_intel', 'kvm_amd'];

const OPTIONS = {
  json: { type: 'boolean', default: false },
  mib: { type: 'string', default: '64' },
  'random-seconds': { type: 'string', default: '5' },
  here: { type: 'boolean', default: false },
  timeout: { type: 'string', default: '900' },
  /** Set by the outer run when it starts this one in the rig. */
  'in-rig': { type: 'boolean', default: false },
} as const;

const log = (line: string) => process.stderr.write(`bench:io: ${line}\n`);

async function main(): Promise<void> {
  const values = parseBenchOptions(process.argv.slice(2), OPTIONS);
  const sizes = { mib: positiveNumber(values.mib, 'mib', true), randomSeconds: positiveNumber(values['random-seconds'], 'random-seconds', false) };
  const timeoutMs = positiveNumber(values.timeout, 'timeout', false) * 1000;
  const host = hostInfo();
  const hardware = HARDWARE_BACKENDS.some((b) => host.backend.includes(b));
  if (!hardware && !values.here) return runInTheRig(process.argv.slice(2), timeoutMs, values.json);

  const qemuVersion = ensureQemu(log);
  const guest = defaultGuestFiles(CLI);
  const dir = mkdtempSync(join(tmpdir(), 'tsvmm-bench-io-'));
  const workspace = prepareWorkspace(dir, sizes);
  try {
    log('tsvmm');
    const tsvmm = await measureVmm('tsvmm', workspace, guest, 40_000 + (process.pid % 10_000), timeoutMs);
    log('QEMU');
    const qemu = await measureVmm('qemu', workspace, guest, 50_000 + (process.pid % 10_000), timeoutMs);
    log('the host alone');
    const hostFigures = await measureHost(workspace, timeoutMs);
    const results: IoResults = { host, place: values['in-rig'] ? 'rig' : 'host', qemuVersion, sizes, tsvmm, qemu, hostFigures };
    console.log(values.json ? ioBenchJson(results) : ioBenchTable(results));
  } finally {
    workspace.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The same benchmark inside the rig; its JSON (or table) is printed here. */
async function runInTheRig(args: string[], timeoutMs: number, json: boolean): Promise<void> {
  log('this host has no hardware KVM: running in the test rig (figures there are only good as ratios)');
  // The rig reaches no package mirror: the guest is built here first.
  const progress = stderrProgress();
  await ensureDefaultGuest({ progress }).finally(() => progress.clear());
  let output = '';
  const result = await runInRig({
    argv: [process.execPath, SELF, '--here', '--in-rig', ...args],
    timeoutMs: 3 * timeoutMs,
    output: (chunk) => {
      output += chunk.toString();
      if (!json) process.stdout.write(chunk);
    },
    progress: stderrProgress(),
  });
  if (result.status !== 0) throw new BenchSetupError(`the benchmark failed in the rig: ${result.failure ?? `status ${result.status}`}\n${output.slice(-3000)}`);
  if (json) console.log(output.split('\n').find((l) => l.startsWith('{"bench":"io"')) ?? output);
}

main().catch((e: Error) => {
  const known = e instanceof UsageError || e instanceof BenchSetupError;
  console.error(`bench:io: ${known ? e.message : e.stack ?? e.message}`);
  process.exitCode = 1;
});
