/**
 * The user's configuration of a VM before it starts, kept apart from the
 * machine built from it (as Firecracker's VmResources): what the API's
 * pre-boot requests and a `--config-file` set, each body checked by its
 * schema and the files it names checked before anything opens /dev/kvm.
 * `machineConfig()` turns it into the library's MachineConfig.
 */
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { isMultiboot } from '../boot/multiboot.js';
import { isMultiboot2 } from '../boot/multiboot2.js';
import type { DeviceConfig } from '../config/machine-schema.js';
import { parseMac } from '../devices/virtio/net.js';
import type { RateLimiterConfig } from '../devices/virtio/rate-limiter.js';
import { checkGuestCid } from '../devices/virtio/vsock.js';
import { MiB } from '../memory/layout.js';
import type { BootSource, MachineConfig } from '../vmm/config.js';
import {
  BootSourceBody, ConfigFile, DriveBody, RateLimiterBody, EntropyBody, InputError, MachineConfigBody, MachineConfigPatch, NetworkInterfaceBody,
  parseInput, RawBootBody, SerialBody, VsockBody,
} from './firecracker-schema.js';

/**
 * Firecracker's kernel command line when boot_args is not given, without
 * its `pci=off`: tsvmm's virtio devices are on PCI.
 */
export const DEFAULT_BOOT_ARGS = 'reboot=k panic=1 nomodule 8250.nr_uarts=0 i8042.noaux i8042.nomux i8042.dumbkbd';
const DEFAULT_MACHINE: MachineConfigBody = { vcpu_count: 1, mem_size_mib: 128, smt: false, track_dirty_pages: false, huge_pages: 'None' };

/** Refuses a path that is not a readable (and, when asked, writable) regular file, naming what it is for. */
function checkFile(what: string, path: string, writable = false): void {
  try {
    if (!statSync(path).isFile()) throw new InputError(`${what} '${path}' is not a regular file`);
    accessSync(path, constants.R_OK | (writable ? constants.W_OK : 0));
  } catch (e) {
    if (e instanceof InputError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? `permission denied (${writable ? 'read and write' : 'read'} needed)` : (e as Error).message;
    throw new InputError(`${what} '${path}': ${why}`);
  }
}

export class VmResources {
  private boot?: BootSourceBody;
  private rawBoot?: RawBootBody;
  private machine: MachineConfigBody = { ...DEFAULT_MACHINE };
  private readonly drives = new Map<string, DriveBody>();
  private readonly nics = new Map<string, NetworkInterfaceBody>();
  private vsock?: VsockBody;
  private entropy?: EntropyBody;
  private serial?: SerialBody;

  /** Whether anything that describes the machine was set (a snapshot to load describes it instead). */
  get configured(): boolean {
    return this.boot !== undefined || this.rawBoot !== undefined || this.drives.size > 0 || this.nics.size > 0 || this.vsock !== undefined || this.entropy !== undefined;
  }

  /** Every pre-boot section of a Firecracker configuration file. */
  static fromConfigFile(text: string, path: string): VmResources {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new InputError(`config file '${path}': not JSON (${(e as Error).message})`);
    }
    const file = parseInput(ConfigFile, json, `config file '${path}'`);
    const resources = new VmResources();
    resources.setBootSource(file['boot-source']);
    if (file['machine-config']) resources.setMachineConfig(file['machine-config']);
    for (const drive of file.drives ?? []) resources.setDrive(drive.drive_id, drive);
    for (const nic of file['network-interfaces'] ?? []) resources.setNetworkInterface(nic.iface_id, nic);
    if (file.vsock) resources.setVsock(file.vsock);
    if (file.entropy) resources.setEntropy(file.entropy);
    if (file.serial) resources.setSerial(file.serial);
    return resources;
  }

  setBootSource(input: unknown): void {
    const body = parseInput(BootSourceBody, input, 'boot-source');
    checkFile('boot-source: kernel_image_path', body.kernel_image_path);
    if (body.initrd_path !== undefined) checkFile('boot-source: initrd_path', body.initrd_path);
    this.boot = body;
    this.rawBoot = undefined;
  }

  /** tsvmm's own: a raw binary instead of a kernel (the last of the two set is the one booted). */
  setRawBoot(input: unknown): void {
    const body = parseInput(RawBootBody, input, 'tsvmm/raw-boot');
    checkFile('tsvmm/raw-boot: image_path', body.image_path);
    this.rawBoot = body;
    this.boot = undefined;
  }

  setMachineConfig(input: unknown): void {
    this.machine = { ...DEFAULT_MACHINE, ...parseInput(MachineConfigBody, input, 'machine-config') };
  }

  patchMachineConfig(input: unknown): void {
    this.machine = { ...this.machine, ...parseInput(MachineConfigPatch, input, 'machine-config') };
  }

  setDrive(pathId: string, input: unknown): void {
    const body = parseInput(DriveBody, input, `drives/${pathId}`);
    if (body.drive_id !== pathId) throw new InputError(`drives/${pathId}: drive_id '${body.drive_id}' does not match the path's '${pathId}'`);
    checkFile(`drives/${pathId}: path_on_host`, body.path_on_host, !body.is_read_only);
    const otherRoot = [...this.drives.values()].find((d) => d.is_root_device && d.drive_id !== pathId);
    if (body.is_root_device && otherRoot) throw new InputError(`drives/${pathId}: drive '${otherRoot.drive_id}' is already the root device`);
    this.drives.set(pathId, body);
  }

  setNetworkInterface(pathId: string, input: unknown): void {
    const body = parseInput(NetworkInterfaceBody, input, `network-interfaces/${pathId}`);
    if (body.iface_id !== pathId) throw new InputError(`network-interfaces/${pathId}: iface_id '${body.iface_id}' does not match the path's '${pathId}'`);
    if (body.guest_mac !== undefined) {
      try {
        parseMac(body.guest_mac);
      } catch (e) {
        throw new InputError(`network-interfaces/${pathId}: guest_mac: ${(e as Error).message}`);
      }
    }
    const sameTap = [...this.nics.values()].find((n) => n.host_dev_name === body.host_dev_name && n.iface_id !== pathId);
    if (sameTap) throw new InputError(`network-interfaces/${pathId}: host_dev_name '${body.host_dev_name}' is already used by '${sameTap.iface_id}'`);
    this.nics.set(pathId, body);
  }

  setVsock(input: unknown): void {
    const body = parseInput(VsockBody, input, 'vsock');
    try {
      checkGuestCid(body.guest_cid);
    } catch (e) {
      throw new InputError(`vsock: guest_cid: ${(e as Error).message}`);
    }
    try {
      if (!statSync(dirname(body.uds_path)).isDirectory()) throw new Error();
    } catch {
      throw new InputError(`vsock: uds_path '${body.uds_path}': its directory does not exist`);
    }
    this.vsock = body;
  }

  setEntropy(input: unknown): void {
    this.entropy = parseInput(EntropyBody, input, 'entropy');
  }

  setSerial(input: unknown): void {
    this.serial = parseInput(SerialBody, input, 'serial');
  }

  /** Where the guest's serial output goes: the file given with /serial, else tsvmm's stdout. */
  get serialOutPath(): string | undefined {
    return this.serial?.serial_out_path;
  }

  /** GET /machine-config. */
  machineConfigView(): MachineConfigBody {
    return { ...this.machine };
  }

  /** GET /vm/config: everything configured, in the configuration file's shape. */
  fullConfigView(): Record<string, unknown> {
    return {
      ...(this.boot && { 'boot-source': this.boot }),
      ...(this.rawBoot && { 'tsvmm-raw-boot': this.rawBoot }),
      'machine-config': this.machineConfigView(),
      drives: [...this.drives.values()],
      'network-interfaces': [...this.nics.values()],
      ...(this.vsock && { vsock: this.vsock }),
      ...(this.entropy && { entropy: this.entropy }),
    };
  }

  /** The library's configuration for what has been set; the files are read here. */
  machineConfig(): Omit<MachineConfig, 'console'> {
    if (this.boot === undefined && this.rawBoot === undefined) throw new InputError('Cannot start microvm without kernel configuration.');
    const drives = [...this.drives.values()].sort((a, b) => Number(b.is_root_device) - Number(a.is_root_device));
    const boot = this.bootSource(drives[0]);
    const devices: DeviceConfig[] = [
      { kind: 'serial' }, { kind: 'i8042' }, { kind: 'rtc' }, { kind: 'acpi-pm' },
      // Firecracker's clones reseed from the VM generation ID, which a Linux guest reads from ACPI.
      ...(boot.kind === 'linux' ? [{ kind: 'vmgenid' } as const] : []),
      // A raw guest reports through the debug-exit port, as under `tsvmm run --raw`.
      ...(this.rawBoot ? [{ kind: 'debug-exit' } as const] : []),
      ...(this.entropy ? [{ kind: 'virtio-rng' } as const] : []),
      ...drives.map((d): DeviceConfig => ({ kind: 'virtio-blk', path: d.path_on_host, readOnly: d.is_read_only, id: d.drive_id, ...(d.rate_limiter && { rateLimiter: rateLimiterOf(d.rate_limiter) }) })),
      ...[...this.nics.values()].map((n): DeviceConfig => ({
        kind: 'virtio-net', tap: n.host_dev_name, id: n.iface_id, mac: n.guest_mac,
        ...(n.rx_rate_limiter && { rxRateLimiter: rateLimiterOf(n.rx_rate_limiter) }),
        ...(n.tx_rate_limiter && { txRateLimiter: rateLimiterOf(n.tx_rate_limiter) }),
      })),
      ...(this.vsock ? [{ kind: 'virtio-vsock', cid: this.vsock.guest_cid, uds: this.vsock.uds_path } as const] : []),
    ];
    return {
      memory: this.machine.mem_size_mib * MiB, cpus: this.machine.vcpu_count, boot, devices,
      trackDirtyPages: this.machine.track_dirty_pages === true,
    };
  }

  /** The kernel as Firecracker boots it, its root device named on the command line as Firecracker does. */
  private bootSource(first: DriveBody | undefined): BootSource {
    if (this.rawBoot !== undefined) {
      const { image_path, mode, load_addr, entry } = this.rawBoot;
      return { kind: 'raw', image: readFileSync(image_path), mode, loadAddr: load_addr, entry };
    }
    const boot = this.boot!;
    const image = readFileSync(boot.kernel_image_path);
    const args = [boot.boot_args ?? DEFAULT_BOOT_ARGS];
    if (first?.is_root_device) {
      args.push(first.partuuid ? `root=PARTUUID=${first.partuuid}` : 'root=/dev/vda', first.is_read_only ? 'ro' : 'rw');
    }
    const cmdline = args.join(' ');
    if (isMultiboot(image) || isMultiboot2(image)) {
      if (boot.initrd_path !== undefined) throw new InputError('boot-source: initrd_path is for Linux kernels; this kernel is a multiboot one');
      return { kind: 'multiboot', image, cmdline };
    }
    return { kind: 'linux', kernel: image, initrd: boot.initrd_path === undefined ? undefined : readFileSync(boot.initrd_path), cmdline };
  }
}

/** Firecracker's rate_limiter as the library takes it. */
export function rateLimiterOf(body: RateLimiterBody | undefined): RateLimiterConfig | undefined {
  if (body === undefined) return undefined;
  const bucket = (b: RateLimiterBody['ops']) => b && { size: b.size, oneTimeBurst: b.one_time_burst, refillTimeMs: b.refill_time };
  return { bandwidth: bucket(body.bandwidth), ops: bucket(body.ops) };
}

/** The library's rate limiter as Firecracker's rate_limiter, for GET /vm/config. */
function rateLimiterBody(config: RateLimiterConfig | undefined): RateLimiterBody | undefined {
  if (config === undefined) return undefined;
  const bucket = (b: RateLimiterConfig['ops']) => b && { size: b.size, ...(b.oneTimeBurst && { one_time_burst: b.oneTimeBurst }), refill_time: b.refillTimeMs };
  return { ...(config.bandwidth && { bandwidth: bucket(config.bandwidth) }), ...(config.ops && { ops: bucket(config.ops) }) };
}

type NetConfig = DeviceConfig & { kind: 'virtio-net' };

/** A machine's network devices, each with its name on the API: its iface_id, or net0, net1, ... in order. */
export function netInterfaces(devices: readonly DeviceConfig[]): { id: string; device: NetConfig }[] {
  return devices.filter((d): d is NetConfig => d.kind === 'virtio-net').map((device, i) => ({ id: device.id ?? `net${i}`, device }));
}

/** GET /machine-config and /vm/config for a machine configured without the API (`tsvmm run --api-sock`). */
export function configViewOf(config: Omit<MachineConfig, 'console'>): { machine: MachineConfigBody; full: Record<string, unknown> } {
  const machine = { ...DEFAULT_MACHINE, vcpu_count: config.cpus, mem_size_mib: config.memory / MiB };
  const devices = config.devices ?? [];
  const full = {
    'machine-config': machine,
    drives: devices.flatMap((d, i) => d.kind === 'virtio-blk' ? [{
      drive_id: d.id ?? `drive${i}`, path_on_host: d.path, is_read_only: d.readOnly ?? false, is_root_device: false,
      ...(d.rateLimiter && { rate_limiter: rateLimiterBody(d.rateLimiter) }),
    }] : []),
    'network-interfaces': netInterfaces(devices).map(({ id, device: d }) => ({
      iface_id: id, host_dev_name: d.tap, ...(d.mac && { guest_mac: d.mac }),
      ...(d.rxRateLimiter && { rx_rate_limiter: rateLimiterBody(d.rxRateLimiter) }),
      ...(d.txRateLimiter && { tx_rate_limiter: rateLimiterBody(d.txRateLimiter) }),
    })),
    ...devices.filter((d) => d.kind === 'virtio-vsock').map((d) => ({ vsock: { guest_cid: d.cid, uds_path: d.uds } }))[0],
  };
  return { machine, full };
}
