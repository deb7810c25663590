/**
 * What the figures were measured on: which KVM module serves /dev/kvm, the
 * CPU, and how busy the host was.
 */
import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';

// kvm_pvm runs guests without VMX/SVM: CPL0 code in the kernel's emulator.
const BACKENDS = ['kvm_intel', 'kvm_amd', 'kvm_pvm'];

export interface HostInfo {
  /** The loaded KVM backend module, e.g. kvm_intel or kvm_pvm. */
  backend: string;
  cpuModel: string;
  cpuCount: number;
  /** The 1-minute load average when the benchmark began: other work on the host skews the figures. */
  loadAverage: number;
}

export function hostInfo(): HostInfo {
  const loaded = BACKENDS.filter((m) => existsSync(`/sys/module/${m}`));
  return {
    backend: loaded.join('+') || (existsSync('/sys/module/kvm') ? 'kvm' : 'unknown'),
    cpuModel: cpuModel(),
    cpuCount: cpus().length,
    loadAverage: loadavg()[0],
  };
}

function cpuModel(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'));
    if (line) return line.split(':')[1].trim();
  } catch {
    // fall back to what Node reports
  }
  return cpus()[0]?.model ?? 'unknown';
}
