/**
 * Notices a guest that can never run again: every vCPU halted with
 * interrupts disabled (or waiting for a start-up IPI nobody will send).
 * KVM keeps such a guest asleep in the kernel forever, so the VMM would
 * hang; instead, when no vCPU has exited for a while, each is asked, and
 * if all are stuck the machine stops with a report.
 */
import type { VcpuThread } from '../vcpu/vcpu-thread.js';

const CHECK_EVERY_MS = 2000;
const ANSWER_WITHIN_MS = 500;

export function watchForStuckGuest(threads: readonly VcpuThread[], onStuck: () => void): () => void {
  let last = threads.map((t) => t.exitCount);
  let probing = false;
  const timer = setInterval(() => {
    const now = threads.map((t) => t.exitCount);
    const quiet = now.every((n, i) => n === last[i]);
    last = now;
    if (!quiet || probing) return;
    probing = true;
    void Promise.all(threads.map((t) => t.probeStuck(ANSWER_WITHIN_MS)))
      .then((stuck) => {
        if (stuck.every(Boolean)) onStuck();
      })
      .finally(() => (probing = false));
  }, CHECK_EVERY_MS);
  timer.unref();
  return () => clearInterval(timer);
}
