/**
 * CPU templates: what a guest may see of the host CPU. `host` passes on all
 * KVM supports; `minimal` masks the CPUID feature bits down to an
 * x86-64-v2 baseline (SSE4.2, POPCNT, CMPXCHG16B) that any x86-64 host of
 * the last decade has, so a guest behaves the same wherever it runs.
 */
import type { CpuidEntry } from '../../kvm/structs.js';

export type CpuTemplate = 'host' | 'minimal';
export const cpuTemplates: readonly CpuTemplate[] = ['host', 'minimal'];

const bits = (...n: number[]) => n.reduce((m, b) => (m | (1 << b)) >>> 0, 0);

// Leaf 1 ECX: SSE3, PCLMULQDQ, SSSE3, CX16, SSE4.1, SSE4.2, x2APIC, POPCNT, TSC-deadline, hypervisor.
const LEAF1_ECX = bits(0, 1, 9, 13, 19, 20, 21, 23, 24, 31);
// Leaf 1 EDX: FPU through SSE2, without the HTT bit (set from the topology).
const LEAF1_EDX = bits(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 19, 23, 24, 25, 26);
// Leaf 0x80000001 ECX: LAHF/SAHF, ABM (LZCNT); EDX: SYSCALL, NX, 1 GiB pages, RDTSCP, LM.
const EXT1_ECX = bits(0, 5);
const EXT1_EDX = bits(11, 20, 26, 27, 29);

function mask(e: CpuidEntry, m: Partial<Record<'eax' | 'ebx' | 'ecx' | 'edx', number>>): CpuidEntry {
  const out = { ...e, padding: [...e.padding] };
  for (const [reg, keep] of Object.entries(m) as ['eax' | 'ebx' | 'ecx' | 'edx', number][]) out[reg] = (out[reg] & keep) >>> 0;
  return out;
}

export function applyCpuTemplate(entries: CpuidEntry[], template: CpuTemplate): CpuidEntry[] {
  if (template === 'host') return entries;
  return entries
    .filter((e) => e.function !== 0xd) // no XSAVE: the baseline has no AVX state to save
    .map((e) => {
      switch (e.function) {
        case 0x1: return mask(e, { ecx: LEAF1_ECX, edx: LEAF1_EDX | bits(28) });
        case 0x7: return mask(e, { eax: 0, ebx: 0, ecx: 0, edx: 0 });
        case 0x80000001: return mask(e, { ecx: EXT1_ECX, edx: EXT1_EDX });
        default: return e;
      }
    });
}
