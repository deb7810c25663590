/**
 * The human form of a HostReport: sections a person reads top to bottom,
 * ending with a one-line verdict.
 */
import { Cap, requiredCaps, type CapName } from '../kvm/capabilities.js';
import type { HostReport } from './host-check.js';

const WIDTH = 78;
const yesNo = (b: boolean) => (b ? 'yes' : 'no');

export function formatReport(report: HostReport): string {
  const { cpu, kvm, backend } = report;
  const sections: string[][] = [];

  sections.push([
    'CPU',
    row('vendor', cpu.vendor),
    row('model', cpu.model),
    row('VT-x (vmx)', yesNo(cpu.vmx)),
    row('AMD-V (svm)', yesNo(cpu.svm)),
    row('hypervisor', cpu.hypervisor ? 'yes: this host is itself a virtual machine' : 'no'),
  ]);

  const device = [kvm.device, row('present', kvm.available ? `yes (group ${kvm.group}, mode ${kvm.mode})` : 'no')];
  if (kvm.available) device.push(row('read/write', yesNo(kvm.accessible)));
  if (kvm.apiVersion !== null) device.push(row('API version', String(kvm.apiVersion)));
  if (kvm.maxVcpus) device.push(row('vCPUs', `${kvm.maxVcpus.recommended} recommended, ${kvm.maxVcpus.max} at most`));
  if (kvm.error) device.push(row('error', kvm.error));
  sections.push(device);

  const backendLines = ['KVM backend', row('module', backend.module === null ? 'none' : `${backend.module} (${backend.kind === 'none' ? 'loaded, not bound' : backend.kind})`)];
  if (backend.nested !== undefined) backendLines.push(row('nested', backend.nested ? 'yes: runs inside another hypervisor' : 'no: runs on bare metal'));
  if (backend.offersNested !== undefined) backendLines.push(row('offers nested', yesNo(backend.offersNested)));
  backendLines.push(...wrap(backend.description, '  ', '  '));
  sections.push(backendLines);

  if (kvm.apiVersion !== null) sections.push(['Capabilities (KVM_CHECK_EXTENSION)', ...capabilityRows(report)]);

  sections.push(['Network and vsock devices', ...report.ioDevices.map((d) => `  ${d.path.padEnd(18)}${d.usable ? 'yes: ' : ''}${d.note}`)]);

  sections.push(['Problems', ...(report.problems.length === 0 ? ['  none'] : report.problems.flatMap((p) => wrap(p, '  - ', '    ')))]);
  sections.push([`Verdict: ${report.verdict}`]);
  return sections.map((lines) => lines.join('\n')).join('\n\n') + '\n';
}

function row(label: string, value: string): string {
  return `  ${label.padEnd(14)}${value}`;
}

function capabilityRows(report: HostReport): string[] {
  const names = Object.keys(Cap) as CapName[];
  const nameWidth = Math.max(...names.map((n) => n.length)) + 2;
  return names.map((name) => {
    const value = report.kvm.capabilities[name] ?? 0;
    const note = name in requiredCaps ? (report.kvm.missing.includes(name) ? 'required, MISSING' : 'required') : '';
    return `  ${name.padEnd(nameWidth)}${String(value).padStart(6)}  ${note}`.trimEnd();
  });
}

/**
 * Word-wraps text to WIDTH columns: `first` prefixes the first line, `rest`
 * the others. A `command` in backticks stays on one line so it can be copied.
 */
function wrap(text: string, first: string, rest: string): string[] {
  const lines: string[] = [];
  let line = first;
  for (const word of text.match(/`[^`]*`\S*|\S+/g) ?? []) {
    const prefix = lines.length === 0 ? first : rest;
    if (line.length > prefix.length && line.length + 1 + word.length > WIDTH) {
      lines.push(line);
      line = rest + word;
    } else {
      line += (line.length > prefix.length ? ' ' : '') + word;
    }
  }
  lines.push(line);
  return lines;
}
