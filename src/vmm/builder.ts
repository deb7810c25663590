/**
 * The recipe of a machine: open KVM, make the VM and its memory, add the
 * platform, load the guest, make and set up the vCPUs.
 */
import { GDT_BASE, PAGE_TABLES_BASE, RING0_STACK_TOP, TSS_BASE } from '../arch/x86/boot-area.js';
import { startState, type StartState } from '../arch/x86/cpu-modes.js';
import { vcpuCpuid } from '../arch/x86/cpuid.js';
import { GDT_SIZE, TSS_SIZE, writeGdt } from '../arch/x86/gdt.js';
import { bootMsrs } from '../arch/x86/msrs.js';
import { buildIdentityPageTables, identityPageTablesSize } from '../arch/x86/page-tables.js';
import { loadMultiboot } from '../boot/multiboot.js';
import { loadRaw, type Reserved } from '../boot/raw.js';
import { machineDevice } from '../devices/registry.js';
import { hostBackend } from '../host/backend-kind.js';
import { Kvm } from '../kvm/system.js';
import { MP_STATE_RUNNABLE, VcpuFd } from '../kvm/vcpu.js';
import type { VmFd } from '../kvm/vm.js';
import { MMIO_HOLE_END, planRam } from '../memory/layout.js';
import { createMemfd, mapGuestMemory, type MappedGuestMemory } from '../memory/mapping.js';
import { VcpuThread } from '../vcpu/vcpu-thread.js';
import { defaultDevices, MAX_CPUS, type BootSource, type MachineConfig } from './config.js';
import { Machine } from './machine.js';

// Intel VMX needs three pages for a real-mode TSS and one for an identity map, outside RAM.
const KVM_TSS_ADDR = 0xfffbd000;
const KVM_IDENTITY_MAP_ADDR = 0xfffbc000;

const FPU_DEFAULT_FCW = 0x37f;
const MXCSR_DEFAULT = 0x1f80;

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export function buildMachine(config: MachineConfig): Machine {
  validate(config);
  const machine = new Machine(Kvm.open());
  try {
    const { kvm } = machine;
    kvm.requireCapabilities();
    const vm = (machine.vm = kvm.createVm());
    addPlatform(vm);

    const ram = planRam(config.memory);
    machine.memfd = createMemfd(ram);
    const memory = (machine.memory = mapGuestMemory(machine.memfd, ram));
    ram.forEach((range, slot) => vm.setUserMemoryRegion(slot, range.gpa, range.size, memory.hostAddress(range)));

    const boot = loadGuest(config.boot, memory);
    // The RTC's CMOS reports the memory size, as a PC's does.
    machine.devices = (config.devices ?? defaultDevices).map((d) => machineDevice(d.kind === 'rtc' ? { ramBytes: config.memory, ...d } : d));
    machine.console = config.console ?? (() => {});
    machine.timeExits = config.timeExits ?? false;
    machine.traceFd = config.traceFd ?? -1;
    machine.emulationAssist = config.emulationAssist ?? hostBackend().kind === 'software';

    const cpuid = kvm.supportedCpuid();
    for (let id = 0; id < config.cpus; id++) {
      const fd = new VcpuFd(vm.createVcpu(id), vm.vcpuMmapSize);
      const vcpuid = vcpuCpuid(cpuid, { apicId: id, cpus: config.cpus });
      machine.vcpus.push({ fd, thread: new VcpuThread(id, fd.run()), cpuid: vcpuid });
      fd.setCpuid(vcpuid);
      fd.setMsrs(bootMsrs());
      // The boot vCPU starts at the entry point. The others do too for raw
      // images (each finds its role by APIC id); a kernel starts them itself with INIT/SIPI.
      if (id === 0 || boot.allCpusStart) {
        const { sregs, regs } = startState(fd.getSregs(), boot.state);
        fd.setSregs(sregs);
        fd.setRegs(regs);
        fd.setFpu({ ...fd.getFpu(), fcw: FPU_DEFAULT_FCW, mxcsr: MXCSR_DEFAULT });
        if (id > 0) fd.setMpState(MP_STATE_RUNNABLE);
      }
    }
    return machine;
  } catch (e) {
    void machine.destroy();
    throw e;
  }
}

function validate(config: MachineConfig): void {
  if (!Number.isInteger(config.cpus) || config.cpus < 1 || config.cpus > MAX_CPUS) {
    throw new ConfigError(`cpus must be an integer from 1 to ${MAX_CPUS}, got ${config.cpus}`);
  }
}

/** The in-kernel interrupt controllers (PIC, IOAPIC, a local APIC per vCPU) and PIT. */
function addPlatform(vm: VmFd): void {
  vm.setTssAddr(KVM_TSS_ADDR);
  vm.setIdentityMapAddr(KVM_IDENTITY_MAP_ADDR);
  vm.createIrqchip();
  vm.createPit2();
}

interface LoadedGuest {
  state: StartState;
  allCpusStart: boolean;
}

function loadGuest(boot: BootSource, memory: MappedGuestMemory): LoadedGuest {
  const gdt = { gdtBase: GDT_BASE, gdtLimit: GDT_SIZE - 1, tssBase: TSS_BASE };
  const writeDescriptors = () => writeGdt(memory, GDT_BASE, TSS_BASE, RING0_STACK_TOP);

  if (boot.kind === 'multiboot') {
    writeDescriptors();
    const mb = loadMultiboot(boot.image, memory, {
      cmdline: boot.cmdline ?? '',
      modules: boot.modules ?? [],
      ram: memory.ram,
    });
    return {
      state: { mode: 'protected', entry: mb.entry, ...gdt, regs: { rax: BigInt(mb.eax), rbx: BigInt(mb.ebx) } },
      allCpusStart: false,
    };
  }

  const reserved: Reserved[] = [];
  let pageTables: number | undefined;
  if (boot.mode !== 'real') {
    writeDescriptors();
    reserved.push({ start: GDT_BASE, end: TSS_BASE + TSS_SIZE, what: 'the GDT and TSS' });
    reserved.push({ start: TSS_BASE + TSS_SIZE, end: RING0_STACK_TOP, what: 'the ring-0 stack' });
  }
  if (boot.mode === 'long') {
    const top = Math.max(MMIO_HOLE_END, ...memory.regions.map((r) => r.gpa + r.bytes.length));
    const tables = buildIdentityPageTables(memory, { base: PAGE_TABLES_BASE, mapUpTo: top, user: boot.user });
    pageTables = tables.cr3;
    reserved.push({ start: PAGE_TABLES_BASE, end: PAGE_TABLES_BASE + identityPageTablesSize(top), what: 'the page tables' });
  }
  loadRaw(boot.image, memory, boot.loadAddr, reserved);
  const entry = boot.entry ?? boot.loadAddr;
  return {
    state: { mode: boot.mode, entry, ...gdt, pageTables, user: boot.user, stack: boot.mode === 'real' ? undefined : boot.loadAddr },
    allCpusStart: true,
  };
}
