import assert from 'node:assert/strict';
import { accessSync, constants, readdirSync, readFileSync } from 'node:fs';
import { runCli } from '../helpers/cli.js';
import { kvmTest } from '../helpers/kvm.js';

/** This host's vendor module and its kind, read independently of src/host. */
function expectedBackend(): { module: string; kind: string } {
  const modules = readdirSync('/sys/module');
  const kinds: [string, string][] = [['kvm_intel', 'hardware'], ['kvm_amd', 'hardware'], ['kvm_pvm', 'software']];
  const known = kinds.find(([m]) => modules.includes(m));
  if (known) return { module: known[0], kind: known[1] };
  return { module: modules.find((m) => m.startsWith('kvm_')) ?? 'kvm', kind: 'unknown' };
}

function cpuFlags(): Set<string> {
  const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags'));
  return new Set(line?.split(':')[1].trim().split(/\s+/));
}

kvmTest('check --json describes this host: CPU, /dev/kvm, API version 12, capabilities, backend', { perBackend: true }, async () => {
  const { status, stdout, stderr } = await runCli(['check', '--json']);
  assert.equal(stderr, '');
  assert.equal(status, 0);
  const report = JSON.parse(stdout);

  const flags = cpuFlags();
  assert.deepEqual(
    { vmx: report.cpu.vmx, svm: report.cpu.svm, hypervisor: report.cpu.hypervisor },
    { vmx: flags.has('vmx'), svm: flags.has('svm'), hypervisor: flags.has('hypervisor') },
  );
  assert.match(report.cpu.vendor, /^(GenuineIntel|AuthenticAMD)$/);
  assert.equal(typeof report.cpu.model, 'string');

  assert.equal(report.kvm.available, true);
  assert.equal(report.kvm.device, '/dev/kvm');
  accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
  assert.equal(report.kvm.accessible, true);
  assert.equal(report.kvm.apiVersion, 12);
  assert.equal(report.kvm.capabilities.USER_MEMORY, 1);
  assert.ok(report.kvm.capabilities.NR_MEMSLOTS > 0, 'NR_MEMSLOTS is a count');
  assert.deepEqual(report.kvm.missing, []);
  assert.ok(report.kvm.maxVcpus.max >= report.kvm.maxVcpus.recommended);

  const backend = expectedBackend();
  assert.equal(report.backend.module, backend.module);
  assert.equal(report.backend.kind, backend.kind);
  assert.equal(typeof report.backend.description, 'string');
  if (backend.kind === 'hardware') assert.equal(report.backend.nested, flags.has('hypervisor'));
  const softwareNote = report.problems.some((p: string) => p.includes(`software backend (${backend.module})`));
  assert.equal(softwareNote, backend.kind === 'software');
  assert.equal(report.usable, true);
  assert.deepEqual(report.ioDevices.map((d: { path: string }) => d.path), ['/dev/net/tun', '/dev/vhost-net', '/dev/vhost-vsock']);
  // The rig loads tun, vhost_net and vhost_vsock (test/rig/rig-machine.ts); other hosts may lack them.
  if (process.env.TSVMM_TEST_PLACE === 'rig') assert.ok(report.ioDevices.every((d: { usable: boolean }) => d.usable), JSON.stringify(report.ioDevices));
});

kvmTest('check prints a readable report and exits 0 when KVM is usable', { perBackend: true }, async () => {
  const { status, stdout, stderr } = await runCli(['check']);
  assert.equal(stderr, '');
  assert.equal(status, 0);
  const backend = expectedBackend();
  assert.match(stdout, /^CPU\n/);
  assert.match(stdout, /^\/dev\/kvm\n {2}present +yes/m);
  assert.match(stdout, /^ {2}API version +12$/m);
  assert.match(stdout, new RegExp(`^ {2}module +${backend.module} \\(${backend.kind}\\)$`, 'm'));
  assert.match(stdout, /\nVerdict: KVM is usable[^\n]*\n$/);
});
