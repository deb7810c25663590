/**
 * A paused VM saved to files and brought back, in this process or another:
 * the configuration it was built from, each vCPU's state as KVM keeps it
 * (registers, special registers, XSAVE area, XCR0, local APIC, pending
 * events, MP state, every MSR KVM lists), the in-kernel PIC, I/O APIC, PIT
 * and kvmclock, each device's shared state, and guest RAM.
 *
 * Restoring builds the same machine from the saved configuration, then
 * puts every piece of state back before a vCPU runs.
 *
 * Not yet: machines with PCI devices (their MSI-X routes and I/O threads
 * are rebuilt from their state, which restore does not do yet), memory
 * mapped lazily from the file, and diff snapshots; see issue 11.
 */
import { closeSync, openSync, readSync, renameSync, writeSync } from 'node:fs';
import { DeviceState } from '../devices/device-state.js';
import type { KvmClockData, KvmPitState2, KvmRegs, KvmSregs, KvmVcpuEvents } from '../kvm/structs.js';
import type { MachineConfig } from '../vmm/config.js';
import type { Machine } from '../vmm/machine.js';
import { TSVMM_VERSION } from '../version.js';
import { readStateFile, SnapshotError, writeStateFile } from './snapshot-file.js';

/** The configuration a snapshot keeps: MachineConfig without what cannot be saved (callbacks, fds). */
export type SavedConfig = Omit<MachineConfig, 'console' | 'traceFd' | 'timeExits'>;

interface VcpuSnapshot {
  regs: KvmRegs;
  sregs: KvmSregs;
  xsave: Uint8Array;
  xcr0: bigint;
  lapic: Uint8Array;
  events: KvmVcpuEvents;
  mpState: number;
  msrs: { index: number; data: bigint }[];
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
}

const IRQCHIPS = [0, 1, 2]; // PIC master, PIC slave, I/O APIC

function refuseUnsupported(config: SavedConfig): void {
  const pci = (config.devices ?? []).find((d) => d.kind.startsWith('virtio-') || d.kind === 'pci-testdev');
  if (pci) throw new SnapshotError(`snapshots of machines with PCI devices (${pci.kind}) are not supported yet`);
}

/** Saves a paused machine: its state to `statePath`, its RAM to `memoryPath`. */
export function snapshotMachine(machine: Machine, config: SavedConfig, statePath: string, memoryPath: string): void {
  if (machine.state !== 'paused') throw new SnapshotError(`a snapshot needs a paused VM; this one is ${machine.state}`);
  refuseUnsupported(config);
  const msrIndices = machine.kvm.msrIndexList();
  const vcpus = machine.vcpus.map(({ fd }): VcpuSnapshot => ({
    regs: fd.getRegs(),
    sregs: fd.getSregs(),
    xsave: fd.getXsave(),
    xcr0: fd.getXcr0(),
    lapic: fd.getLapic(),
    events: fd.getVcpuEvents(),
    mpState: fd.getMpState(),
    msrs: everyMsr(msrIndices, (indices) => fd.getMsrs(indices)),
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
  };
  writeMemoryFile(machine, memoryPath);
  writeStateFile(statePath, snapshot);
}

/** RAM, range after range, written whole or not at all. */
function writeMemoryFile(machine: Machine, path: string): void {
  const temporary = `${path}.tmp-${process.pid}`;
  const fd = openSync(temporary, 'w');
  try {
    for (const region of machine.memory.regions) {
      for (let done = 0; done < region.bytes.length; ) done += writeSync(fd, region.bytes, done, region.bytes.length - done);
    }
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
}

/** A snapshot read and checked, ready to be applied to a machine built from its configuration. */
export interface LoadedSnapshot {
  config: SavedConfig;
  apply(machine: Machine): void;
}

export function loadSnapshot(statePath: string, memoryPath: string): LoadedSnapshot {
  const snapshot = readStateFile(statePath) as VmSnapshot;
  if (snapshot.tsvmmVersion !== TSVMM_VERSION) {
    throw new SnapshotError(`snapshot '${statePath}' was written by tsvmm ${snapshot.tsvmmVersion}; this is tsvmm ${TSVMM_VERSION}`);
  }
  refuseUnsupported(snapshot.config);
  return {
    config: snapshot.config,
    apply: (machine) => applySnapshot(machine, snapshot, statePath, memoryPath),
  };
}

/** Puts the saved state into a machine built from the snapshot's configuration, before it starts. */
function applySnapshot(machine: Machine, snapshot: VmSnapshot, statePath: string, memoryPath: string): void {
  if (machine.state !== 'built') throw new SnapshotError('a snapshot is applied to a machine that has not started');
  if (snapshot.vcpus.length !== machine.vcpus.length || snapshot.devices.length !== machine.devices.length) {
    throw new SnapshotError(`snapshot '${statePath}' does not describe this machine (its vCPUs or devices differ)`);
  }
  readMemoryFile(machine, memoryPath);
  const { vm } = machine;
  IRQCHIPS.forEach((chip, i) => vm.setIrqchip(chip, snapshot.irqchips[i]));
  vm.setPit2(snapshot.pit);
  vm.setClock({ ...snapshot.clock, flags: 0 });
  machine.devices.forEach((d, i) => {
    const saved = snapshot.devices[i];
    if (saved.kind !== d.spec.kind) throw new SnapshotError(`snapshot '${statePath}': device ${i} is a ${saved.kind}, the machine's a ${d.spec.kind}`);
    new DeviceState(d.state).bytes.set(saved.state);
  });
  machine.vcpus.forEach(({ fd }, i) => {
    const v = snapshot.vcpus[i];
    // Order matters to KVM: special registers (modes) and the XCR before the XSAVE area, the LAPIC before events.
    fd.setSregs(v.sregs);
    fd.setXcr0(v.xcr0);
    fd.setXsave(v.xsave);
    fd.setRegs(v.regs);
    everyMsr(v.msrs, (msrs) => msrs.slice(0, fd.setMsrs(msrs)));
    fd.setLapic(v.lapic);
    fd.setMpState(v.mpState);
    fd.setVcpuEvents(v.events);
  });
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

function readMemoryFile(machine: Machine, path: string): void {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SnapshotError(`snapshot memory '${path}': ${code === 'ENOENT' ? 'no such file' : code ?? (e as Error).message}`);
  }
  try {
    for (const region of machine.memory.regions) {
      for (let done = 0; done < region.bytes.length; ) {
        const n = readSync(fd, region.bytes, done, region.bytes.length - done, null);
        if (n === 0) throw new SnapshotError(`snapshot memory '${path}' is shorter than the machine's RAM`);
        done += n;
      }
    }
    if (readSync(fd, new Uint8Array(1), 0, 1, null) !== 0) throw new SnapshotError(`snapshot memory '${path}' is longer than the machine's RAM`);
  } finally {
    closeSync(fd);
  }
}
