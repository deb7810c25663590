/**
 * CPU features by the names QEMU's `-cpu MODEL,+feature,-feature` uses,
 * each one CPUID bit, turned on or off in what a guest sees. A feature is
 * turned on only where the host's KVM offers it: a guest told it has an
 * instruction the CPU cannot run would fault far from the cause.
 */
import type { CpuidEntry } from '../../kvm/structs.js';

type Register = 'eax' | 'ebx' | 'ecx' | 'edx';

interface FeatureBit {
  leaf: number;
  subleaf: number;
  register: Register;
  bit: number;
}

const leaf = (l: number, register: Register, names: Record<string, number>, subleaf = 0): [string, FeatureBit][] =>
  Object.entries(names).map(([name, bit]) => [name, { leaf: l, subleaf, register, bit }]);

const FEATURES = new Map<string, FeatureBit>([
  ...leaf(0x1, 'ecx', {
    pni: 0, sse3: 0, pclmulqdq: 1, monitor: 3, vmx: 5, ssse3: 9, fma: 12, cx16: 13, pcid: 17, 'sse4.1': 19, sse4_1: 19,
    'sse4.2': 20, sse4_2: 20, x2apic: 21, movbe: 22, popcnt: 23, 'tsc-deadline': 24, aes: 25, xsave: 26, avx: 28, f16c: 29,
    rdrand: 30, hypervisor: 31,
  }),
  ...leaf(0x1, 'edx', {
    fpu: 0, vme: 1, de: 2, pse: 3, tsc: 4, msr: 5, pae: 6, mce: 7, cx8: 8, apic: 9, sep: 11, mtrr: 12, pge: 13, mca: 14,
    cmov: 15, pat: 16, pse36: 17, clflush: 19, mmx: 23, fxsr: 24, sse: 25, sse2: 26, ht: 28,
  }),
  ...leaf(0x7, 'ebx', {
    fsgsbase: 0, bmi1: 3, hle: 4, avx2: 5, smep: 7, bmi2: 8, erms: 9, invpcid: 10, rtm: 11, avx512f: 16, rdseed: 18,
    adx: 19, smap: 20, clflushopt: 23, 'sha-ni': 29,
  }),
  ...leaf(0x7, 'ecx', { umip: 2, pku: 3, vaes: 9, rdpid: 22 }),
  ...leaf(0x80000001, 'ecx', { 'lahf-lm': 0, lahf_lm: 0, svm: 2, abm: 5, sse4a: 6, '3dnowprefetch': 8 }),
  ...leaf(0x80000001, 'edx', { syscall: 11, nx: 20, pdpe1gb: 26, rdtscp: 27, lm: 29 }),
]);

export class CpuFeatureError extends Error {}

/** Checks a feature name, saying which names there are when it is not one. */
export function checkCpuFeature(name: string): void {
  if (!FEATURES.has(name)) {
    throw new CpuFeatureError(`unknown CPU feature '${name}' (known: ${[...new Set(FEATURES.keys())].sort().join(' ')})`);
  }
}

/** Applies `features` (name: on or off) to a CPUID table; `supported` is the host KVM's own. */
export function applyCpuFeatures(entries: CpuidEntry[], supported: readonly CpuidEntry[], features: Readonly<Record<string, boolean>>): CpuidEntry[] {
  const out = entries.map((e) => ({ ...e, padding: [...e.padding] }));
  for (const [name, on] of Object.entries(features)) {
    checkCpuFeature(name);
    const f = FEATURES.get(name)!;
    const find = (list: readonly CpuidEntry[]) => list.find((e) => e.function === f.leaf && (f.leaf !== 0x7 || e.index === f.subleaf));
    const mask = (1 << f.bit) >>> 0;
    const offered = find(supported);
    if (on && (offered === undefined || (offered[f.register] & mask) === 0)) {
      throw new CpuFeatureError(`CPU feature '${name}' is not available from this host's KVM`);
    }
    const entry = find(out);
    if (entry === undefined) continue; // off, and the leaf is not there at all
    entry[f.register] = on ? (entry[f.register] | mask) >>> 0 : (entry[f.register] & ~mask) >>> 0;
  }
  return out;
}
