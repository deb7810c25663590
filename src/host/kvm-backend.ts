/**
 * Which KVM backend serves /dev/kvm, told by the vendor module in
 * /sys/module, and what that means for the guests tsvmm runs.
 */
import type { CpuInfo } from './cpu-info.js';
import type { HostProbe } from './host-probe.js';

export const SYS_MODULE = '/sys/module';

/** 'none': a vendor module is loaded but serves no /dev/kvm (it declined to bind). */
export type BackendKind = 'hardware' | 'software' | 'unknown' | 'none';

export interface KvmBackend {
  /** The vendor module ('kvm_intel', 'kvm_amd', 'kvm_pvm', ...), 'kvm' when only the core is loaded, null when there is no KVM module. */
  module: string | null;
  kind: BackendKind;
  /** Hardware backends: this KVM itself runs inside another hypervisor (the CPU's 'hypervisor' flag). */
  nested?: boolean;
  /** Hardware backends, when the module's `nested` parameter is readable: whether this KVM lets its guests use VT-x/AMD-V themselves. */
  offersNested?: boolean;
  /** What the backend means for guests, in plain words. */
  description: string;
}

const hardwareBackends: Record<string, string> = {
  kvm_intel: 'Intel VT-x',
  kvm_amd: 'AMD-V (SVM)',
};

const softwareBackends: Record<string, string> = {
  kvm_pvm:
    'PVM (kvm_pvm), a software backend: KVM here does not use VT-x/AMD-V. Guest code at CPL3 ' +
    '(user mode of a 64-bit paged guest) runs natively, but guest code at CPL0 (real mode, protected mode, ' +
    'the kernel ring of long mode) is run by the host kernel\'s instruction emulator: it is more than a thousand ' +
    'times slower than native, instructions the emulator lacks come back as KVM_EXIT_INTERNAL_ERROR (tsvmm\'s ' +
    'emulation assist completes them), CPUID at CPL0 may return the host\'s values instead of those set with ' +
    'KVM_SET_CPUID2, and a SYSCALL from guest ring 3 reaches the guest kernel still in ring 3, so a Linux kernel ' +
    'boots but its user space cannot run.',
};

/**
 * A loaded vendor module registers the misc device "kvm" (/proc/misc lists
 * it) unless it declined to; false only when /proc/misc says so.
 */
function kvmRegistered(host: HostProbe): boolean {
  const misc = host.readText('/proc/misc');
  return misc === undefined || /^\s*\d+ kvm$/m.test(misc);
}

/** The module loaded but did not bind: its own words from the kernel log, and what follows. */
function unboundBackend(host: HostProbe, module: string): KvmBackend {
  const tag = module.replaceAll('_', '-');
  const said = host
    .kernelLog()
    .split('\n')
    .filter((line) => line.includes(`${tag}:`) || line.includes(`${module}:`))
    .at(-1)
    ?.trim();
  const sentences = [`${module} is loaded but serves no /dev/kvm (/proc/misc has no kvm entry)${said ? `; the kernel log says: "${said}"` : ''}.`];
  if (said && /itself a kvm-pvm guest/.test(said)) {
    sentences.push(
      'This host\'s kernel is itself a guest of a PVM hypervisor, and PVM does not nest: there is no KVM of any kind here, and no setting inside this machine changes that. ' +
        'Run tsvmm where /dev/kvm exists (a host with VT-x or AMD-V, or a VM whose hypervisor offers nested virtualization); ' +
        'tsvmm\'s own end-to-end tests run in the test rig (QEMU\'s emulated AMD-V) on such a host.',
    );
  }
  return { module, kind: 'none', description: sentences.join(' ') };
}

export function detectBackend(host: HostProbe, cpu: CpuInfo): KvmBackend {
  const modules = host.listDir(SYS_MODULE);
  const hardware = Object.keys(hardwareBackends).find((m) => modules.includes(m));
  const software = Object.keys(softwareBackends).find((m) => modules.includes(m));
  const vendor = hardware ?? software;
  if (vendor !== undefined && !kvmRegistered(host)) return unboundBackend(host, vendor);
  if (hardware) return hardwareBackend(host, hardware, cpu);
  if (software) return { module: software, kind: 'software', description: softwareBackends[software] };
  const other = modules.find((m) => m.startsWith('kvm_'));
  if (other) {
    return { module: other, kind: 'unknown', description: `${other} is a KVM module tsvmm does not know: it cannot say how guests run on it.` };
  }
  if (modules.includes('kvm')) {
    return { module: 'kvm', kind: 'unknown', description: 'The KVM core is loaded but no vendor module (kvm_intel, kvm_amd, ...) is.' };
  }
  return { module: null, kind: 'unknown', description: `No KVM module in ${SYS_MODULE}.` };
}

function hardwareBackend(host: HostProbe, module: string, cpu: CpuInfo): KvmBackend {
  const sentences = [`${hardwareBackends[module]} (${module}), a hardware backend: guest code runs natively on the CPU in every mode; only VM exits (port I/O, MMIO, HLT, ...) enter KVM.`];
  if (cpu.hypervisor) {
    sentences.push(
      'This host is itself a virtual machine (the CPU reports the hypervisor flag), so this is nested virtualization: ' +
        'guests still run natively, but every VM exit also passes through the outer hypervisor and costs more.',
    );
  }
  const offersNested = nestedParameter(host.readText(`${SYS_MODULE}/${module}/parameters/nested`));
  if (offersNested !== undefined) {
    sentences.push(
      offersNested
        ? `${module} offers nested virtualization: its guests may run hypervisors of their own.`
        : `${module} does not offer nested virtualization (parameter nested is off).`,
    );
  }
  return { module, kind: 'hardware', nested: cpu.hypervisor, ...(offersNested === undefined ? {} : { offersNested }), description: sentences.join(' ') };
}

/** kvm_intel says Y/N, kvm_amd says 1/0. */
function nestedParameter(text: string | undefined): boolean | undefined {
  const value = text?.trim();
  if (!value) return undefined;
  return value === 'Y' || value === 'y' || value === '1';
}
