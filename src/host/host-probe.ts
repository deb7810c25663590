/**
 * What `tsvmm check` reads from the host, as an interface so the inspection
 * can be fed a made-up host in tests (an AMD box, a missing /dev/kvm, ...).
 */
import type { CapName } from '../kvm/capabilities.js';

export interface FileStatus {
  /** Owning group id. */
  gid: number;
  /** Permission bits, e.g. 0o660. */
  mode: number;
}

/** What an open /dev/kvm says about itself. */
export interface KvmFacts {
  apiVersion: number;
  capabilities: Record<CapName, number>;
}

export interface HostProbe {
  /** The file's text, or undefined when it cannot be read (absent, no permission). */
  readText(path: string): string | undefined;
  /** Names in a directory; empty when it does not exist. */
  listDir(path: string): string[];
  /** Owner group and permissions, or undefined when the file does not exist. */
  stat(path: string): FileStatus | undefined;
  /** Why this user cannot read and write the file (an errno name such as 'EACCES'), or undefined when it can. */
  readWriteDenied(path: string): string | undefined;
  /** The kernel's log (what dmesg prints), or '' when it cannot be read. */
  kernelLog(): string;
  /** Opens the KVM device and asks it; throws an Error with a one-line message when it cannot. */
  probeKvm(device: string): KvmFacts;
}
