/**
 * The host CPU as /proc/cpuinfo describes it: who made it, and the flags
 * that decide how KVM can run guests.
 */
export interface CpuInfo {
  /** 'GenuineIntel', 'AuthenticAMD', ... or 'unknown'. */
  vendor: string;
  model: string;
  /** Intel VT-x. */
  vmx: boolean;
  /** AMD-V. */
  svm: boolean;
  /** The CPU says it runs under a hypervisor: this host is itself a virtual machine. */
  hypervisor: boolean;
}

/** Reads the first processor's block; every processor of a host reports the same vendor and flags. */
export function parseCpuInfo(text: string | undefined): CpuInfo {
  const fields = new Map<string, string>();
  for (const line of (text ?? '').split('\n')) {
    if (line.trim() === '') {
      if (fields.size > 0) break;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  const flags = new Set((fields.get('flags') ?? '').split(/\s+/));
  return {
    vendor: fields.get('vendor_id') || 'unknown',
    model: fields.get('model name') || 'unknown',
    vmx: flags.has('vmx'),
    svm: flags.has('svm'),
    hypervisor: flags.has('hypervisor'),
  };
}
