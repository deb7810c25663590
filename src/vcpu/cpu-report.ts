/**
 * Human-readable vCPU state for crash reports: registers, segments,
 * control registers, and the instruction bytes KVM handed back.
 */
import type { KvmRegs, KvmSegment, KvmSregs } from '../kvm/structs.js';

const h = (v: bigint | number, w = 16) => BigInt(v).toString(16).padStart(w, '0');

export function formatRegisters(r: KvmRegs, s?: KvmSregs): string {
  const gp = (['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'] as const)
    .map((n) => `${n.padStart(3)}=${h(r[n])}`);
  const lines: string[] = [];
  for (let i = 0; i < gp.length; i += 4) lines.push(gp.slice(i, i + 4).join(' '));
  lines.push(`rip=${h(r.rip)} rflags=${h(r.rflags, 8)}`);
  if (s) {
    const seg = (name: string, g: KvmSegment) =>
      `${name}=${h(g.selector, 4)} base=${h(g.base)} limit=${h(g.limit, 8)} type=${g.type} dpl=${g.dpl} l=${g.l} db=${g.db}`;
    lines.push(seg('cs', s.cs), seg('ss', s.ss), seg('ds', s.ds), seg('tr', s.tr));
    lines.push(`cr0=${h(s.cr0, 8)} cr2=${h(s.cr2)} cr3=${h(s.cr3)} cr4=${h(s.cr4, 8)} efer=${h(s.efer, 4)}`);
    lines.push(`gdt=${h(s.gdt.base)}/${h(s.gdt.limit, 4)} idt=${h(s.idt.base)}/${h(s.idt.limit, 4)}`);
    lines.push(`mode: ${cpuMode(s)}, CPL${s.cs.dpl}`);
  }
  return lines.join('\n');
}

export function cpuMode(s: KvmSregs): string {
  if ((s.cr0 & 1n) === 0n) return 'real mode';
  if ((s.efer & 0x400n) !== 0n) return s.cs.l ? '64-bit long mode' : 'compatibility mode';
  return (s.cr0 & 0x80000000n) !== 0n ? '32-bit protected mode, paged' : '32-bit protected mode';
}

export function hexBytes(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');
}
