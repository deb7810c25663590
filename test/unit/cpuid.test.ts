import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyCpuTemplate } from '../../src/arch/x86/cpu-template.js';
import { vcpuCpuid } from '../../src/arch/x86/cpuid.js';
import type { CpuidEntry } from '../../src/kvm/structs.js';

const entry = (fn: number, index: number, regs: Partial<CpuidEntry> = {}): CpuidEntry => ({
  function: fn, index, flags: fn === 0xb || fn === 0xd ? 1 : 0, eax: 0, ebx: 0, ecx: 0, edx: 0, padding: [0, 0, 0], ...regs,
});

const host: CpuidEntry[] = [
  entry(0, 0, { eax: 0xd, ebx: 0x756e6547 }),
  entry(1, 0, { eax: 0x906a7, ebx: 0x00100800, ecx: 0xfffa3203, edx: 0x1f8bfbff }),
  entry(7, 0, { ebx: 0xffffffff, ecx: 0xffffffff }),
  entry(0xb, 0), entry(0xb, 1),
  entry(0xd, 0, { eax: 7 }),
  entry(0x80000001, 0, { ecx: 0xffffffff, edx: 0xffffffff }),
];

test('each vCPU gets its APIC id, the CPU count and the hypervisor bit', () => {
  const leaves = vcpuCpuid(host, { apicId: 3, cpus: 4 });
  const l1 = leaves.find((e) => e.function === 1)!;
  assert.equal(l1.ebx >>> 24, 3);
  assert.equal((l1.ebx >>> 16) & 0xff, 4);
  assert.equal(l1.ecx >>> 31, 1);
  assert.equal((l1.edx >>> 28) & 1, 1, 'HTT: more than one logical CPU');
  const topo = leaves.filter((e) => e.function === 0xb);
  assert.deepEqual(topo.map((e) => e.edx), [3, 3], 'x2APIC id in every level');
  assert.equal(topo[1].ebx, 4, 'four cores at the core level');
  assert.equal(host[1].ebx, 0x00100800, 'the host table is not changed');
});

test('the minimal template masks features down to the baseline', () => {
  const masked = applyCpuTemplate(host, 'minimal');
  const l1 = masked.find((e) => e.function === 1)!;
  assert.equal(l1.ecx & (1 << 28), 0, 'no AVX');
  assert.equal(l1.ecx & (1 << 26), 0, 'no XSAVE');
  assert.notEqual(l1.ecx & (1 << 23), 0, 'POPCNT stays');
  assert.notEqual(l1.ecx & (1 << 13), 0, 'CMPXCHG16B stays');
  assert.deepEqual([masked.find((e) => e.function === 7)!.ebx, masked.find((e) => e.function === 7)!.ecx], [0, 0]);
  assert.equal(masked.some((e) => e.function === 0xd), false, 'no XSAVE leaf');
  assert.equal(masked.find((e) => e.function === 0x80000001)!.edx & (1 << 29), 1 << 29, 'long mode stays');
  assert.equal(applyCpuTemplate(host, 'host'), host, 'host passes everything on');
});
