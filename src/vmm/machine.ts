/**
 * A built VM and its lifecycle: start the vCPU threads, pause, resume,
 * stop, and tear everything down (every fd closed, every worker ended).
 * The builder hands it every part at once (MachineParts); they stay
 * read-only, apart from the console and device-log sinks front ends set.
 */
import type { MachineDevice } from '../devices/registry.js';
import { DeviceState } from '../devices/device-state.js';
import { VirtioPciDevice } from '../devices/virtio/pci-transport.js';
import type { QueueServed } from '../devices/virtio/transport-state.js';
import { isVirtioSpec, virtioQueueSizes } from '../devices/virtio/virtio-devices.js';
import type { Kvm } from '../kvm/system.js';
import type { CpuidEntry } from '../kvm/structs.js';
import type { VcpuFd } from '../kvm/vcpu.js';
import type { VmFd } from '../kvm/vm.js';
import type { MappedGuestMemory } from '../memory/mapping.js';
import { collectExitStats, type ExitStats } from '../vcpu/exit-stats.js';
import { ConsoleOrder } from '../vcpu/console-order.js';
import { VcpuThread } from '../vcpu/vcpu-thread.js';
import { describeMemoryMap, type MemoryMapEntry } from './memory-map.js';
import type { RateLimiterConfig } from '../devices/virtio/rate-limiter.js';
import { updateRateLimiter, type LimiterTarget } from './rate-limits.js';
import { watchForStuckGuest } from './stuck-watch.js';
import type { PciDevices } from './pci-setup.js';
import { ExitStatus, type VmStop } from '../devices/vm-stop.js';

export interface Vcpu {
  fd: VcpuFd;
  thread: VcpuThread;
  cpuid: CpuidEntry[];
}

export interface DeviceStats {
  device: string;
  queues: QueueServed[];
}

export type MachineState = 'built' | 'running' | 'paused' | 'stopped' | 'destroyed';

export interface StartOptions {
  /** Start paused (a restored snapshot waiting for its resume). */
  paused?: boolean;
}

/** What the builder made, handed to the Machine in one piece. */
export interface MachineParts {
  kvm: Kvm;
  vm: VmFd;
  memory: MappedGuestMemory;
  vcpus: Vcpu[];
  devices: MachineDevice[];
  /** The PCI devices' eventfds and I/O threads. */
  pci: PciDevices;
  /** What the machine boots, in a few words. */
  description: string;
  /** Built from a snapshot: its RAM and state are a running guest's, not a boot's. */
  restored: boolean;
  console: (data: Uint8Array) => void;
  timeExits: boolean;
  traceFd: number;
  /** Emulate what KVM's own instruction emulator cannot (software backends only). */
  emulationAssist: boolean;
}

export class Machine {
  readonly kvm: Kvm;
  readonly vm: VmFd;
  private readonly guestMemory: MappedGuestMemory;
  readonly vcpus: readonly Vcpu[];
  readonly devices: readonly MachineDevice[];
  readonly pci: PciDevices;
  readonly description: string;
  readonly restored: boolean;
  readonly timeExits: boolean;
  readonly traceFd: number;
  readonly emulationAssist: boolean;
  /** Receives serial output; the console a front end attaches replaces it. */
  console: (data: Uint8Array) => void;
  /** Hears a device that stops working (a virtio device whose driver broke a queue). */
  deviceLog: (message: string) => void = (message) => process.stderr.write(`tsvmm: ${message}\n`);
  private readonly consoleOrder = new ConsoleOrder((data) => this.console(data));
  private readonly assistLock = new SharedArrayBuffer(4);
  private current: MachineState = 'built';
  private outcome?: VmStop;
  private readonly stopped: Promise<VmStop>;
  private settle!: (stop: VmStop) => void;
  /** Settles once every vCPU thread has ended, after the first stop(). */
  private threadsEnded?: Promise<void>;
  private stopStuckWatch?: () => void;
  private markStarted!: () => void;
  /** Settles once start() has done its work: the vCPUs run, or wait paused. */
  readonly started = new Promise<void>((resolve) => (this.markStarted = resolve));

  constructor(parts: MachineParts) {
    this.kvm = parts.kvm;
    this.vm = parts.vm;
    this.guestMemory = parts.memory;
    this.vcpus = parts.vcpus;
    this.devices = parts.devices;
    this.pci = parts.pci;
    this.description = parts.description;
    this.restored = parts.restored;
    this.console = parts.console;
    this.timeExits = parts.timeExits;
    this.traceFd = parts.traceFd;
    this.emulationAssist = parts.emulationAssist;
    this.stopped = new Promise((resolve) => (this.settle = resolve));
  }

  /** Guest RAM as the main thread maps it; gone once the machine is destroyed. */
  get memory(): MappedGuestMemory {
    if (this.current === 'destroyed') throw new Error('the machine is destroyed: its guest memory is unmapped');
    return this.guestMemory;
  }

  get state(): MachineState {
    return this.current;
  }

  /** Creates the vCPU threads, paused; the builder calls it last. */
  spawnVcpuThreads(): void {
    const { guestMemory: memory, vm } = this;
    for (const v of this.vcpus) {
      v.thread.spawn(
        {
          id: v.thread.id, vcpuFd: v.fd.fd, mmapSize: v.fd.mmapSize, vmFd: vm.fd, ram: memory.addresses,
          devices: [...this.devices], timeExits: this.timeExits, traceFd: this.traceFd,
          cpuid: v.cpuid, emulationAssist: this.emulationAssist, assistLock: this.assistLock,
          consoleCounter: this.consoleOrder.counter,
        },
        { console: (d, seq) => this.consoleOrder.receive(seq, d), stop: (s) => void this.stop(s) },
      );
    }
  }

  /** Lets every vCPU run (or, `paused`, readies everything for resume()); resolves once all are running. */
  async start({ paused = false }: StartOptions = {}): Promise<void> {
    if (this.current !== 'built') throw new Error(`cannot start a machine that is ${this.current}`);
    this.current = 'running';
    // A stop() while this waits (a signal, a button) wins: nothing is let run after it.
    const stoppedMeanwhile = () => this.current !== 'running';
    await this.pci.start(this.guestMemory.addresses, (m) => this.deviceLog(m), this.restored);
    if (stoppedMeanwhile()) return;
    await Promise.all(this.vcpus.map((v) => v.thread.started()));
    if (stoppedMeanwhile()) return;
    if (paused) {
      await this.pci.pause();
      this.current = 'paused';
    } else {
      this.vcpus.forEach((v) => v.thread.resume());
    }
    this.markStarted();
    this.stopStuckWatch = watchForStuckGuest(
      this.vcpus.map((v) => v.thread),
      () =>
        void this.stop({
          kind: 'guest-error', exitCode: ExitStatus.GUEST_ERROR,
          message: 'every vCPU is halted with interrupts disabled (or waits for a start-up IPI): the guest can never run again',
        }),
    );
  }

  /** Resolves with how the VM ended. */
  wait(): Promise<VmStop> {
    return this.stopped;
  }

  /** Starts the machine and resolves when it ends. */
  async run(options: StartOptions = {}): Promise<VmStop> {
    await this.start(options);
    return this.wait();
  }

  /** Every vCPU out of KVM_RUN, then every I/O thread at rest: nothing changes guest memory or device state until resume(). */
  async pause(): Promise<void> {
    if (this.current !== 'running') return;
    await Promise.all(this.vcpus.map((v) => v.thread.pause()));
    await this.pci.pause();
    this.current = 'paused';
  }

  resume(): void {
    if (this.current !== 'paused') return;
    this.pci.resume();
    this.vcpus.forEach((v) => v.thread.resume());
    this.current = 'running';
  }

  /** Ends the VM (the first outcome is the one reported) and waits for every vCPU thread to end. */
  async stop(outcome: VmStop = { kind: 'stopped', exitCode: ExitStatus.OK, message: 'stopped by the host' }): Promise<void> {
    if (this.outcome === undefined) {
      this.outcome = outcome;
      this.settle(outcome);
    }
    this.stopStuckWatch?.();
    if (this.current !== 'stopped' && this.current !== 'destroyed') {
      this.current = 'stopped';
      this.threadsEnded = Promise.all(this.vcpus.map((v) => v.thread.stop())).then(() => {
        this.consoleOrder.drain();
        return this.pci.stop();
      });
    }
    // Every caller waits, not only the first: destroy() must not close fds a worker still uses.
    await this.threadsEnded;
  }

  exitStats(): ExitStats {
    return collectExitStats(this.vcpus.map((v) => v.thread.stats));
  }

  /** What each virtio device has served, by queue: `virtio-blk.0` and so on, in the order configured. */
  deviceStats(): DeviceStats[] {
    const seen = new Map<string, number>();
    return this.devices.flatMap(({ spec, state }) => {
      if (!isVirtioSpec(spec)) return [];
      const n = seen.get(spec.kind) ?? 0;
      seen.set(spec.kind, n + 1);
      // A queue vhost serves is the host kernel's: its counts stay 0.
      return [{ device: `${spec.kind}.${n}`, queues: VirtioPciDevice.served(new DeviceState(state), virtioQueueSizes(spec.kind)) }];
    });
  }

  /** Changes a disk's or a network card's rate limiter while the machine runs (see rate-limits.ts). */
  updateRateLimiter(target: LimiterTarget, update: RateLimiterConfig): void {
    updateRateLimiter(this.devices, target, update);
  }

  memoryMap(): MemoryMapEntry[] {
    return describeMemoryMap(this.guestMemory.ram, this.devices.map((d) => d.spec));
  }

  /** Stops the VM if it runs and releases everything it holds. */
  async destroy(): Promise<void> {
    if (this.current === 'destroyed') return;
    await this.stop();
    for (const v of this.vcpus) v.fd.close();
    this.guestMemory.unmap();
    this.vm.close();
    this.pci.close();
    this.kvm.close();
    this.current = 'destroyed';
  }
}
