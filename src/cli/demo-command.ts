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
import { parseCount, parseWebFlags } from './parse.js';
import { runMachine, type RunFlags } from './run-machine.js';

const DEMO_SOURCE = fileURLToPath(new URL('../../../guests/demo.s', import.meta.url));
const LOAD_ADDRESS = 0x100000;
const TEST_DEVICE = 0xc0000000;
/** Where demo.s keeps its `rounds` count. */
const ROUNDS_OFFSET = 8;

type DemoFlags = Omit<RunFlags, 'console' | 'web'> & { console: string; web?: string; webToken?: string; rounds: string };

export async function demoCommand(flags: DemoFlags): Promise<number> {
  // Flags first: a bad one is the only line printed.
  const rounds = parseCount('--rounds', 2 ** 40)(flags.rounds);
  const web = parseWebFlags(flags);
  const image = Buffer.from(assemble(DEMO_SOURCE, { address: LOAD_ADDRESS }));
  if (image.readBigUInt64LE(ROUNDS_OFFSET) !== 1n) throw new Error(`${DEMO_SOURCE} keeps its round count elsewhere than offset ${ROUNDS_OFFSET}`);
  image.writeBigUInt64LE(BigInt(rounds), ROUNDS_OFFSET);
  process.stderr.write(`tsvmm demo: running ${DEMO_SOURCE} (${image.length} bytes) in 64-bit long mode\n`);
  const status = await runMachine(
    {
      memory: 16 * MiB,
      cpus: 1,
      boot: { kind: 'raw', image, mode: 'long', loadAddr: LOAD_ADDRESS },
      devices: [...defaultDevices, { kind: 'test-device', base: TEST_DEVICE }],
    },
    // One line per exit is the point of one round; past that it would drown the console.
    { stats: true, memoryMap: true, traceExits: flags.traceExits ?? rounds === 1, console: parseConsoleMode(flags.console), web },
  );
  // The guest writes 0 to the debug-exit port when all went well: status (0 << 1) | 1.
  return status === 1 ? 0 : status;
}
