/**
 * Runs one command in the test rig from the shell, in the current
 * directory, as root:
 *
 *     node dist/test/rig/main.js [--timeout MIN] [--cpus N] -- COMMAND [ARG...]
 *
 * Its output is streamed; its exit status becomes this program's. Where
 * the host has chromium, the command can use it for the web console's
 * tests, as under `npm test` (test/helpers/browser.ts).
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { stderrProgress } from '../../src/guest/progress.js';
import { CHROMIUM, startBrowserService } from '../helpers/browser.js';
import { runInRig } from './rig.js';

const { values, positionals } = parseArgs({ options: { timeout: { type: 'string', default: '30' }, cpus: { type: 'string', default: '1' } }, allowPositionals: true });
const minutes = Number(values.timeout);
const cpus = Number(values.cpus);
if (positionals.length === 0 || !(minutes > 0) || !Number.isInteger(cpus) || cpus < 1) {
  console.error('usage: rig [--timeout MINUTES] [--cpus N] -- COMMAND [ARG...]');
  process.exit(2);
}
const browser = existsSync(CHROMIUM) ? await startBrowserService() : undefined;
try {
  const reach = await browser?.forRig();
  const result = await runInRig({
    argv: positionals, env: reach?.env, forward: reach?.forward, timeoutMs: minutes * 60_000, cpus,
    output: (chunk) => process.stdout.write(chunk), progress: stderrProgress(),
  });
  console.error(`rig: ${result.failure ?? `status ${result.status}`} (booted in ${((result.bootMs ?? 0) / 1000).toFixed(1)} s, ${(result.totalMs / 1000).toFixed(1)} s in all)`);
  process.exitCode = result.status ?? 1;
} catch (e) {
  console.error(`rig: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 2;
} finally {
  await browser?.server.close();
}
