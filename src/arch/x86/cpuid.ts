/**
 * The CPUID a vCPU sees: what KVM supports, with this vCPU's APIC id and
 * the machine's topology written in, and the hypervisor bit set.
 */
import type { CpuidEntry } from '../../kvm/structs.js';

const LEAF_FEATURES = 0x1;
const LEAF_CACHE_PARAMS = 0x4;
const LEAF_EXT_TOPOLOGY = 0xb;
const LEAF_V2_EXT_TOPOLOGY = 0x1f;
const ECX_HYPERVISOR = 1 << 31;
const EDX_HTT = 1 << 28;

export interface CpuTopology {
  apicId: number;
  cpus: number;
}

export function vcpuCpuid(supported: CpuidEntry[], topo: CpuTopology): CpuidEntry[] {
  return supported.map((src) => {
    const e = { ...src, padding: [...src.padding] };
    switch (e.function) {
      case LEAF_FEATURES:
        // EBX[31:24] initial APIC id, EBX[23:16] logical processors per package.
        e.ebx = ((e.ebx & 0x0000ffff) | ((topo.cpus & 0xff) << 16) | ((topo.apicId & 0xff) << 24)) >>> 0;
        e.ecx = (e.ecx | ECX_HYPERVISOR) >>> 0;
        e.edx = (topo.cpus > 1 ? e.edx | EDX_HTT : e.edx & ~EDX_HTT) >>> 0;
        break;
      case LEAF_CACHE_PARAMS:
        // EAX[31:26]: cores per package - 1; one thread per core.
        if (e.eax !== 0) e.eax = ((e.eax & 0x03ffc3ff) | ((topo.cpus - 1) << 26)) >>> 0;
        break;
      case LEAF_EXT_TOPOLOGY:
      case LEAF_V2_EXT_TOPOLOGY:
        e.edx = topo.apicId;
        // Level 0: SMT, one thread; level 1: core, `cpus` cores.
        if (e.index === 0) {
          e.eax = 0;
          e.ebx = 1;
          e.ecx = (1 << 8) | 0;
        } else if (e.index === 1) {
          e.eax = Math.ceil(Math.log2(Math.max(topo.cpus, 1)));
          e.ebx = topo.cpus;
          e.ecx = (2 << 8) | 1;
        } else {
          e.eax = 0;
          e.ebx = 0;
          e.ecx = e.index;
        }
        break;
    }
    return e;
  });
}
