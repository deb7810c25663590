/**
 * The exit benchmark's guest and the tsvmm machine that runs it: the
 * guest in bench/exit-guest.s, long mode at CPL0 or CPL3, told through RCX
 * and RSI how many exits of which kind to make.
 */
import { defaultDevices } from '../../src/vmm/config.js';
import { buildMachine } from '../../src/vmm/builder.js';
import type { Machine } from '../../src/vmm/machine.js';
import { assemble } from '../../src/tools/assembler.js';
import { MiB } from '../../src/memory/layout.js';
import { benchSource } from './sources.js';

export type ExitKind = 'pio' | 'mmio';
export const EXIT_KINDS: readonly ExitKind[] = ['pio', 'mmio'];

/** How the guest runs: long mode at CPL0 (KVM's emulator on some hosts) or CPL3 (`user: true`). */
export type Privilege = 'cpl0' | 'cpl3';

export interface ExitRun {
  kind: ExitKind;
  privilege: Privilege;
  /** Round trips in the loop; the guest then takes one more exit, the debug exit. */
  iterations: number;
}

const LOAD_ADDR = 0x100000;
const MEMORY = 4 * MiB;
const TEST_DEVICE_BASE = 0xc0000000;
const KIND_REGISTER: Record<ExitKind, bigint> = { pio: 0n, mmio: 1n };

export function assembleExitGuest(): Uint8Array {
  return assemble(benchSource('exit-guest.s'), { address: LOAD_ADDR });
}

/** A built (not started) machine whose vCPU 0 will run `run`. */
export async function buildExitMachine(image: Uint8Array, run: ExitRun): Promise<Machine> {
  if (!Number.isSafeInteger(run.iterations) || run.iterations < 1) throw new RangeError(`iterations must be a positive integer, got ${run.iterations}`);
  const machine = buildMachine({
    memory: MEMORY,
    cpus: 1,
    boot: { kind: 'raw', image, mode: 'long', loadAddr: LOAD_ADDR, user: run.privilege === 'cpl3' },
    devices: [...defaultDevices, { kind: 'test-device', base: TEST_DEVICE_BASE }],
  });
  try {
    const { fd } = machine.vcpus[0];
    fd.setRegs({ ...fd.getRegs(), rcx: BigInt(run.iterations), rsi: KIND_REGISTER[run.kind] });
  } catch (e) {
    await machine.destroy();
    throw e;
  }
  return machine;
}
