/**
 * tsvmm's public API: build a machine from a typed configuration, run it,
 * and look inside (exit statistics, memory map, guest memory).
 */
export { buildMachine, ConfigError } from './vmm/builder.js';
export { Machine, type MachineState } from './vmm/machine.js';
export type { MachineConfig, BootSource } from './vmm/config.js';
export { defaultDevices } from './vmm/config.js';
export type { VmStop, VmStopKind } from './devices/vm-stop.js';
export { ExitStatus } from './devices/vm-stop.js';
export type { DeviceConfig } from './config/machine-schema.js';
export { GuestMemory, GuestMemoryError } from './memory/guest-memory.js';
export { parseSize, MiB, GiB } from './memory/layout.js';
export { formatExitStats, type ExitStats } from './vcpu/exit-stats.js';
export { formatMemoryMap, type MemoryMapEntry } from './vmm/memory-map.js';
export { Kvm, KvmError } from './kvm/system.js';
export { FirecrackerClient, FirecrackerApiError, type InstanceInfo } from './api/firecracker-client.js';
export { VmResources } from './config/vm-resources.js';
export { InputError } from './config/firecracker-schema.js';
export type {
  BootSourceBody, DriveBody, EntropyBody, LoggerBody, MachineConfigBody, MetricsBody, NetworkInterfaceBody, SerialBody, VsockBody, ConfigFile,
} from './config/firecracker-schema.js';
export { TSVMM_VERSION } from './version.js';
export { MachineConfigSchema, DeviceConfigSchema } from './config/machine-schema.js';
export {
  ActionBody, BootSourceBody as BootSourceSchema, ConfigFile as ConfigFileSchema, DriveBody as DriveSchema, MachineConfigBody as MachineConfigBodySchema,
  NetworkInterfaceBody as NetworkInterfaceSchema, VsockBody as VsockSchema,
} from './config/firecracker-schema.js';
// Every error the library throws for bad input, so callers can tell them apart.
export { ElfError } from './boot/elf.js';
export { MultibootError } from './boot/multiboot-kernel.js';
export { LinuxImageError, LinuxLoadError } from './boot/linux/errors.js';
export { RawImageError } from './boot/raw.js';
export { CpuFeatureError } from './arch/x86/cpu-features.js';
export { SystemError } from './kvm/errors.js';
export { snapshotMachine, loadSnapshot, type LoadedSnapshot, type SavedConfig } from './snapshot/vm-snapshot.js';
export { SnapshotError } from './snapshot/snapshot-file.js';
