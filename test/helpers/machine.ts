/**
 * machine.run() with a time limit: a guest that hangs fails its test (and
 * is stopped) instead of holding the suite.
 */
import type { Machine } from '../../src/vmm/machine.js';
import type { VmStop } from '../../src/devices/vm-stop.js';

export const RUN_TIMEOUT_MS = 60_000;

export async function runBounded(machine: Machine, timeoutMs = RUN_TIMEOUT_MS): Promise<VmStop> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void machine.stop({ kind: 'stopped', exitCode: 1, message: 'stopped by the test: time limit' });
      reject(new Error(`the guest did not stop within ${timeoutMs / 1000} s`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([machine.run(), limit]);
  } finally {
    clearTimeout(timer);
  }
}
