import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyCpuFeatures, checkCpuFeature, CpuFeatureError } from '../../src/arch/x86/cpu-features.js';
import type { CpuidEntry } from '../../src/kvm/structs.js';

const entry = (fn: number, index: number, regs: Partial<Record<'eax' | 'ebx' | 'ecx' | 'edx', number>>): CpuidEntry =>
  ({ function: fn, index, flags: 0, eax: 0, ebx: 0, ecx: 0, edx: 0, padding: [0, 0, 0], ...regs });

// What a host's KVM offers: leaf 1 with x2apic (ECX 21) and avx (ECX 28), leaf 7 with avx2 (EBX 5), no vmx (ECX 5).
const supported = [entry(1, 0, { ecx: (1 << 21) | (1 << 28), edx: 1 << 26 }), entry(7, 0, { ebx: 1 << 5 }), entry(0x80000001, 0, { edx: 1 << 26 })];

test('features by QEMU\'s names turn their CPUID bit on or off, leaving the rest', () => {
  const guest = [entry(1, 0, { ecx: 1 << 28, edx: 1 << 26 }), entry(7, 0, { ebx: 1 << 5 }), entry(0x80000001, 0, { edx: 1 << 26 })];
  const out = applyCpuFeatures(guest, supported, { x2apic: true, avx: false, avx2: false, pdpe1gb: false });
  assert.equal(out[0].ecx, 1 << 21, 'x2apic on, avx off');
  assert.equal(out[0].edx, 1 << 26, 'sse2 untouched');
  assert.equal(out[1].ebx, 0, 'avx2 off (leaf 7)');
  assert.equal(out[2].edx, 0, 'pdpe1gb off');
  assert.equal(guest[0].ecx, 1 << 28, 'the input table is not changed');
});

test('a feature the host\'s KVM does not offer is refused; an unknown name lists the known ones', () => {
  assert.throws(() => applyCpuFeatures(supported, supported, { vmx: true }), (e: unknown) => e instanceof CpuFeatureError && /'vmx' is not available from this host's KVM/.test(e.message));
  assert.doesNotThrow(() => applyCpuFeatures(supported, supported, { vmx: false }), 'turning off what is not there is fine');
  assert.throws(() => checkCpuFeature('warp'), /unknown CPU feature 'warp' \(known: .*x2apic/);
  assert.doesNotThrow(() => checkCpuFeature('sse4.2'));
});
