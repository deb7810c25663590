/**
 * The run loop of one vCPU: KVM_RUN, then dispatch the exit to the port or
 * MMIO bus, or end the VM with a report. Runs on the vCPU's worker thread.
 */
import { constants } from 'node:os';
import { writeSync } from 'node:fs';
import type { Bus } from '../devices/bus.js';
import { hex } from '../devices/bus.js';
import { ExitReason, exitReasonName, InternalErrorSuberror, IO_OUT, SystemEvent, type KvmRun } from '../kvm/kvm-run.js';
import type { VcpuFd } from '../kvm/vcpu.js';
import { hostBackend } from '../host/backend-kind.js';
import { ExitStatus, type VmStop } from '../devices/vm-stop.js';
import { formatRegisters, hexBytes } from './cpu-report.js';
import { ASSIST_SLOT_BASE, Control, GUEST_TIME_SLOT, HOT_ENTRIES, MAX_EXIT_REASON, Probe, ProbeSlot, Request, State } from './protocol.js';
import { MP_STATE_HALTED, MP_STATE_INIT_RECEIVED, MP_STATE_UNINITIALIZED } from '../kvm/vcpu.js';
import { assistInstruction } from '../arch/x86/emulator/assist.js';
import { CpuContext, GuestFault } from '../arch/x86/emulator/cpu-context.js';
import { mnemonicSlot } from '../arch/x86/emulator/mnemonics.js';
import type { CpuidEntry } from '../kvm/structs.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import { disassembleOne } from '../tools/disassembler.js';
import { cpuMode } from './cpu-report.js';

const EINTR = constants.errno.EINTR;
const EAGAIN = constants.errno.EAGAIN;
const RFLAGS_IF = 1n << 9n;
const KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES = 1n;

export interface VcpuLoopOptions {
  id: number;
  vcpu: VcpuFd;
  run: KvmRun;
  buses: { pio: Bus; mmio: Bus };
  control: Int32Array;
  stats: Float64Array;
  /** Where a probe's answer goes (ProbeSlot). */
  probe: Float64Array;
  timeExits: boolean;
  traceFd: number;
  memory: GuestMemory;
  cpuid: CpuidEntry[];
  /** Set when KVM's own emulator needs help (software backends). */
  assist?: { lock: Int32Array };
  /** Called once after each exit so buffered console output goes out in order. */
  flush(): void;
}

export class VcpuLoop {
  private stop?: VmStop;
  /** Views of kvm_run's MMIO data for each access size, made once. */
  private readonly mmioData: Uint8Array[];
  /** Exits by port and by MMIO address while watched (Control[WATCHED]), for the busiest of each a probe reports. */
  private readonly portExits = new Map<number, number>();
  private readonly mmioExits = new Map<number, number>();

  constructor(private readonly o: VcpuLoopOptions) {
    const at = o.run.mmioDataOffset;
    this.mmioData = Array.from({ length: 9 }, (_, n) => o.run.bytes.subarray(at, at + n));
  }

  /** Ends the loop after the exit being handled; the first outcome wins. */
  requestStop(stop: VmStop): void {
    this.stop ??= { ...stop, vcpu: this.o.id };
  }

  /** Runs until the guest or the host ends the VM; returns how it ended (undefined: the host asked). */
  runUntilStopped(): VmStop | undefined {
    const { vcpu, run, control, stats, timeExits } = this.o;
    Atomics.store(control, Control.STATE, State.RUNNING);
    while (this.stop === undefined) {
      const request = Atomics.load(control, Control.REQUEST);
      if (request === Request.STOP) break;
      if (request === Request.PAUSE) {
        this.waitWhilePaused();
        continue;
      }
      const entered = timeExits ? performance.now() : 0;
      const r = vcpu.enter();
      if (r < 0) {
        if (r === -EINTR || r === -EAGAIN) {
          // A kick: clear immediate_exit before looking at the request, so a kick
          // that lands after this point still stops the next KVM_RUN.
          run.immediateExit = false;
          if (Atomics.load(control, Control.PROBE) === Probe.ASKED) this.answerProbe();
          continue;
        }
        this.requestStop({ kind: 'guest-error', exitCode: ExitStatus.ERROR, message: `KVM_RUN failed: errno ${-r}` });
        break;
      }
      const reason = run.exitReason;
      const slot = reason < MAX_EXIT_REASON ? reason : MAX_EXIT_REASON - 1;
      stats[slot * 2]++;
      if (timeExits) {
        const left = performance.now();
        stats[GUEST_TIME_SLOT * 2 + 1] += (left - entered) * 1e6;
        this.handleExit(reason);
        stats[slot * 2 + 1] += (performance.now() - left) * 1e6;
      } else {
        this.handleExit(reason);
      }
      this.o.flush();
    }
    Atomics.store(control, Control.STATE, State.STOPPED);
    Atomics.notify(control, Control.STATE);
    return this.stop;
  }

  /**
   * Says where the vCPU stands: its RIP, MP state and busiest addresses, and whether it can never
   * run again by itself (halted with IF clear, or waiting for a SIPI).
   */
  private answerProbe(): void {
    const { vcpu, control, probe } = this.o;
    const mp = vcpu.getMpState();
    const { rip, rflags } = vcpu.getRegs();
    const stuck = mp === MP_STATE_UNINITIALIZED || mp === MP_STATE_INIT_RECEIVED || (mp === MP_STATE_HALTED && (rflags & RFLAGS_IF) === 0n);
    probe[ProbeSlot.RIP_LOW] = Number(rip & 0xffff_ffffn);
    probe[ProbeSlot.RIP_HIGH] = Number(rip >> 32n);
    probe[ProbeSlot.MP_STATE] = mp;
    [this.portExits, this.mmioExits].forEach((exits, space) => {
      const busiest = [...exits].sort((a, b) => b[1] - a[1]).slice(0, HOT_ENTRIES);
      for (let i = 0; i < HOT_ENTRIES; i++) {
        const at = ProbeSlot.HOT + (space * HOT_ENTRIES + i) * 2;
        probe[at] = busiest[i]?.[0] ?? 0;
        probe[at + 1] = busiest[i]?.[1] ?? 0;
      }
    });
    Atomics.store(control, Control.STUCK, stuck ? 1 : 0);
    Atomics.store(control, Control.PROBE, Probe.NONE);
    Atomics.notify(control, Control.PROBE);
  }

  private waitWhilePaused(): void {
    const { control } = this.o;
    Atomics.store(control, Control.STATE, State.PAUSED);
    Atomics.notify(control, Control.STATE);
    Atomics.wait(control, Control.REQUEST, Request.PAUSE);
    Atomics.store(control, Control.STATE, State.RUNNING);
    Atomics.notify(control, Control.STATE);
  }

  private handleExit(reason: number): void {
    this.dispatch(reason);
    if (this.o.traceFd >= 0) this.trace(reason);
  }

  private dispatch(reason: number): void {
    const { run } = this.o;
    switch (reason) {
      case ExitReason.IO: return this.handleIo();
      case ExitReason.MMIO: return this.handleMmio();
      case ExitReason.HLT:
        return this.requestStop({ kind: 'guest-error', exitCode: ExitStatus.GUEST_ERROR, message: 'the guest halted with nothing to wake it' });
      case ExitReason.SHUTDOWN:
        return this.requestStop({
          kind: 'triple-fault', exitCode: ExitStatus.TRIPLE_FAULT,
          message: 'the guest triple-faulted (a fault while delivering a double fault): the CPU shut down',
          report: this.shutdownRegisterDump(),
        });
      case ExitReason.SYSTEM_EVENT: return this.handleSystemEvent();
      case ExitReason.INTERNAL_ERROR: return this.handleInternalError();
      case ExitReason.FAIL_ENTRY:
        return this.requestStop({
          kind: 'fail-entry', exitCode: ExitStatus.FAIL_ENTRY,
          message: `the CPU refused to enter the guest (hardware entry failure reason ${hex(run.failEntryReason)})`,
          report: this.registerDump(),
        });
      case ExitReason.DEBUG:
        return this.requestStop({
          kind: 'guest-error', exitCode: ExitStatus.GUEST_ERROR,
          message: `debug exception ${run.debugException} at ${hex(run.debugPc)}`, report: this.registerDump(),
        });
      case ExitReason.INTR:
        return; // a signal arrived; the loop looks at the request
      default:
        return this.requestStop({
          kind: 'guest-error', exitCode: ExitStatus.GUEST_ERROR,
          message: `unexpected VM exit ${exitReasonName(reason)} (${reason})`, report: this.registerDump(),
        });
    }
  }

  private handleIo(): void {
    const { run, buses } = this.o;
    const port = run.ioPort;
    if (this.o.control[Control.WATCHED] === 1) this.portExits.set(port, (this.portExits.get(port) ?? 0) + 1);
    const size = run.ioSize;
    const count = run.ioCount;
    const offset = run.ioDataOffset;
    if (offset + size * count > run.bytes.length) {
      return this.requestStop({ kind: 'guest-error', exitCode: ExitStatus.ERROR, message: 'KVM reported port data outside the kvm_run page' });
    }
    const entry = buses.pio.find(port, size);
    const out = run.ioDirection === IO_OUT;
    if (entry === undefined && out) return; // nobody there: the write goes nowhere
    for (let i = 0; i < count; i++) {
      const data = run.bytes.subarray(offset + i * size, offset + (i + 1) * size);
      if (entry === undefined) {
        if (!out) data.fill(0xff); // nothing there: the bus floats high
      } else if (out) {
        entry.device.write(port - entry.base, data);
      } else {
        entry.device.read(port - entry.base, data);
      }
    }
  }

  private handleMmio(): void {
    const { run, buses } = this.o;
    const address = run.mmioAddress;
    if (this.o.control[Control.WATCHED] === 1) this.mmioExits.set(address, (this.mmioExits.get(address) ?? 0) + 1);
    const length = Math.min(run.mmioLength, 8);
    const data = this.mmioData[length];
    const entry = buses.mmio.find(address, length);
    if (entry === undefined) {
      if (!run.mmioIsWrite) data.fill(0xff);
      return;
    }
    if (run.mmioIsWrite) entry.device.write(address - entry.base, data);
    else entry.device.read(address - entry.base, data);
  }

  private handleSystemEvent(): void {
    const { run } = this.o;
    switch (run.eventType) {
      case SystemEvent.SHUTDOWN:
        return this.requestStop({ kind: 'shutdown', exitCode: ExitStatus.OK, message: 'the guest powered off' });
      case SystemEvent.RESET:
        return this.requestStop({ kind: 'reset', exitCode: ExitStatus.OK, message: 'the guest asked for a reset' });
      case SystemEvent.CRASH:
        return this.requestStop({ kind: 'guest-error', exitCode: ExitStatus.GUEST_ERROR, message: 'the guest reported a crash', report: this.registerDump() });
      default:
        return this.requestStop({ kind: 'guest-error', exitCode: ExitStatus.GUEST_ERROR, message: `system event ${run.eventType}` });
    }
  }

  private handleInternalError(): void {
    const { run } = this.o;
    const suberror = run.suberror;
    const emulation = suberror === InternalErrorSuberror.EMULATION;
    const data = run.exitData;
    const name = Object.entries(InternalErrorSuberror).find(([, v]) => v === suberror)?.[0] ?? `suberror ${suberror}`;
    const kvmAccount = () => {
      const lines = [`suberror: ${suberror} (${name})`, `data: ${data.map((d) => hex(d)).join(' ') || '(none)'}`];
      if (emulation) {
        const insn = instructionBytes(data);
        lines.push(insn ? `instruction bytes: ${hexBytes(insn)}` : `instruction bytes (KVM gave none; read at CS:RIP): ${bytesAtRip(this.o)}`);
        const backend = hostBackend();
        lines.push(
          backend.kind === 'software'
            ? `KVM backend: ${backend.module}, a software backend: its instruction emulator runs all ring-0 guest code and lacks this instruction`
            : `KVM backend: ${backend.module ?? 'unknown'}: KVM emulated this instruction for an exit (MMIO, port I/O) and its emulator lacks it`,
        );
      }
      return lines.join('\n');
    };
    if (emulation && this.o.assist && this.tryAssist(this.o.assist.lock)) {
      // When the assist does not know the instruction either, it has stopped the VM: KVM's account belongs in that report too.
      if (this.stop) this.stop.report = this.stop.report ? `${kvmAccount()}\n${this.stop.report}` : kvmAccount();
      return;
    }
    this.requestStop({
      kind: 'internal-error', exitCode: ExitStatus.INTERNAL_ERROR,
      message: emulation ? "KVM's instruction emulator could not run a guest instruction" : 'KVM could not run the guest',
      report: `${kvmAccount()}\n${this.registerDump()}`,
    });
  }

  /** Runs the instruction KVM's emulator gave up on; false when the assist does not know it either. */
  private tryAssist(lock: Int32Array): boolean {
    while (Atomics.compareExchange(lock, 0, 0, 1) !== 0) Atomics.wait(lock, 0, 1, 1);
    let outcome;
    try {
      outcome = assistInstruction(this.o.vcpu, this.o.memory, this.o.cpuid);
    } finally {
      Atomics.store(lock, 0, 0);
      Atomics.notify(lock, 0, 1);
    }
    if (outcome.kind === 'unknown') {
      const sregs = this.o.vcpu.getSregs();
      const bits = (sregs.cr0 & 1n) === 0n ? 16 : sregs.cs.l ? 64 : sregs.cs.db ? 32 : 16;
      const name = disassembleOne(outcome.bytes, bits);
      this.requestStop({
        kind: 'internal-error', exitCode: ExitStatus.INTERNAL_ERROR,
        message: `an instruction neither KVM's emulator nor tsvmm's emulation assist can run: ${name ?? 'unknown'} (${hexBytes(outcome.bytes.subarray(0, 8))}...) at ${hex(outcome.rip)}`,
        report: `${cpuMode(sregs)}; decoder: ${outcome.reason}\n${this.registerDump()}`,
      });
      return true;
    }
    const slot = mnemonicSlot(outcome.mnemonic);
    if (slot >= 0) this.o.stats[(ASSIST_SLOT_BASE + slot) * 2]++;
    return true;
  }

  private registerDump(): string {
    try {
      return formatRegisters(this.o.vcpu.getRegs(), this.o.vcpu.getSregs());
    } catch (e) {
      return `(registers unavailable: ${(e as Error).message})`;
    }
  }

  /**
   * KVM on AMD (SVM) resets the vCPU when it intercepts a shutdown, since the
   * VMCB is undefined after one: the registers are then the reset state
   * (CS:IP f000:fff0), not the guest's at the fault. Say so rather than dump them.
   */
  private shutdownRegisterDump(): string {
    try {
      const regs = this.o.vcpu.getRegs();
      const sregs = this.o.vcpu.getSregs();
      if (regs.rip === 0xfff0n && sregs.cs.selector === 0xf000 && sregs.cs.base === 0xffff0000n) {
        return 'registers at the fault: lost (KVM has reset the vCPU, as it does at a shutdown on AMD; the guest\'s state before the fault is not kept)';
      }
      return formatRegisters(regs, sregs);
    } catch (e) {
      return `(registers unavailable: ${(e as Error).message})`;
    }
  }

  private trace(reason: number): void {
    const { run, vcpu } = this.o;
    let detail = '';
    if (reason === ExitReason.IO) {
      const bytes = run.bytes.subarray(run.ioDataOffset, run.ioDataOffset + run.ioSize * Math.min(run.ioCount, 16));
      detail = ` ${run.ioDirection === IO_OUT ? 'out' : 'in'} port=${hex(run.ioPort, 4)} size=${run.ioSize} count=${run.ioCount} data=${hexBytes(bytes)}`;
    } else if (reason === ExitReason.MMIO) {
      const bytes = run.bytes.subarray(run.mmioDataOffset, run.mmioDataOffset + Math.min(run.mmioLength, 8));
      detail = ` ${run.mmioIsWrite ? 'write' : 'read'} addr=${hex(run.mmioAddress)} size=${run.mmioLength} data=${hexBytes(bytes)}`;
    }
    let rip = '?';
    try {
      rip = hex(vcpu.getRegs().rip);
    } catch {
      // registers are only a nicety here
    }
    writeSync(this.o.traceFd, `vcpu${this.o.id} ${exitReasonName(reason)}${detail} rip=${rip}\n`);
  }
}

/** The instruction bytes KVM puts in data[] when it sets the flag for them: u64 flags, then u8 size, u8 bytes[15]. */
function instructionBytes(data: bigint[]): Uint8Array | undefined {
  if (data.length < 3 || (data[0] & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES) === 0n) return undefined;
  const raw = new Uint8Array(16);
  const view = new DataView(raw.buffer);
  view.setBigUint64(0, data[1], true);
  view.setBigUint64(8, data[2], true);
  const size = Math.min(raw[0], 15);
  return size === 0 ? undefined : raw.subarray(1, 1 + size);
}

/** For when KVM gives no instruction bytes: the bytes at CS:RIP, read through the guest's segments and page tables. */
function bytesAtRip(o: VcpuLoopOptions): string {
  try {
    return hexBytes(new CpuContext(o.vcpu, o.memory, o.cpuid).fetchInstruction());
  } catch (e) {
    return `unavailable (${e instanceof GuestFault ? `fetching them raises exception ${e.vector}` : (e as Error).message})`;
  }
}
