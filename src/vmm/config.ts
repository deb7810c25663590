/**
 * What a machine is made of: the typed configuration the library takes and
 * the CLI fills in.
 */
import type { CpuMode } from '../arch/x86/cpu-modes.js';
import type { CpuTemplate } from '../arch/x86/cpu-template.js';
import type { MultibootModule } from '../boot/multiboot.js';
import type { DeviceSpec } from '../devices/registry.js';

export type BootSource =
  | { kind: 'raw'; image: Uint8Array; mode: CpuMode; loadAddr: number; entry?: number; user?: boolean }
  | { kind: 'multiboot'; image: Uint8Array; cmdline?: string; modules?: MultibootModule[] }
  /** A bzImage or an ELF vmlinux, through the 64-bit boot protocol. */
  | { kind: 'linux'; kernel: Uint8Array; initrd?: Uint8Array; cmdline?: string };

export interface MachineConfig {
  /** Guest RAM in bytes. */
  memory: number;
  cpus: number;
  boot: BootSource;
  /** Defaults to COM1, the keyboard controller, the CMOS RTC and the debug-exit port. */
  devices?: DeviceSpec[];
  /** Receives serial output. */
  console?: (data: Uint8Array) => void;
  /** Measure time spent per exit reason (two clock reads per exit). */
  timeExits?: boolean;
  /** Write one line per VM exit to this fd. */
  traceFd?: number;
  /** What the guest sees of the host CPU (default 'host'). */
  cpuTemplate?: CpuTemplate;
  /** Emulate instructions KVM's own emulator lacks; default: on for software KVM backends only. */
  emulationAssist?: boolean;
}

export const defaultDevices: DeviceSpec[] = [{ kind: 'serial' }, { kind: 'i8042' }, { kind: 'rtc' }, { kind: 'debug-exit' }];

/**
 * Linux also gets the ACPI power-management device, which its FADT points at
 * for poweroff and reset, and an entropy source on PCI; multiboot and raw
 * guests get QEMU's fw_cfg, which kernels written for QEMU read.
 */
export function defaultDevicesFor(boot: BootSource): DeviceSpec[] {
  return boot.kind === 'linux' ? [...defaultDevices, { kind: 'acpi-pm' }, { kind: 'virtio-rng' }] : [...defaultDevices, { kind: 'fw-cfg' }];
}

export const MAX_CPUS = 255;
