/**
 * The tsvmm side: one run of the exit guest through the library, timed
 * from the start of the machine (its vCPU worker thread included) to the
 * guest's debug exit, nothing subtracted.
 */
import type { Machine } from '../../src/vmm/machine.js';
import type { Sample } from './sample.js';

/** Runs a built machine to its end and destroys it. */
export async function runTsvmm(machine: Machine): Promise<Sample> {
  try {
    // machine.run() is start() then wait(); split here only to see what starting costs.
    const start = process.hrtime.bigint();
    await machine.start();
    const started = process.hrtime.bigint();
    const stop = await machine.wait();
    const ns = Number(process.hrtime.bigint() - start);
    // The guest writes 0 to the debug-exit port: status (0 << 1) | 1.
    if (stop.kind !== 'debug-exit' || stop.exitCode !== 1) {
      throw new Error(`the exit guest did not finish cleanly: ${stop.message}${stop.report ? `\n${stop.report}` : ''}`);
    }
    return { exits: machine.exitStats().total, ns, startNs: Number(started - start) };
  } finally {
    await machine.destroy();
  }
}
