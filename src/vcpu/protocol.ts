/**
 * What the main thread and a vCPU worker share: the start-up data, the
 * messages the worker posts, and the control word both sides watch.
 */
import type { MachineDevice } from '../devices/registry.js';
import type { CpuidEntry } from '../kvm/structs.js';
import type { RamAddresses } from '../memory/mapping.js';
import { assistMnemonics } from '../arch/x86/emulator/mnemonics.js';
import type { VmStop } from '../devices/vm-stop.js';

export interface VcpuWorkerData {
  id: number;
  vcpuFd: number;
  mmapSize: number;
  /** Guest RAM, as the main thread mapped it. */
  ram: RamAddresses;
  /** The VM fd, for interrupt lines raised by devices. */
  vmFd: number;
  devices: MachineDevice[];
  /** Int32Array over this, indexed by Control. */
  control: SharedArrayBuffer;
  /** Float64Array over this: per exit reason, [count, nanoseconds handling]. */
  stats: SharedArrayBuffer;
  /** Float64Array over this, indexed by ProbeSlot: what the worker saw when it last answered a probe. */
  probe: SharedArrayBuffer;
  /** Time each exit's handling (costs two clock reads an exit). */
  timeExits: boolean;
  /** fd to write one line per exit to, or -1. */
  traceFd: number;
  /** The CPUID this vCPU was given (the emulator answers from it). */
  cpuid: CpuidEntry[];
  /** Emulate instructions KVM's own emulator gives up on (software backends). */
  emulationAssist: boolean;
  /** Int32Array[1]: the machine-wide order of console chunks (see ConsoleOrder). */
  consoleCounter: SharedArrayBuffer;
  /** Int32Array[1]: one emulated instruction at a time per VM. */
  assistLock: SharedArrayBuffer;
}

export const Control = { REQUEST: 0, STATE: 1, KICK: 2, PROBE: 3, STUCK: 4, WATCHED: 5 } as const;
export const CONTROL_SLOTS = 6;
/** Control[WATCHED]: 1 once something (the web console) asks for samples; only then are exits counted by address. */
/**
 * Control[PROBE]: the main thread sets it to 1 (then kicks) to ask where the vCPU stands;
 * the worker answers in Control[STUCK] (1 when it is halted with interrupts off or waits
 * for a SIPI, so it can never wake, 0 otherwise) and in the probe buffer (ProbeSlot), then
 * clears PROBE.
 */
export const Probe = { NONE: 0, ASKED: 1 } as const;
/** Control[KICK]: 0 idle, 1 the main thread is signalling the worker, -1 the worker thread is gone. */
export const Kick = { IDLE: 0, SIGNALLING: 1, CLOSED: -1 } as const;
export const Request = { RUN: 0, PAUSE: 1, STOP: 2 } as const;
export const State = { STARTING: 0, RUNNING: 1, PAUSED: 2, STOPPED: 3 } as const;

export type WorkerMessage =
  | { type: 'ready'; thread: bigint }
  | { type: 'console'; data: Uint8Array; seq: number }
  | { type: 'stop'; stop: VmStop };

/** The probe buffer: RIP in two 32-bit halves (a double holds 53 bits), the MP state, then the busiest ports and MMIO addresses. */
export const ProbeSlot = { RIP_LOW: 0, RIP_HIGH: 1, MP_STATE: 2, HOT: 3 } as const;
/** Ports, then MMIO addresses: this many [address, exits] pairs each, busiest first, [0, 0] for none. */
export const HOT_ENTRIES = 8;
export const PROBE_SLOTS = ProbeSlot.HOT + 2 * HOT_ENTRIES * 2;

/** Exit reasons are small numbers; stats keep a slot for each below this. */
export const MAX_EXIT_REASON = 64;
export const GUEST_TIME_SLOT = MAX_EXIT_REASON; // time inside KVM_RUN
/** After the exit reasons and guest time: one count per assisted mnemonic. */
export const ASSIST_SLOT_BASE = MAX_EXIT_REASON + 1;
export const STATS_SLOTS = ASSIST_SLOT_BASE + assistMnemonics.length;
