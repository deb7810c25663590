import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Cap, requiredCaps, type CapName } from '../../src/kvm/capabilities.js';
import { parseCpuInfo } from '../../src/host/cpu-info.js';
import { checkHost } from '../../src/host/host-check.js';
import { formatReport } from '../../src/host/format-check.js';
import type { FileStatus, HostProbe, KvmFacts } from '../../src/host/host-probe.js';

const INTEL_FLAGS = 'fpu vme de pse tsc msr pae mce cx8 apic sep pge cmov pat clflush mmx fxsr sse sse2 ht syscall nx lm';

function cpuinfo(vendor: string, model: string, extraFlags: string): string {
  const block = (n: number) =>
    `processor\t: ${n}\nvendor_id\t: ${vendor}\ncpu family\t: 6\nmodel name\t: ${model}\nflags\t\t: ${INTEL_FLAGS} ${extraFlags}\n`;
  return `${block(0)}\n${block(1)}\n`;
}

const INTEL_VMX = cpuinfo('GenuineIntel', 'Intel(R) Core(TM) i7-9700K CPU @ 3.60GHz', 'vmx ept');
const AMD_SVM = cpuinfo('AuthenticAMD', 'AMD Ryzen 9 5950X 16-Core Processor', 'svm npt');
const INTEL_NESTED = cpuinfo('GenuineIntel', 'Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz', 'vmx hypervisor');
const THIS_HOST = cpuinfo('GenuineIntel', 'Intel(R) Xeon(R) Processor', 'hypervisor avx2 avx512f');

const allCaps = (overrides: Partial<Record<CapName, number>> = {}): Record<CapName, number> => ({
  ...(Object.fromEntries(Object.keys(Cap).map((name) => [name, 1])) as Record<CapName, number>),
  NR_VCPUS: 8,
  MAX_VCPUS: 1024,
  ...overrides,
});

interface FakeHost {
  cpuinfo: string;
  modules: string[];
  /** What dmesg would print. */
  kernelLog?: string;
  /** Other readable files: module parameters, /etc/group, /proc/misc. */
  files?: Record<string, string>;
  /** /dev/kvm; absent when undefined. */
  device?: FileStatus & { denied?: string };
  kvm?: KvmFacts | Error;
  /** Other device nodes that exist (/dev/net/tun, the vhost devices), with the errno this user gets, if any. */
  nodes?: Record<string, { denied?: string }>;
}

const KVM_GROUP = 'root:x:0:\nwheel:x:10:alice\nkvm:x:108:bob\n';

/** A HostProbe answering from the description; it records whether /dev/kvm was opened. */
function fakeHost(spec: FakeHost): HostProbe & { opened: number } {
  const files: Record<string, string> = { '/proc/cpuinfo': spec.cpuinfo, '/etc/group': KVM_GROUP, ...spec.files };
  return {
    opened: 0,
    readText: (path) => files[path],
    kernelLog: () => spec.kernelLog ?? '',
    listDir: (path) => (path === '/sys/module' ? spec.modules : []),
    stat: (path) =>
      path === '/dev/kvm' && spec.device ? { gid: spec.device.gid, mode: spec.device.mode } : spec.nodes?.[path] ? { gid: 0, mode: 0o660 } : undefined,
    readWriteDenied: (path) => (path === '/dev/kvm' ? spec.device?.denied : spec.nodes?.[path] ? spec.nodes[path].denied : 'ENOENT'),
    probeKvm(device) {
      assert.equal(device, '/dev/kvm');
      this.opened++;
      const kvm = spec.kvm ?? { apiVersion: 12, capabilities: allCaps() };
      if (kvm instanceof Error) throw kvm;
      return kvm;
    },
  };
}

const KVM_DEVICE_OK = { gid: 108, mode: 0o660 };

test('parseCpuInfo reads vendor, model and the virtualization flags of the first processor', () => {
  assert.deepEqual(parseCpuInfo(INTEL_NESTED), {
    vendor: 'GenuineIntel',
    model: 'Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz',
    vmx: true,
    svm: false,
    hypervisor: true,
  });
  assert.deepEqual(parseCpuInfo(undefined), { vendor: 'unknown', model: 'unknown', vmx: false, svm: false, hypervisor: false });
});

test('Intel with vmx and kvm_intel: hardware backend, usable, no problems', () => {
  const host = fakeHost({ cpuinfo: INTEL_VMX, modules: ['kvm', 'kvm_intel', 'ext4'], files: { '/sys/module/kvm_intel/parameters/nested': 'N\n' }, device: KVM_DEVICE_OK });
  const report = checkHost(host);
  assert.deepEqual(report.cpu, { vendor: 'GenuineIntel', model: 'Intel(R) Core(TM) i7-9700K CPU @ 3.60GHz', vmx: true, svm: false, hypervisor: false });
  assert.equal(report.backend.module, 'kvm_intel');
  assert.equal(report.backend.kind, 'hardware');
  assert.equal(report.backend.nested, false);
  assert.equal(report.backend.offersNested, false);
  assert.match(report.backend.description, /Intel VT-x.*runs natively/);
  assert.deepEqual(report.problems, []);
  assert.equal(report.usable, true);
  assert.equal(report.verdict, 'KVM is usable: hardware virtualization (kvm_intel).');
  assert.deepEqual(
    { available: report.kvm.available, accessible: report.kvm.accessible, group: report.kvm.group, mode: report.kvm.mode, apiVersion: report.kvm.apiVersion },
    { available: true, accessible: true, group: 'kvm', mode: '0660', apiVersion: 12 },
  );
  assert.deepEqual(report.kvm.capabilities, allCaps());
  assert.deepEqual(report.kvm.missing, []);
  assert.deepEqual(report.kvm.maxVcpus, { recommended: 8, max: 1024 });
});

test('AMD with svm and kvm_amd: hardware backend that offers nested virtualization', () => {
  const host = fakeHost({ cpuinfo: AMD_SVM, modules: ['kvm', 'kvm_amd'], files: { '/sys/module/kvm_amd/parameters/nested': '1\n' }, device: KVM_DEVICE_OK });
  const report = checkHost(host);
  assert.equal(report.cpu.vendor, 'AuthenticAMD');
  assert.equal(report.cpu.svm, true);
  assert.equal(report.cpu.vmx, false);
  assert.deepEqual(
    { module: report.backend.module, kind: report.backend.kind, nested: report.backend.nested, offersNested: report.backend.offersNested },
    { module: 'kvm_amd', kind: 'hardware', nested: false, offersNested: true },
  );
  assert.match(report.backend.description, /AMD-V/);
  assert.deepEqual(report.problems, []);
  assert.equal(report.usable, true);
});

test('hypervisor flag with kvm_intel: nested inside another hypervisor', () => {
  const host = fakeHost({ cpuinfo: INTEL_NESTED, modules: ['kvm', 'kvm_intel'], files: { '/sys/module/kvm_intel/parameters/nested': 'Y\n' }, device: KVM_DEVICE_OK });
  const report = checkHost(host);
  assert.equal(report.backend.kind, 'hardware');
  assert.equal(report.backend.nested, true);
  assert.equal(report.backend.offersNested, true);
  assert.match(report.backend.description, /outer hypervisor/);
  assert.deepEqual(report.problems, []);
  assert.equal(report.verdict, 'KVM is usable: hardware virtualization (kvm_intel), nested inside another hypervisor.');
});

test('this host (no vmx/svm, kvm_pvm): software backend, usable, with a problem note about Linux guests', () => {
  const host = fakeHost({ cpuinfo: THIS_HOST, modules: ['kvm', 'kvm_pvm'], device: { gid: 0, mode: 0o600 } });
  const report = checkHost(host);
  assert.equal(report.cpu.vmx, false);
  assert.equal(report.cpu.svm, false);
  assert.equal(report.cpu.hypervisor, true);
  assert.deepEqual(report.backend, { module: 'kvm_pvm', kind: 'software', description: report.backend.description });
  assert.match(report.backend.description, /CPL3 .*runs natively/);
  assert.match(report.backend.description, /instruction emulator/);
  assert.match(report.backend.description, /KVM_EXIT_INTERNAL_ERROR/);
  assert.match(report.backend.description, /CPUID at CPL0 may return the host's values/);
  assert.equal(report.problems.length, 1);
  assert.match(report.problems[0], /software backend \(kvm_pvm\): a Linux kernel boots, slowly, with tsvmm's emulation assist/);
  assert.match(report.problems[0], /user space cannot run: a SYSCALL from guest ring 3 reaches the guest kernel still in ring 3/);
  assert.match(report.problems[0], /Bare-metal guests work/);
  assert.equal(report.usable, true);
  assert.match(report.verdict, /^KVM is usable, with a software backend \(kvm_pvm\)/);
});

test('kvm_pvm loaded but not bound (the host is itself a PVM guest): no KVM, said in the module\'s own words, with what to do', () => {
  const misc = '234 btrfs-control\n259 cpu_dma_latency\n200 tun\n';
  const log = '[    0.161596] pvm-pv: PTI user page-table\nkvm-pvm: this kernel is itself a kvm-pvm guest; not binding\nother: line';
  const report = checkHost(fakeHost({ cpuinfo: THIS_HOST, modules: ['kvm', 'kvm_pvm'], files: { '/proc/misc': misc }, kernelLog: log }));
  assert.equal(report.backend.kind, 'none');
  assert.equal(report.backend.module, 'kvm_pvm');
  assert.match(report.backend.description, /^kvm_pvm is loaded but serves no \/dev\/kvm \(\/proc\/misc has no kvm entry\); the kernel log says: "kvm-pvm: this kernel is itself a kvm-pvm guest; not binding"/);
  assert.match(report.backend.description, /PVM does not nest/);
  assert.match(report.problems[0], /^\/dev\/kvm does not exist: kvm_pvm is loaded but did not bind; "KVM backend" above says why and what to do\.$/);
  assert.doesNotMatch(report.problems.join(' '), /docker|container/);
  assert.equal(report.usable, false);
  assert.equal(report.verdict, 'KVM is not usable: kvm_pvm is loaded but did not bind, so there is no /dev/kvm.');
  assert.match(formatReport(report), /^ {2}module +kvm_pvm \(loaded, not bound\)$/m);

  // The same module with the device registered is the software backend.
  const bound = checkHost(fakeHost({ cpuinfo: THIS_HOST, modules: ['kvm', 'kvm_pvm'], files: { '/proc/misc': `${misc}232 kvm\n` }, device: { gid: 0, mode: 0o600 } }));
  assert.equal(bound.backend.kind, 'software');
});

test('no /dev/kvm: not usable, KVM is not opened, and the fix loads the module the CPU needs', () => {
  const intel = fakeHost({ cpuinfo: INTEL_VMX, modules: [] });
  const report = checkHost(intel);
  assert.equal(intel.opened, 0);
  assert.deepEqual(
    { available: report.kvm.available, accessible: report.kvm.accessible, apiVersion: report.kvm.apiVersion, capabilities: report.kvm.capabilities, maxVcpus: report.kvm.maxVcpus },
    { available: false, accessible: false, apiVersion: null, capabilities: {}, maxVcpus: null },
  );
  assert.deepEqual(report.backend, { module: null, kind: 'unknown', description: 'No KVM module in /sys/module.' });
  assert.deepEqual(report.problems, ['/dev/kvm does not exist: load KVM with `sudo modprobe kvm_intel`.']);
  assert.equal(report.usable, false);
  assert.equal(report.verdict, 'KVM is not usable: /dev/kvm does not exist.');

  assert.match(checkHost(fakeHost({ cpuinfo: AMD_SVM, modules: ['kvm'] })).problems[0], /`sudo modprobe kvm_amd`/);
  assert.match(checkHost(fakeHost({ cpuinfo: THIS_HOST, modules: [] })).problems[0], /neither VT-x \(vmx\) nor AMD-V \(svm\).*nested virtualization in the outer hypervisor/);
  assert.match(checkHost(fakeHost({ cpuinfo: INTEL_VMX, modules: ['kvm', 'kvm_intel'] })).problems[0], /KVM is loaded \(kvm_intel\).*--device \/dev\/kvm/);
});

test('no permission on /dev/kvm: the fix names the group that owns it', () => {
  const host = fakeHost({ cpuinfo: INTEL_VMX, modules: ['kvm', 'kvm_intel'], device: { gid: 108, mode: 0o660, denied: 'EACCES' } });
  const report = checkHost(host);
  assert.equal(host.opened, 0);
  assert.equal(report.kvm.available, true);
  assert.equal(report.kvm.accessible, false);
  assert.equal(report.kvm.group, 'kvm');
  assert.deepEqual(report.problems, [
    '/dev/kvm is not readable and writable by this user (EACCES; group kvm, mode 0660): join its group: `sudo usermod -aG kvm $USER`, then log in again.',
  ]);
  assert.equal(report.usable, false);
  assert.equal(report.verdict, 'KVM is not usable: no permission on /dev/kvm.');

  const closed = checkHost(fakeHost({ cpuinfo: INTEL_VMX, modules: ['kvm_intel'], device: { gid: 10, mode: 0o600, denied: 'EACCES' } }));
  assert.match(closed.problems[0], /`sudo chmod g\+rw \/dev\/kvm`, then join its group: `sudo usermod -aG wheel \$USER`/);

  const rootOwned = checkHost(fakeHost({ cpuinfo: INTEL_VMX, modules: ['kvm_intel'], device: { gid: 0, mode: 0o600, denied: 'EACCES' } }));
  assert.match(rootOwned.problems[0], /group root, mode 0600\): give it a group of its own: .*sudo chgrp kvm \/dev\/kvm.*sudo usermod -aG kvm \$USER/);

  const unnamed = checkHost(fakeHost({ cpuinfo: INTEL_VMX, modules: ['kvm_intel'], device: { gid: 4242, mode: 0o660, denied: 'EACCES' } }));
  assert.match(unnamed.problems[0], /`sudo usermod -aG 4242 \$USER`/);
});

test('a missing required capability is flagged, named with its use, and makes KVM unusable', () => {
  const host = fakeHost({ cpuinfo: INTEL_VMX, modules: ['kvm_intel'], device: KVM_DEVICE_OK, kvm: { apiVersion: 12, capabilities: allCaps({ PIT2: 0, HLT: 0 }) } });
  const report = checkHost(host);
  assert.deepEqual(report.kvm.missing, ['PIT2']);
  assert.equal(report.kvm.capabilities.HLT, 0);
  assert.deepEqual(report.problems, [`KVM lacks capabilities tsvmm needs: PIT2 (${requiredCaps.PIT2}).`]);
  assert.equal(report.usable, false);
  assert.match(formatReport(report), /\n {2}PIT2 +0 {2}required, MISSING\n/);
});

test('max vCPUs follows the KVM API defaults when the capabilities answer 0', () => {
  const host = fakeHost({ cpuinfo: INTEL_VMX, modules: ['kvm_intel'], device: KVM_DEVICE_OK, kvm: { apiVersion: 12, capabilities: allCaps({ NR_VCPUS: 0, MAX_VCPUS: 0 }) } });
  assert.deepEqual(checkHost(host).kvm.maxVcpus, { recommended: 4, max: 4 });
});

test('a /dev/kvm that cannot be opened is reported with the reason', () => {
  const host = fakeHost({ cpuinfo: INTEL_VMX, modules: ['kvm_intel'], device: KVM_DEVICE_OK, kvm: new Error('/dev/kvm speaks KVM API version 11; tsvmm needs 12') });
  const report = checkHost(host);
  assert.equal(report.kvm.error, '/dev/kvm speaks KVM API version 11; tsvmm needs 12');
  assert.equal(report.kvm.apiVersion, null);
  assert.deepEqual(report.problems, ['KVM could not be opened: /dev/kvm speaks KVM API version 11; tsvmm needs 12']);
  assert.equal(report.usable, false);
  assert.equal(report.verdict, 'KVM is not usable: /dev/kvm could not be opened.');
});

test('an unrecognised KVM module is reported as unknown', () => {
  const report = checkHost(fakeHost({ cpuinfo: THIS_HOST, modules: ['kvm', 'kvm_future'], device: KVM_DEVICE_OK }));
  assert.equal(report.backend.module, 'kvm_future');
  assert.equal(report.backend.kind, 'unknown');
  assert.deepEqual(report.problems, ['KVM backend unknown (kvm_future): tsvmm cannot say how guests will run.']);
  assert.equal(report.usable, true);
});

test('the human report has its sections, every capability, and ends with the verdict', () => {
  const report = checkHost(fakeHost({ cpuinfo: THIS_HOST, modules: ['kvm', 'kvm_pvm'], device: { gid: 0, mode: 0o600 } }));
  const text = formatReport(report);
  for (const heading of ['CPU', '/dev/kvm', 'KVM backend', 'Capabilities (KVM_CHECK_EXTENSION)', 'Problems']) {
    assert.match(text, new RegExp(`^${heading.replace(/[()/]/g, '\\$&')}$`, 'm'), heading);
  }
  for (const name of Object.keys(Cap)) assert.match(text, new RegExp(`^ {2}${name} +\\d+`, 'm'), name);
  assert.match(text, /^ {2}module +kvm_pvm \(software\)$/m);
  assert.match(text, /^ {2}- KVM is a software backend \(kvm_pvm\)/m);
  assert.ok(text.split('\n').every((line) => line.length <= 78 || line.startsWith('Verdict:')), 'wrapped to 78 columns');
  assert.equal(text.trimEnd().split('\n').at(-1), `Verdict: ${report.verdict}`);

  const missing = formatReport(checkHost(fakeHost({ cpuinfo: INTEL_VMX, modules: [] })));
  assert.doesNotMatch(missing, /Capabilities/);
  assert.match(missing, /^ {2}present +no$/m);
  assert.match(missing, /^Problems\n {2}- \/dev\/kvm does not exist/m);
});

test('check says which of the network and vsock devices this user can use, and what tsvmm does without each', () => {
  const report = checkHost(fakeHost({
    cpuinfo: THIS_HOST, modules: [],
    nodes: { '/dev/net/tun': {}, '/dev/vhost-net': { denied: 'EACCES' } },
  }));
  assert.deepEqual(report.ioDevices, [
    { path: '/dev/net/tun', usable: true, note: 'taps for --net' },
    { path: '/dev/vhost-net', usable: false, note: 'no access (EACCES): --net uses the userspace path' },
    { path: '/dev/vhost-vsock', usable: false, note: 'absent (modprobe vhost_vsock): --vsock needs uds=PATH' },
  ]);
  assert.match(formatReport(report), /^Network and vsock devices\n {2}\/dev\/net\/tun {6}yes: taps for --net\n/m);
});
