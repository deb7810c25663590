/**
 * The /dev/kvm node: is it there, may this user open it, and if not, the
 * command that fixes it.
 */
import type { CpuInfo } from './cpu-info.js';
import type { HostProbe } from './host-probe.js';
import type { KvmBackend } from './kvm-backend.js';

export const KVM_DEVICE = '/dev/kvm';

export interface KvmDevice {
  available: boolean;
  accessible: boolean;
  /** Name of the group owning the device (its number when /etc/group lacks it), null when absent. */
  group: string | null;
  /** Permission bits in octal, e.g. '0660', null when absent. */
  mode: string | null;
  /** What is wrong and how to fix it; undefined when this user can open the device. */
  problem?: string;
}

export function inspectDevice(host: HostProbe, cpu: CpuInfo, backend: KvmBackend): KvmDevice {
  const status = host.stat(KVM_DEVICE);
  if (!status) {
    return { available: false, accessible: false, group: null, mode: null, problem: `${KVM_DEVICE} does not exist: ${missingDeviceFix(cpu, backend)}.` };
  }
  const group = groupName(host, status.gid);
  const mode = status.mode.toString(8).padStart(4, '0');
  const denied = host.readWriteDenied(KVM_DEVICE);
  if (!denied) return { available: true, accessible: true, group, mode };
  return {
    available: true,
    accessible: false,
    group,
    mode,
    problem: `${KVM_DEVICE} is not readable and writable by this user (${denied}; group ${group}, mode ${mode}): ${permissionFix(status.gid, status.mode, group)}.`,
  };
}

function missingDeviceFix(cpu: CpuInfo, backend: KvmBackend): string {
  if (backend.kind === 'none') return `${backend.module} is loaded but did not bind; "KVM backend" above says why and what to do`;
  if (backend.kind !== 'unknown') {
    return `KVM is loaded (${backend.module}), so the device is hidden from this process; in a container, pass it in (e.g. \`docker run --device /dev/kvm\`)`;
  }
  if (cpu.vmx) return 'load KVM with `sudo modprobe kvm_intel`';
  if (cpu.svm) return 'load KVM with `sudo modprobe kvm_amd`';
  return cpu.hypervisor
    ? 'this CPU offers neither VT-x (vmx) nor AMD-V (svm); this host is a virtual machine, so turn on nested virtualization in the outer hypervisor'
    : 'this CPU offers neither VT-x (vmx) nor AMD-V (svm); enable virtualization in the firmware settings';
}

function permissionFix(gid: number, mode: number, group: string): string {
  const join = 'sudo usermod -aG';
  if (gid === 0) {
    // Adding users to root's group would hand out far more than /dev/kvm.
    return `give it a group of its own: \`sudo groupadd -f kvm && sudo chgrp kvm ${KVM_DEVICE} && sudo chmod 660 ${KVM_DEVICE}\`, then \`${join} kvm $USER\` and log in again`;
  }
  const groupMayUse = (mode & 0o060) === 0o060;
  const chmod = groupMayUse ? '' : `\`sudo chmod g+rw ${KVM_DEVICE}\`, then `;
  return `${chmod}join its group: \`${join} ${group} $USER\`, then log in again`;
}

/** /etc/group lines are name:password:gid:members. */
function groupName(host: HostProbe, gid: number): string {
  for (const line of (host.readText('/etc/group') ?? '').split('\n')) {
    const [name, , id] = line.split(':');
    if (name && id === String(gid)) return name;
  }
  return String(gid);
}
