/**
 * Which kind of KVM this process runs on, read once from the real host.
 */
import { parseCpuInfo } from './cpu-info.js';
import { detectBackend, type KvmBackend } from './kvm-backend.js';
import { realHost } from './real-host.js';

let cached: KvmBackend | undefined;

export function hostBackend(): KvmBackend {
  return (cached ??= detectBackend(realHost, parseCpuInfo(realHost.readText('/proc/cpuinfo'))));
}
