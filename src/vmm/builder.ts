/**
 * The recipe of a machine: open KVM, make the VM and its memory, add the
 * platform, load the guest, make and set up the vCPUs. A machine restored
 * from a snapshot is made the same way, with its RAM mapped from the
 * snapshot's memory file and nothing loaded: the snapshot's state goes
 * into it before it runs (snapshot/vm-snapshot.ts).
 */
import { applyCpuFeatures } from '../arch/x86/cpu-features.js';
import { applyCpuTemplate } from '../arch/x86/cpu-template.js';
import { vcpuCpuid } from '../arch/x86/cpuid.js';
import { withLegacyLints } from '../arch/x86/lapic.js';
import { bootMsrs } from '../arch/x86/msrs.js';
import { hostBackend } from '../host/backend-kind.js';
import { Kvm } from '../kvm/system.js';
import { MP_STATE_RUNNABLE, VcpuFd } from '../kvm/vcpu.js';
import { KVM_MEM_LOG_DIRTY_PAGES, type VmFd } from '../kvm/vm.js';
import { VcpuThread } from '../vcpu/vcpu-thread.js';
import { startState } from '../arch/x86/cpu-modes.js';
import { KVM_IDENTITY_MAP_ADDR, KVM_TSS_ADDR, planRam, type RamRange } from '../memory/layout.js';
import { buildFwCfgContent, type FwCfgContent, type FwCfgFile } from '../devices/legacy/fw-cfg-content.js';
import { createGuestRam, mapMemoryFile } from '../memory/mapping.js';
import { defaultDevicesFor, type BootSource, type MachineConfig } from './config.js';
import { parseInput } from '../config/firecracker-schema.js';
import { MachineConfigSchema } from '../config/machine-schema.js';
import { ASSISTED_KERNEL_PARAMETERS } from '../arch/x86/emulator/kernel-hints.js';
import { loadGuest } from './guest-loader.js';
import { Machine, type Vcpu } from './machine.js';
import { setUpPci } from './pci-setup.js';


export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface BuildOptions {
  /** RAM from this snapshot memory file (private, read as the guest touches it); no guest is loaded. */
  restoreMemory?: string;
}

export function buildMachine(config: MachineConfig, options: BuildOptions = {}): Machine {
  validate(config);
  // What is made so far, undone in reverse if a later step fails.
  const undo: (() => void)[] = [];
  const made = <T>(part: T, release: (part: T) => void): T => {
    undo.push(() => release(part));
    return part;
  };
  try {
    const kvm = made(Kvm.open(), (k) => k.close());
    kvm.requireCapabilities();
    const vm = made(kvm.createVm(), (v) => v.close());
    addPlatform(vm);

    const ram = planRam(config.memory);
    const { restoreMemory } = options;
    const track = config.trackDirtyPages ?? false;
    const memory = made(restoreMemory === undefined ? createGuestRam(ram, track) : mapMemoryFile(restoreMemory, ram, track), (m) => m.unmap());
    // Slot i is RAM range i: a diff snapshot reads each slot's dirty log.
    ram.forEach((range, slot) => vm.setUserMemoryRegion(slot, range.gpa, range.size, memory.hostAddress(range), track ? KVM_MEM_LOG_DIRTY_PAGES : 0));

    // The RTC's CMOS reports the memory size, as a PC's does; fw_cfg the machine as QEMU's does.
    const specs = (config.devices ?? defaultDevicesFor(config.boot)).map((d) =>
      d.kind === 'rtc' ? { ramBytes: config.memory, ...d } : d.kind === 'fw-cfg' ? { ...d, content: fwCfgContent(config, ram, d.files) } : d,
    );
    const pci = made(setUpPci(vm, specs), (p) => p.close());
    const emulationAssist = config.emulationAssist ?? hostBackend().kind === 'software';
    const boot = restoreMemory === undefined ? loadGuest(withAssistHints(config.boot, emulationAssist), memory, config.cpus, pci.devices.map((d) => d.spec)) : undefined;

    const supported = kvm.supportedCpuid();
    const cpuid = applyCpuFeatures(applyCpuTemplate(supported, config.cpuTemplate ?? 'host'), supported, config.cpuFeatures ?? {});
    const vcpus: Vcpu[] = [];
    for (let id = 0; id < config.cpus; id++) {
      const fd = made(new VcpuFd(vm.createVcpu(id), vm.vcpuMmapSize), (f) => f.close());
      const vcpuid = vcpuCpuid(cpuid, { apicId: id, cpus: config.cpus });
      vcpus.push({ fd, thread: new VcpuThread(id, fd.run()), cpuid: vcpuid });
      fd.setCpuid(vcpuid);
      fd.setMsrs(bootMsrs());
      fd.setLapic(withLegacyLints(fd.getLapic()));
      // The boot vCPU starts at the entry point. The others do too for raw
      // images (each finds its role by APIC id); a kernel starts them itself with INIT/SIPI.
      if (boot !== undefined && (id === 0 || boot.allCpusStart)) {
        const { sregs, regs } = startState(fd.getSregs(), boot.state);
        fd.setSregs(sregs);
        fd.setRegs(regs);
        if (id > 0) fd.setMpState(MP_STATE_RUNNABLE);
      }
    }
    const machine = new Machine({
      kvm, vm, memory, vcpus, devices: pci.devices, pci, description: boot?.description ?? `restored from '${restoreMemory}'`, restored: restoreMemory !== undefined,
      console: config.console ?? (() => {}), timeExits: config.timeExits ?? false, traceFd: config.traceFd ?? -1, emulationAssist,
    });
    undo.length = 0; // the machine owns every part now
    try {
      machine.spawnVcpuThreads();
    } catch (e) {
      void machine.destroy();
      throw e;
    }
    return machine;
  } catch (e) {
    for (const release of undo.reverse()) {
      try {
        release();
      } catch {
        // releasing the rest matters more than why one part would not close
      }
    }
    throw e;
  }
}

/** What fw_cfg tells the guest: CPUs, RAM and its map, and for a kernel its command line (and a Linux kernel's files). */
function fwCfgContent(config: MachineConfig, ram: RamRange[], files: FwCfgFile[] | undefined): FwCfgContent {
  const { boot } = config;
  return buildFwCfgContent({
    cpus: config.cpus, ramBytes: config.memory, ram, files,
    cmdline: boot.kind === 'raw' ? undefined : boot.cmdline ?? '',
    kernel: boot.kind === 'linux' ? boot.kernel : undefined,
    initrd: boot.kind === 'linux' ? boot.initrd : undefined,
  });
}

/** A Linux kernel on a backend that needs the assist is told to keep off what the assist cannot do. */
function withAssistHints(boot: BootSource, assist: boolean): BootSource {
  if (!assist || boot.kind !== 'linux') return boot;
  return { ...boot, cmdline: [boot.cmdline, ...ASSISTED_KERNEL_PARAMETERS].filter(Boolean).join(' ') };
}

/** Everything checked before /dev/kvm is opened: the schema's rules, and the files devices name. */
function validate(config: MachineConfig): void {
  try {
    parseInput(MachineConfigSchema, config, 'machine config');
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
}

/** The in-kernel interrupt controllers (PIC, IOAPIC, a local APIC per vCPU) and PIT. */
function addPlatform(vm: VmFd): void {
  vm.setTssAddr(KVM_TSS_ADDR);
  vm.setIdentityMapAddr(KVM_IDENTITY_MAP_ADDR);
  vm.createIrqchip();
  vm.createPit2();
}
