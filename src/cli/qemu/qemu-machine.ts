/**
 * A QEMU command line as tsvmm's machine configuration: the kernel and its
 * files loaded as QEMU's -kernel loads them, memory, CPUs, the serial
 * console, and the devices asked for with -device, -drive and -netdev.
 * Like QEMU, and unlike `tsvmm run`, the machine has only what the command
 * line gives it beyond a PC's own devices: no debug-exit port unless
 * -device isa-debug-exit, no COM1 with -nodefaults unless -serial.
 */
import { checkCpuFeature } from '../../arch/x86/cpu-features.js';
import type { CpuTemplate } from '../../arch/x86/cpu-template.js';
import { isMultiboot, type MultibootModule } from '../../boot/multiboot.js';
import { isMultiboot2 } from '../../boot/multiboot2.js';
import type { ConsoleMode } from '../../console/console-mode.js';
import { DEBUG_EXIT_PORT } from '../../devices/debug/debug-exit.js';
import type { DeviceConfig } from '../../config/machine-schema.js';
import { parseMac } from '../../devices/virtio/net.js';
import { MiB, parseSize } from '../../memory/layout.js';
import { MAX_CPUS, type BootSource, type MachineConfig } from '../../vmm/config.js';
import { UsageError } from '../fail.js';
import { readUserFile } from '../parse.js';
import { parseFwCfg } from '../run-command.js';
import { parseOnOff, parseQemuList, refuseLeftovers, splitQemuList, take, type QemuList, type QemuOption } from './qemu-args.js';

export interface QemuMachine {
  config: Omit<MachineConfig, 'console' | 'timeExits' | 'traceFd'>;
  console: ConsoleMode;
  /** -no-reboot: a reset (or triple fault) ends the run; otherwise the guest starts again. */
  noReboot: boolean;
  /** -no-shutdown: after the guest powers off, wait (as QEMU stays, paused) until a signal. */
  noShutdown: boolean;
  /** Why the serial console goes nowhere, when it does. */
  consoleNote?: string;
}

const DEFAULT_MEMORY = 128 * MiB;

/** Every option's values in order, for the options that may repeat, and the last value of the others. */
class Options {
  constructor(private readonly list: QemuOption[]) {}
  all(name: QemuOption['name']): string[] {
    return this.list.filter((o) => o.name === name).map((o) => o.value ?? '');
  }
  last(name: QemuOption['name']): string | undefined {
    return this.all(name).at(-1);
  }
  has(name: QemuOption['name']): boolean {
    return this.list.some((o) => o.name === name);
  }
}

export function qemuMachine(list: QemuOption[]): QemuMachine {
  const o = new Options(list);
  checkAccelerator(o);
  const kernelPath = o.last('kernel');
  if (kernelPath === undefined) throw new UsageError('-kernel is required: tsvmm qemu boots a kernel (there is no firmware to boot a disk)');
  const boot = kernelSource(kernelPath, o.last('initrd'), o.last('append') ?? '');
  const { mode: console, note } = serialConsole(o);
  const { template, features } = cpuModel(o.last('cpu'));
  const devices: DeviceConfig[] = [
    ...(console.kind === 'none' && o.has('nodefaults') ? [] : [{ kind: 'serial' } as const]),
    { kind: 'i8042' }, { kind: 'rtc' }, { kind: 'acpi-pm' }, { kind: 'fw-cfg', files: o.all('fw_cfg').map((text) => parseFwCfg(text, '-fw_cfg')) },
    ...pciAndTestDevices(o),
  ];
  return {
    config: { memory: memorySize(o.last('m')), cpus: cpuCount(o.last('smp')), cpuTemplate: template, cpuFeatures: features, boot, devices },
    console,
    noReboot: o.has('no-reboot'),
    noShutdown: o.has('no-shutdown'),
    consoleNote: note,
  };
}

function checkAccelerator(o: Options): void {
  for (const accel of o.all('accel')) {
    const list = parseQemuList('accel', accel);
    if (list.head !== 'kvm') throw new UsageError(`-accel ${list.head}: tsvmm runs guests on KVM only (-accel kvm)`);
    refuseLeftovers('accel', list, 'kvm');
  }
  for (const name of ['machine', 'M'] as const) {
    for (const text of o.all(name)) {
      const list = parseQemuList(name, text, undefined);
      const type = list.head ?? take(list, 'type');
      if (type !== undefined && !['pc', 'q35'].includes(type) && !/^pc-(i440fx|q35)-[\d.]+$/.test(type)) {
        throw new UsageError(`-${name} ${type}: tsvmm's machine is a PC (pc or q35)`);
      }
      const accel = take(list, 'accel');
      if (accel !== undefined && accel !== 'kvm') throw new UsageError(`-${name} accel=${accel}: tsvmm runs guests on KVM only`);
      refuseLeftovers(name, list, type ?? '');
    }
  }
  for (const [name, allowed] of [['display', 'none'], ['vnc', 'none'], ['monitor', 'none']] as const) {
    for (const value of o.all(name)) if (value !== allowed) throw new UsageError(`-${name} ${value}: tsvmm has no ${name === 'monitor' ? 'monitor' : 'display'}; only -${name} none`);
  }
}

/** `-m 512`, `-m 512M`, `-m size=1G`: a bare number is MiB, as in QEMU. */
function memorySize(text: string | undefined): number {
  if (text === undefined) return DEFAULT_MEMORY;
  const list = parseQemuList('m', text, 'size');
  const size = take(list, 'size');
  refuseLeftovers('m', list, text);
  if (size === undefined) return DEFAULT_MEMORY;
  try {
    const bytes = /^\d+$/.test(size) ? Number(size) * MiB : parseSize(size);
    if (bytes < 2 * MiB || bytes % 4096 !== 0) throw new Error(`'${size}' is not a multiple of 4K of at least 2M`);
    return bytes;
  } catch (e) {
    throw new UsageError(`-m: ${(e as Error).message}`);
  }
}

/** `-smp 4`, `-smp cpus=4`, `-smp sockets=2,cores=2,threads=1`: the number of vCPUs. */
function cpuCount(text: string | undefined): number {
  if (text === undefined) return 1;
  const list = parseQemuList('smp', text, 'cpus');
  const number = (key: string): number | undefined => {
    const value = take(list, key);
    if (value === undefined) return undefined;
    if (!/^\d+$/.test(value) || Number(value) < 1) throw new UsageError(`-smp: ${key}=${value} is not a positive number`);
    return Number(value);
  };
  const cpus = number('cpus');
  const topology = ['sockets', 'dies', 'cores', 'threads'].map(number);
  const maxcpus = number('maxcpus');
  refuseLeftovers('smp', list, text);
  const count = cpus ?? topology.reduce<number>((n, t) => n * (t ?? 1), 1);
  if (maxcpus !== undefined && maxcpus !== count) throw new UsageError(`-smp: maxcpus=${maxcpus}: tsvmm has no CPU hotplug (maxcpus must equal cpus)`);
  if (count > MAX_CPUS) throw new UsageError(`-smp: ${count} CPUs is more than tsvmm's ${MAX_CPUS}`);
  return count;
}

/** `-cpu host|max|qemu64|kvm64[,+feat,-feat,feat=on|off]`. */
function cpuModel(text: string | undefined): { template: CpuTemplate; features: Record<string, boolean> } {
  if (text === undefined) return { template: 'host', features: {} };
  const [model, ...items] = splitQemuList(text);
  // host and max: all the host's KVM offers; QEMU's generic models: the x86-64 baseline template.
  const template: CpuTemplate | undefined = model === 'host' || model === 'max' ? 'host' : model === 'qemu64' || model === 'kvm64' ? 'minimal' : undefined;
  if (template === undefined) throw new UsageError(`-cpu ${model}: tsvmm offers host, max, qemu64 and kvm64`);
  const features: Record<string, boolean> = {};
  for (const item of items) {
    const m = /^([+-])(.+)$/.exec(item) ?? /^(.+)=(.+)$/.exec(item);
    if (m === null) throw new UsageError(`-cpu: '${item}' is not +feature, -feature or feature=on|off`);
    const [name, on] = m[1] === '+' || m[1] === '-' ? [m[2], m[1] === '+'] : [m[1], parseOnOff('cpu', m[1], m[2])];
    try {
      checkCpuFeature(name);
    } catch (e) {
      throw new UsageError(`-cpu: ${(e as Error).message}`);
    }
    features[name] = on;
  }
  return { template, features };
}

/** `-serial stdio|mon:stdio|file:PATH|null|none`, `-nographic` (serial on stdio when -serial is not given). */
function serialConsole(o: Options): { mode: ConsoleMode; note?: string } {
  const serials = o.all('serial');
  if (serials.length > 1) throw new UsageError('-serial given more than once: tsvmm has one serial port (COM1)');
  const serial = serials[0];
  if (serial === undefined) {
    if (o.has('nographic')) return { mode: { kind: 'stdio' } };
    return { mode: { kind: 'none' }, note: 'no -serial and no -nographic: the guest\'s serial output goes nowhere' };
  }
  if (serial === 'stdio' || serial === 'mon:stdio') return { mode: { kind: 'stdio' } };
  if (serial === 'null' || serial === 'none') return { mode: { kind: 'none' } };
  if (serial.startsWith('file:') && serial.length > 'file:'.length) return { mode: { kind: 'file', path: serial.slice('file:'.length) } };
  throw new UsageError(`-serial ${serial}: tsvmm takes stdio, mon:stdio, file:PATH, null or none`);
}

/**
 * -kernel as QEMU loads it: a multiboot kernel (version 1 when it has that
 * header, as QEMU; version 2, which QEMU cannot load, otherwise), its
 * -initrd a comma-separated list of modules each with its arguments after
 * a space (`-initrd "a args,b"`); or a Linux kernel and its initramfs.
 */
function kernelSource(path: string, initrd: string | undefined, append: string): BootSource {
  const image = readUserFile('-kernel', path);
  const version = isMultiboot(image) ? 1 : isMultiboot2(image) ? 2 : undefined;
  if (version === undefined) return { kind: 'linux', kernel: image, initrd: initrd === undefined ? undefined : readUserFile('-initrd', initrd), cmdline: append };
  const modules: MultibootModule[] = initrd === undefined ? [] : splitQemuList(initrd).map((item) => {
    const [file, ...args] = item.split(' ');
    if (file === '') throw new UsageError(`-initrd: '${initrd}' has an empty module name`);
    // QEMU gives a module its whole item (file name and arguments) as its command line; GRUB 2, only the arguments.
    return { data: readUserFile('-initrd module', file), cmdline: version === 1 ? item : args.join(' ') };
  });
  return { kind: 'multiboot', image, cmdline: version === 1 ? `${path} ${append}` : append, modules, version };
}

/** -device, -drive and -netdev: the debug-exit port, QEMU's test devices and the virtio functions. */
function pciAndTestDevices(o: Options): DeviceConfig[] {
  const drives = new Map<string, QemuList>();
  const devices: DeviceConfig[] = [];
  for (const text of o.all('drive')) {
    const list = parseQemuList('drive', text);
    const iface = take(list, 'if') ?? 'ide';
    const id = take(list, 'id');
    if (iface === 'virtio') devices.push(driveDisk(list, text));
    else if (iface === 'none' && id !== undefined) drives.set(id, list);
    else throw new UsageError(`-drive ${text}: tsvmm takes if=virtio, or if=none with an id for -device virtio-blk-pci`);
  }
  const netdevs = new Map<string, QemuList>();
  for (const text of o.all('netdev')) {
    const list = parseQemuList('netdev', text);
    const id = take(list, 'id');
    if (list.head !== 'tap' || id === undefined) throw new UsageError(`-netdev ${text}: tsvmm takes tap,id=ID,ifname=TAP`);
    netdevs.set(id, list);
  }
  for (const text of o.all('device')) {
    const list = parseQemuList('device', text);
    const driver = list.head;
    const used = (map: Map<string, QemuList>, key: string, option: string): QemuList => {
      const id = take(list, key);
      const found = id === undefined ? undefined : map.get(id);
      if (found === undefined) throw new UsageError(`-device ${text}: ${key}=${id ?? ''} names no -${option} id`);
      map.delete(id!);
      return found;
    };
    switch (driver) {
      case 'isa-debug-exit': devices.push(debugExit(list)); break;
      case 'virtio-blk-pci': devices.push(driveDisk(used(drives, 'drive', 'drive'), text)); break;
      case 'virtio-net-pci': devices.push(tapNic(used(netdevs, 'netdev', 'netdev'), take(list, 'mac'))); break;
      case 'virtio-rng-pci': devices.push({ kind: 'virtio-rng' }); break;
      case 'pc-testdev': devices.push({ kind: 'pc-testdev' }); break;
      case 'pci-testdev': devices.push({ kind: 'pci-testdev' }); break;
      default: throw new UsageError(`-device ${driver}: tsvmm qemu offers isa-debug-exit, pc-testdev, pci-testdev, virtio-blk-pci, virtio-net-pci and virtio-rng-pci`);
    }
    refuseLeftovers('device', list, driver);
  }
  const unused = [...drives.keys(), ...netdevs.keys()];
  if (unused.length > 0) throw new UsageError(`-drive/-netdev ${unused.join(', ')}: no -device uses it`);
  return devices;
}

/** `isa-debug-exit,iobase=0xf4,iosize=0x01`: QEMU's numbers are decimal, octal or hex. */
function debugExit(list: QemuList): DeviceConfig {
  const number = (key: string, fallback: number): number => {
    const text = take(list, key);
    if (text === undefined) return fallback;
    const value = /^0x[0-9a-f]+$/i.test(text) ? parseInt(text, 16) : /^0[0-7]+$/.test(text) ? parseInt(text, 8) : /^\d+$/.test(text) ? Number(text) : NaN;
    if (!Number.isInteger(value)) throw new UsageError(`-device isa-debug-exit: ${key}=${text} is not a number`);
    return value;
  };
  const port = number('iobase', DEBUG_EXIT_PORT);
  const size = number('iosize', 1);
  if (![1, 2, 4].includes(size)) throw new UsageError(`-device isa-debug-exit: iosize=${size} is not 1, 2 or 4`);
  if (port + size > 0x10000) throw new UsageError(`-device isa-debug-exit: iobase=${port} is not an I/O port`);
  return { kind: 'debug-exit', port, size };
}

/** `file=PATH,format=raw[,readonly=on][,serial=ID]` (the `if` and `id` already taken). */
function driveDisk(list: QemuList, text: string): DeviceConfig {
  const path = take(list, 'file');
  if (path === undefined || path === '') throw new UsageError(`-drive ${text}: no file=`);
  const format = take(list, 'format');
  if (format !== undefined && format !== 'raw') throw new UsageError(`-drive ${text}: format=${format}: tsvmm reads raw images only`);
  const readonly = take(list, 'readonly');
  const media = take(list, 'media');
  if (media !== undefined && media !== 'disk') throw new UsageError(`-drive ${text}: media=${media}: tsvmm has disks only`);
  const id = take(list, 'serial');
  refuseLeftovers('drive', list, path);
  return { kind: 'virtio-blk', path, readOnly: readonly === undefined ? undefined : parseOnOff('drive', 'readonly', readonly), id };
}

/** `tap,ifname=TAP[,script=no,downscript=no][,vhost=on|off]` with the device's `mac=`. tsvmm never runs network scripts. */
function tapNic(list: QemuList, mac: string | undefined): DeviceConfig {
  const tap = take(list, 'ifname');
  if (tap === undefined) throw new UsageError('-netdev tap: ifname= is required (tsvmm uses an existing tap; create it first)');
  for (const key of ['script', 'downscript']) {
    const script = take(list, key);
    if (script !== undefined && script !== 'no') throw new UsageError(`-netdev tap: ${key}=${script}: tsvmm runs no scripts; give ${key}=no`);
  }
  const vhost = take(list, 'vhost');
  refuseLeftovers('netdev', list, 'tap');
  if (mac !== undefined) {
    try {
      parseMac(mac);
    } catch (e) {
      throw new UsageError(`-device virtio-net-pci: ${(e as Error).message}`);
    }
  }
  return { kind: 'virtio-net', tap, mac, vhost: vhost === undefined ? undefined : parseOnOff('netdev', 'vhost', vhost) };
}
