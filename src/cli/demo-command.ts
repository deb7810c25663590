/**
 * `tsvmm demo`: assembles the built-in demo guest (guests/demo.s) and runs
 * it with the exit trace and the exit table on, so a newcomer sees what a
 * VMM does.
 */
import { fileURLToPath } from 'node:url';
import { assemble } from '../tools/assembler.js';
import { defaultDevices } from '../vmm/config.js';
import { MiB } from '../memory/layout.js';
import { parseConsoleMode } from '../console/console-mode.js';
import { runMachine, type RunFlags } from './run-machine.js';

const DEMO_SOURCE = fileURLToPath(new URL('../../../guests/demo.s', import.meta.url));
const LOAD_ADDRESS = 0x100000;
const TEST_DEVICE = 0xc0000000;

export async function demoCommand(flags: Omit<RunFlags, 'console'> & { console: string }): Promise<number> {
  const image = assemble(DEMO_SOURCE, { address: LOAD_ADDRESS });
  process.stderr.write(`tsvmm demo: running ${DEMO_SOURCE} (${image.length} bytes) in 64-bit long mode\n`);
  const status = await runMachine(
    {
      memory: 16 * MiB,
      cpus: 1,
      boot: { kind: 'raw', image, mode: 'long', loadAddr: LOAD_ADDRESS },
      devices: [...defaultDevices, { kind: 'test-device', base: TEST_DEVICE }],
    },
    { stats: true, memoryMap: true, traceExits: flags.traceExits ?? true, console: parseConsoleMode(flags.console) },
  );
  // The guest writes 0 to the debug-exit port when all went well: status (0 << 1) | 1.
  return status === 1 ? 0 : status;
}
