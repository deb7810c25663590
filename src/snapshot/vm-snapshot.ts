/**
 * A paused VM saved to files and brought back, in this process or another:
 * the configuration it was built from, each vCPU's state as KVM keeps it
 * (registers, special registers, debug registers, XSAVE area, XCR0, local
 * APIC, pending events, MP state, every MSR KVM lists, TSC frequency), the in-kernel PIC, I/O APIC, PIT
 * and kvmclock, each device's shared state (PCI config space, virtio
 * registers and ring indices, MSI-X tables), the MSI routes, and guest RAM.
 * The machine is paused, so no I/O thread is in the middle of a request.
 *
 * Restoring builds the same machine from the saved configuration with its
 * RAM mapped from the memory file (copy-on-write, read as the guest
 * touches it), puts every piece of state back before a vCPU runs, and
 * starts the I/O threads over the devices' state: they go on from the
 * saved ring indices, and serve what the driver had made available.
 *
 * A machine that tracks dirty pages can also be saved as a diff: the same
 * state file, and a memory file of only the pages written since the
 * previous snapshot (KVM's dirty log for the guest's writes, the VMM's own
 * bitmap for its devices'), to merge onto that snapshot's memory file.
 *
 * What a clone must not share with its original is given at load
 * (RestoreOverrides: its own taps), or comes from the restore itself:
 * the vsock device tells the guest its streams are gone, and the VM
 * generation ID changes, so that the guest reseeds its random numbers.
 */
import { DeviceState } from '../devices/device-state.js';
import { newGeneration } from '../devices/legacy/vmgenid.js';
import { PAGE_SIZE } from '../memory/dirty-pages.js';
import type { KvmClockData, KvmDebugregs, KvmPitState2, KvmRegs, KvmSregs, KvmVcpuEvents } from '../kvm/structs.js';
import type { VcpuFd } from '../kvm/vcpu.js';
import { MemoryFileError } from '../memory/mapping.js';
import { buildMachine } from '../vmm/builder.js';
import { netInterfaces } from '../config/vm-resources.js';
import type { MachineConfig } from '../vmm/config.js';
import type { Machine } from '../vmm/machine.js';
import { TSVMM_VERSION } from '../version.js';
import { writeDiffMemory, writeFullMemory } from './memory-file.js';
import { readStateFile, SnapshotError, writeStateFile } from './snapshot-file.js';

/** The configuration a snapshot keeps: MachineConfig without what cannot be saved (callbacks, fds). */
export type SavedConfig = Omit<MachineConfig, 'console' | 'traceFd' | 'timeExits'>;

interface VcpuSnapshot {
  regs: KvmRegs;
  sregs: KvmSregs;
  debugRegs: KvmDebugregs;
  xsave: Uint8Array;
  xcr0: bigint;
  lapic: Uint8Array;
  events: KvmVcpuEvents;
  mpState: number;
  msrs: { index: number; data: bigint }[];
  /** The guest's TSC frequency in kHz (0 where KVM does not know it). */
  tscKhz: number;
}

interface VmSnapshot {
  tsvmmVersion: string;
  config: SavedConfig;
  vcpus: VcpuSnapshot[];
  irqchips: Uint8Array[];
  pit: KvmPitState2;
  clock: KvmClockData;
  /** Each device's shared state, in the machine's device order. */
  devices: { kind: string; state: Uint8Array }[];
  /** The MSI routes the guest's MSI-X tables programmed. */
  msiRoutes: Uint8Array;
}

const IRQCHIPS = [0, 1, 2]; // PIC master, PIC slave, I/O APIC

export type SnapshotKind = 'full' | 'diff';

/**
 * Saves a paused machine: its state to `statePath`, its RAM (all of it, or for a diff the pages written
 * since the previous snapshot) to `memoryPath`. Returns the bytes of RAM written.
 */
export function snapshotMachine(machine: Machine, config: SavedConfig, statePath: string, memoryPath: string, kind: SnapshotKind = 'full'): number {
  if (machine.state !== 'paused') throw new SnapshotError(`a snapshot needs a paused VM; this one is ${machine.state}`);
  const dirty = takeDirtyPages(machine);
  if (kind === 'diff' && dirty === undefined) throw new SnapshotError('a diff snapshot needs a machine that tracks dirty pages (track_dirty_pages in machine-config)');
  const msrIndices = machine.kvm.msrIndexList();
  const vcpus = machine.vcpus.map(({ fd }): VcpuSnapshot => ({
    regs: fd.getRegs(),
    sregs: fd.getSregs(),
    debugRegs: fd.getDebugRegs(),
    xsave: fd.getXsave(),
    xcr0: fd.getXcr0(),
    lapic: fd.getLapic(),
    events: fd.getVcpuEvents(),
    mpState: fd.getMpState(),
    msrs: everyMsr(msrIndices, (indices) => fd.getMsrs(indices)),
    tscKhz: fd.getTscKhz(),
  }));
  const { vm } = machine;
  const snapshot: VmSnapshot = {
    tsvmmVersion: TSVMM_VERSION,
    config,
    vcpus,
    irqchips: IRQCHIPS.map((chip) => vm.getIrqchip(chip)),
    pit: vm.getPit2(),
    clock: vm.getClock(),
    devices: machine.devices.map((d) => ({ kind: d.spec.kind, state: new DeviceState(d.state).bytes.slice() })),
    msiRoutes: machine.pci.routes.state.bytes.slice(),
  };
  const { regions } = machine.memory;
  let written = machine.memory.size;
  if (kind === 'diff') written = writeDiffMemory(memoryPath, regions, dirty!);
  else writeFullMemory(memoryPath, regions);
  writeStateFile(statePath, snapshot);
  return written;
}

/**
 * The pages written since the last call (the guest's, from each slot's dirty log, and the VMM's), one
 * bit per page of the memory file; both logs start again from here. Undefined when pages are not tracked.
 */
function takeDirtyPages(machine: Machine): Uint8Array | undefined {
  const { memory, vm } = machine;
  if (memory.dirtyPages === undefined) return undefined;
  const dirty = memory.dirtyPages.take();
  memory.ram.forEach((range, slot) => {
    const log = vm.getDirtyLog(slot, range.size / PAGE_SIZE);
    const first = range.fileOffset / PAGE_SIZE;
    for (let page = 0; page < range.size / PAGE_SIZE; page++) {
      if ((log[page >> 3] & (1 << (page & 7))) !== 0) dirty[(first + page) >> 3] |= 1 << ((first + page) & 7);
    }
  });
  return dirty;
}

/** What a restored machine gets beside the snapshot: where its console goes, and the run's exit tracing. */
export type RestoreOptions = Pick<MachineConfig, 'console' | 'timeExits' | 'traceFd'>;

/** What a restore may change in the saved machine, as Firecracker's snapshot/load does. */
export interface RestoreOverrides {
  /** Track dirty pages from here on (or not), whatever the saved machine did. */
  trackDirtyPages?: boolean;
  /** The tap each network interface (by its iface_id) uses instead of the saved one: a clone's own. */
  networkOverrides?: { ifaceId: string; tap: string }[];
}

/** A snapshot read and checked, ready to become a machine (as many as wanted: each its own copy). */
export interface LoadedSnapshot {
  /** The machine it describes, overrides applied. */
  readonly config: SavedConfig;
  /** The same snapshot with `overrides` applied to its machine; an interface it does not have is refused. */
  withOverrides(overrides: RestoreOverrides): LoadedSnapshot;
  /** The machine the snapshot describes, its state put back, not started. */
  build(options?: RestoreOptions): Machine;
}

export function loadSnapshot(statePath: string, memoryPath: string): LoadedSnapshot {
  const snapshot = readStateFile(statePath) as VmSnapshot;
  if (snapshot.tsvmmVersion !== TSVMM_VERSION) {
    throw new SnapshotError(`snapshot '${statePath}' was written by tsvmm ${snapshot.tsvmmVersion}; this is tsvmm ${TSVMM_VERSION}`);
  }
  return loaded(snapshot, snapshot.config, statePath, memoryPath);
}

function loaded(snapshot: VmSnapshot, config: SavedConfig, statePath: string, memoryPath: string): LoadedSnapshot {
  return {
    config,
    withOverrides: (overrides) => loaded(snapshot, overridden(config, overrides, statePath), statePath, memoryPath),
    build: (options = {}) => {
      let machine: Machine;
      try {
        const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
        machine = buildMachine({ ...config, ...given }, { restoreMemory: memoryPath });
      } catch (e) {
        if (e instanceof MemoryFileError) throw new SnapshotError(`snapshot memory ${e.message}`);
        throw e;
      }
      try {
        applySnapshot(machine, snapshot, statePath);
      } catch (e) {
        void machine.destroy();
        throw e;
      }
      return machine;
    },
  };
}

function overridden(config: SavedConfig, overrides: RestoreOverrides, statePath: string): SavedConfig {
  const nets = netInterfaces(config.devices ?? []);
  const unknown = (overrides.networkOverrides ?? []).filter((o) => !nets.some((n) => n.id === o.ifaceId));
  if (unknown.length > 0) {
    const known = nets.length > 0 ? nets.map((n) => n.id).join(', ') : 'none';
    throw new SnapshotError(`snapshot '${statePath}' has no network interface ${unknown.map((o) => `'${o.ifaceId}'`).join(', ')} (it has ${known})`);
  }
  const tapOf = new Map((overrides.networkOverrides ?? []).map((o) => [nets.find((n) => n.id === o.ifaceId)!.device, o.tap]));
  const devices = config.devices?.map((d) => (d.kind === 'virtio-net' && tapOf.has(d) ? { ...d, tap: tapOf.get(d)! } : d));
  return { ...config, devices, trackDirtyPages: overrides.trackDirtyPages ?? config.trackDirtyPages };
}

/** Puts the saved state into a machine built from the snapshot's configuration, before it starts. */
function applySnapshot(machine: Machine, snapshot: VmSnapshot, statePath: string): void {
  if (machine.state !== 'built') throw new SnapshotError('a snapshot is applied to a machine that has not started');
  if (snapshot.vcpus.length !== machine.vcpus.length || snapshot.devices.length !== machine.devices.length) {
    throw new SnapshotError(`snapshot '${statePath}' does not describe this machine (its vCPUs or devices differ)`);
  }
  const { vm } = machine;
  IRQCHIPS.forEach((chip, i) => vm.setIrqchip(chip, snapshot.irqchips[i]));
  vm.setPit2(snapshot.pit);
  vm.setClock({ ...snapshot.clock, flags: 0 });
  machine.devices.forEach((d, i) => {
    const saved = snapshot.devices[i];
    const bytes = new DeviceState(d.state).bytes;
    if (saved.kind !== d.spec.kind || saved.state.length !== bytes.length) {
      throw new SnapshotError(`snapshot '${statePath}': device ${i} is a ${saved.kind} of ${saved.state.length} bytes, the machine's a ${d.spec.kind} of ${bytes.length}`);
    }
    bytes.set(saved.state);
  });
  machine.pci.routes.state.bytes.set(snapshot.msiRoutes);
  machine.pci.routes.install();
  machine.vcpus.forEach(({ fd }, i) => {
    const v = snapshot.vcpus[i];
    // Order matters to KVM: the TSC's rate before the TSC MSR, special registers (modes) and the XCR
    // before the XSAVE area, the LAPIC before events.
    keepTscRate(fd, v.tscKhz, statePath);
    fd.setSregs(v.sregs);
    fd.setDebugRegs(v.debugRegs);
    fd.setXcr0(v.xcr0);
    fd.setXsave(v.xsave);
    fd.setRegs(v.regs);
    everyMsr(v.msrs, (msrs) => msrs.slice(0, fd.setMsrs(msrs)));
    fd.setLapic(v.lapic);
    fd.setMpState(v.mpState);
    fd.setVcpuEvents(v.events);
  });
  // A restored guest may be one of many clones: it reseeds its random numbers from a new generation ID.
  if (machine.devices.some((d) => d.spec.kind === 'vmgenid')) newGeneration(machine.memory, vm);
}

/** How far the TSC's rate may drift across a restore before it is scaled back, as Firecracker allows. */
const TSC_TOLERANCE_PPM = 250;

/**
 * A guest reads time from its TSC at the rate it measured at boot: on a host whose TSC runs at another
 * rate, KVM scales the guest's back to the saved one (TSC scaling in the CPU; refused in one line without).
 */
function keepTscRate(fd: VcpuFd, savedKhz: number, statePath: string): void {
  if (savedKhz === 0) return;
  const hereKhz = fd.getTscKhz();
  if (Math.abs(hereKhz - savedKhz) * 1e6 <= savedKhz * TSC_TOLERANCE_PPM) return;
  try {
    fd.setTscKhz(savedKhz);
  } catch (e) {
    throw new SnapshotError(`snapshot '${statePath}' was taken where the TSC ran at ${savedKhz} kHz; here it runs at ${hereKhz} kHz and KVM cannot scale it (${(e as Error).message})`);
  }
}

/**
 * KVM_GET_MSRS and KVM_SET_MSRS stop at the first MSR they refuse (one KVM
 * lists but this vCPU's CPUID does not have): go on past it with the rest.
 * `batch` returns what it did; the results of all batches are returned.
 */
function everyMsr<I, O>(items: I[], batch: (items: I[]) => O[]): O[] {
  const done: O[] = [];
  for (let rest = items; rest.length > 0; ) {
    const out = batch(rest);
    done.push(...out);
    rest = rest.slice(out.length + 1);
  }
  return done;
}
