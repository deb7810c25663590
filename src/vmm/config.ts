/**
 * What a machine is made of: the typed configuration the library takes and
 * the CLI fills in.
 */
import type { CpuMode } from '../arch/x86/cpu-modes.js';
import type { CpuTemplate } from '../arch/x86/cpu-template.js';
import type { MultibootModule } from '../boot/multiboot.js';
import type { DeviceConfig } from '../config/machine-schema.js';

export type BootSource =
  | { kind: 'raw'; image: Uint8Array; mode: CpuMode; loadAddr: number; entry?: number; user?: boolean }
  /** A multiboot kernel. `version`: which header to follow when the kernel has both (default 2, the richer one;
   *  QEMU knows only 1). Multiboot 2 kernels get the ACPI RSDP in their boot information. */
  | { kind: 'multiboot'; image: Uint8Array; cmdline?: string; modules?: MultibootModule[]; version?: 1 | 2 }
  /** A bzImage or an ELF vmlinux, through the 64-bit boot protocol. */
  | { kind: 'linux'; kernel: Uint8Array; initrd?: Uint8Array; cmdline?: string };

export interface MachineConfig {
  /** Guest RAM in bytes. */
  memory: number;
  cpus: number;
  boot: BootSource;
  /** Defaults to COM1, the keyboard controller, the CMOS RTC and the debug-exit port. */
  devices?: DeviceConfig[];
  /** Receives serial output. */
  console?: (data: Uint8Array) => void;
  /** Measure time spent per exit reason (two clock reads per exit). */
  timeExits?: boolean;
  /** Write one line per VM exit to this fd. */
  traceFd?: number;
  /** What the guest sees of the host CPU (default 'host'). */
  cpuTemplate?: CpuTemplate;
  /** CPU features by QEMU's names turned on or off after the template (on: only where the host's KVM offers it). */
  cpuFeatures?: Record<string, boolean>;
  /** Emulate instructions KVM's own emulator lacks; default: on for software KVM backends only. */
  emulationAssist?: boolean;
  /** Track the pages written since the last snapshot (KVM's dirty log and the VMM's own writes), for diff snapshots. */
  trackDirtyPages?: boolean;
}

export const defaultDevices: DeviceConfig[] = [{ kind: 'serial' }, { kind: 'i8042' }, { kind: 'rtc' }, { kind: 'debug-exit' }];

/**
 * Linux and multiboot kernels also get ACPI tables and the power-management
 * device their FADT points at for poweroff and reset; Linux an entropy
 * source on PCI; multiboot and raw guests QEMU's fw_cfg, which kernels
 * written for QEMU read.
 */
export function defaultDevicesFor(boot: BootSource): DeviceConfig[] {
  switch (boot.kind) {
    case 'linux': return [...defaultDevices, { kind: 'acpi-pm' }, { kind: 'vmgenid' }, { kind: 'virtio-rng' }];
    case 'multiboot': return [...defaultDevices, { kind: 'acpi-pm' }, { kind: 'fw-cfg' }];
    case 'raw': return [...defaultDevices, { kind: 'fw-cfg' }];
  }
}

export const MAX_CPUS = 255;
