/**
 * `tsvmm check` as data: the CPU, /dev/kvm, its capabilities and backend,
 * and the problems a person has to fix before (or know about when)
 * running guests. The host is injected so tests can describe any machine.
 */
import { requiredCaps, type CapName } from '../kvm/capabilities.js';
import { parseCpuInfo, type CpuInfo } from './cpu-info.js';
import type { HostProbe, KvmFacts } from './host-probe.js';
import { detectBackend, type KvmBackend } from './kvm-backend.js';
import { inspectIoDevices, type IoDeviceStatus } from './io-devices.js';
import { inspectDevice, KVM_DEVICE, type KvmDevice } from './kvm-device.js';

export interface KvmStatus extends Omit<KvmDevice, 'problem'> {
  device: string;
  /** Null when the device could not be opened. */
  apiVersion: number | null;
  /** Every capability tsvmm knows, with KVM_CHECK_EXTENSION's answer (0 = absent); empty when not opened. */
  capabilities: Partial<Record<CapName, number>>;
  /** Capabilities tsvmm needs that this KVM lacks. */
  missing: CapName[];
  /** KVM_CAP_NR_VCPUS (recommended) and KVM_CAP_MAX_VCPUS (hard limit). */
  maxVcpus: { recommended: number; max: number } | null;
  /** Why opening the device failed, when it did. */
  error: string | null;
}

export interface HostReport {
  cpu: CpuInfo;
  kvm: KvmStatus;
  backend: KvmBackend;
  /** /dev/net/tun and the vhost devices, which --net and --vsock use. */
  ioDevices: IoDeviceStatus[];
  /** Sentences, each saying what is wrong (or limited) and what to do; empty when all is fine. */
  problems: string[];
  /** tsvmm can create and run VMs here. */
  usable: boolean;
  /** One line summing it up. */
  verdict: string;
}

export function checkHost(host: HostProbe): HostReport {
  const cpu = parseCpuInfo(host.readText('/proc/cpuinfo'));
  const backend = detectBackend(host, cpu);
  const device = inspectDevice(host, cpu, backend);
  const problems = device.problem ? [device.problem] : [];

  let facts: KvmFacts | undefined;
  let error: string | null = null;
  if (device.accessible) {
    try {
      facts = host.probeKvm(KVM_DEVICE);
    } catch (e) {
      error = e instanceof Error ? e.message : String(e);
      problems.push(`KVM could not be opened: ${error}`);
    }
  }
  const missing = facts ? missingCapabilities(facts) : [];
  if (missing.length > 0) {
    problems.push(`KVM lacks capabilities tsvmm needs: ${missing.map((name) => `${name} (${requiredCaps[name]})`).join(', ')}.`);
  }
  problems.push(...backendProblems(backend));

  const kvm: KvmStatus = {
    available: device.available,
    device: KVM_DEVICE,
    accessible: device.accessible,
    group: device.group,
    mode: device.mode,
    apiVersion: facts?.apiVersion ?? null,
    capabilities: facts?.capabilities ?? {},
    missing,
    maxVcpus: facts ? maxVcpus(facts) : null,
    error,
  };
  const usable = facts !== undefined && missing.length === 0;
  return { cpu, kvm, backend, ioDevices: inspectIoDevices(host), problems, usable, verdict: verdict(kvm, backend, usable) };
}

function missingCapabilities(facts: KvmFacts): CapName[] {
  return (Object.keys(requiredCaps) as CapName[]).filter((name) => !facts.capabilities[name]);
}

/** Per the KVM API: no NR_VCPUS means 4; no MAX_VCPUS means the recommended number is also the limit. */
function maxVcpus(facts: KvmFacts): { recommended: number; max: number } {
  const recommended = facts.capabilities.NR_VCPUS || 4;
  return { recommended, max: facts.capabilities.MAX_VCPUS || recommended };
}

function backendProblems(backend: KvmBackend): string[] {
  if (backend.kind === 'software') {
    return [
      `KVM is a software backend (${backend.module}): a Linux kernel boots, slowly, with tsvmm's emulation assist ` +
        'completing the instructions the host\'s emulator lacks (fninit, int3, cmpxchg16b, xrstor...), but its user space ' +
        'cannot run: a SYSCALL from guest ring 3 reaches the guest kernel still in ring 3, so init dies on its first ' +
        'system call. Bare-metal guests work, slowly while at CPL0. For Linux guests, use a host with hardware KVM.',
    ];
  }
  if (backend.kind === 'unknown' && backend.module !== null) {
    return [`KVM backend unknown (${backend.module}): tsvmm cannot say how guests will run.`];
  }
  return [];
}

function verdict(kvm: KvmStatus, backend: KvmBackend, usable: boolean): string {
  if (backend.kind === 'none') return `KVM is not usable: ${backend.module} is loaded but did not bind, so there is no ${KVM_DEVICE}.`;
  if (!kvm.available) return `KVM is not usable: ${KVM_DEVICE} does not exist.`;
  if (!kvm.accessible) return `KVM is not usable: no permission on ${KVM_DEVICE}.`;
  if (kvm.error) return `KVM is not usable: ${KVM_DEVICE} could not be opened.`;
  if (!usable) return 'KVM is not usable: it lacks capabilities tsvmm needs.';
  if (backend.kind === 'hardware') {
    return `KVM is usable: hardware virtualization (${backend.module})${backend.nested ? ', nested inside another hypervisor' : ''}.`;
  }
  if (backend.kind === 'software') {
    return `KVM is usable, with a software backend (${backend.module}): bare-metal guests only, CPL0 code is emulated.`;
  }
  return `KVM is usable (backend ${backend.module ?? 'not identified'}).`;
}
