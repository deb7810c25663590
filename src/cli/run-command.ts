/**
 * `tsvmm run`: the default Linux guest, a kernel of your own (Linux bzImage
 * or vmlinux, or a multiboot kernel), or a raw binary in a chosen CPU mode.
 */
import { gunzipSync } from 'node:zlib';
import type { CpuMode } from '../arch/x86/cpu-modes.js';
import type { CpuTemplate } from '../arch/x86/cpu-template.js';
import { isMultiboot, type MultibootModule } from '../boot/multiboot.js';
import { isMultiboot2 } from '../boot/multiboot2.js';
import { parseConsoleMode } from '../console/console-mode.js';
import type { DeviceConfig } from '../config/machine-schema.js';
import { checkBlkId } from '../devices/virtio/blk.js';
import { parseMac } from '../devices/virtio/net.js';
import { checkGuestCid } from '../devices/virtio/vsock.js';
import { checkFwCfgName, type FwCfgFile } from '../devices/legacy/fw-cfg-content.js';
import { guestCommandParameter } from '../guest/init-script.js';
import { stderrProgress } from '../guest/progress.js';
import { hostBackend } from '../host/backend-kind.js';
import { defaultDevicesFor, MAX_CPUS, type BootSource } from '../vmm/config.js';
import { UsageError } from './fail.js';
import { rateLimiterOptionNames, RateLimiterFlags } from './rate-limiter-flags.js';
import { parseAddress, parseCount, parseMemorySize, parseWebFlags, readUserFile } from './parse.js';
import { runMachine, type RunFlags } from './run-machine.js';
import { handleFirecrackerRequest } from '../api/firecracker-api.js';
import { HttpUnixServer } from '../api/http-unix-server.js';
import { VmmController } from '../api/vmm-controller.js';
import { VmResources } from '../config/vm-resources.js';
import { readConfigFile } from './serve-command.js';
import { loadSnapshot, type LoadedSnapshot } from '../snapshot/vm-snapshot.js';

export interface RunOptions extends Omit<RunFlags, 'console' | 'linux' | 'onMachine' | 'exitStatus' | 'tripleFaultResets' | 'web'> {
  console: string;
  web?: string;
  webToken?: string;
  raw?: string;
  mode?: CpuMode;
  loadAddr?: string;
  entry?: string;
  user?: boolean;
  kernel?: string;
  initrd?: string;
  append?: string;
  module: string[];
  mem?: string;
  cpus: string;
  cpuTemplate: CpuTemplate;
  testDevice?: string;
  disk: string[];
  net: string[];
  fwCfg: string[];
  vsock?: string;
  onReboot: 'exit' | 'restart';
  configFile?: string;
  apiSock?: string;
  restore?: string;
  restoreMem?: string;
  netOverride: string[];
  trackDirtyPages?: boolean;
}

// Serial console, and a panic reboots at once (the VMM sees the panic line and reports it).
const LINUX_BASE_CMDLINE = 'console=ttyS0 panic=-1';
const LINUX_DEFAULT_MEMORY = '512M';
const BARE_METAL_DEFAULT_MEMORY = '128M';
const RAW_DEFAULT_MODE: CpuMode = 'long';
const RAW_DEFAULT_LOAD_ADDRESS = '0x100000';

export async function runCommand(opts: RunOptions, command: string[]): Promise<number> {
  if (opts.restoreMem !== undefined && opts.restore === undefined) throw new UsageError('--restore-mem goes with --restore STATE-FILE');
  if (opts.netOverride.length > 0 && opts.restore === undefined) throw new UsageError('--net-override goes with --restore STATE-FILE');
  const restored = opts.restore === undefined ? undefined : restoreSnapshot(opts, command);
  const config = restored?.config ?? (opts.configFile === undefined ? await configFromFlags(opts, command) : configFromFile(opts, command));
  // A snapshot makes the first machine; a reboot after it starts the guest afresh.
  const flags: RunFlags = {
    ...opts, console: parseConsoleMode(opts.console), linux: config.boot.kind === 'linux',
    snapshot: restored, web: parseWebFlags(opts),
  };
  if (opts.apiSock === undefined) return runMachine(config, flags);
  // The API sees the machine this command built, running.
  const vmm = new VmmController(new VmResources(), () => {
    throw new UsageError('this VM was started by tsvmm run');
  });
  const server = await HttpUnixServer.listen(opts.apiSock, (request) => handleFirecrackerRequest(vmm, request));
  try {
    return await runMachine(config, {
      ...flags,
      onMachine: (machine) => {
        flags.onMachine?.(machine);
        vmm.adopt(machine, config);
      },
    });
  } finally {
    vmm.metrics.flush();
    vmm.metrics.close();
    await server.close();
  }
}

/** The flags that would describe the machine, when something else (a config file, a snapshot) already does. */
function describingFlags(opts: RunOptions, command: string[]): string[] {
  const flag = (name: string) => `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  const clashing = [
    ...(['raw', 'kernel', 'initrd', 'append', 'mem', 'vsock', 'testDevice'] as const).filter((k) => opts[k] !== undefined).map(flag),
    ...(['disk', 'net', 'module', 'fwCfg'] as const).filter((k) => opts[k].length > 0).map(flag),
    ...(opts.cpus !== '1' ? ['--cpus'] : []),
    ...(command.length > 0 ? ['the command after --'] : []),
  ];
  return clashing;
}

/** --config-file describes the whole machine: the flags that would also describe it are refused. */
function configFromFile(opts: RunOptions, command: string[]): RunConfig {
  const clashing = describingFlags(opts, command);
  if (clashing.length > 0) throw new UsageError(`--config-file describes the VM; drop ${clashing.join(', ')}`);
  const config = readConfigFile(opts.configFile!).machineConfig();
  return { ...config, trackDirtyPages: config.trackDirtyPages || opts.trackDirtyPages };
}

/** --restore STATE --restore-mem MEMORY: the snapshot describes the machine, and its state goes into it. */
function restoreSnapshot(opts: RunOptions, command: string[]): LoadedSnapshot {
  const clashing = [...describingFlags(opts, command), ...(opts.configFile !== undefined ? ['--config-file'] : [])];
  if (clashing.length > 0) throw new UsageError(`--restore describes the VM; drop ${clashing.join(', ')}`);
  if (opts.restoreMem === undefined) throw new UsageError('--restore needs --restore-mem, the snapshot\'s memory file');
  const networkOverrides = opts.netOverride.map((text) => {
    const m = /^([^=]+)=(.{1,15})$/.exec(text);
    if (m === null) throw new UsageError(`--net-override '${text}': give IFACE=TAP, e.g. net0=tap1 (a tap name has 1 to 15 characters)`);
    return { ifaceId: m[1], tap: m[2] };
  });
  return loadSnapshot(opts.restore!, opts.restoreMem).withOverrides({ trackDirtyPages: opts.trackDirtyPages || undefined, networkOverrides });
}

type RunConfig = Parameters<typeof runMachine>[0];

async function configFromFlags(opts: RunOptions, command: string[]): Promise<RunConfig> {
  const disks = opts.disk.map(parseDisk);
  const nics = opts.net.map(parseNet);
  const vsock = opts.vsock === undefined ? [] : [parseVsock(opts.vsock)];
  const fwCfgFiles = opts.fwCfg.map((text) => parseFwCfg(text));
  const boot = await bootSource(opts, command);
  const devices: DeviceConfig[] = [...withFwCfgFiles(defaultDevicesFor(boot), fwCfgFiles), ...disks, ...nics, ...vsock];
  if (opts.testDevice !== undefined) devices.push({ kind: 'test-device', base: parseAddress('--test-device')(opts.testDevice) });
  const memory = parseMemorySize(opts.mem ?? (boot.kind === 'linux' ? LINUX_DEFAULT_MEMORY : BARE_METAL_DEFAULT_MEMORY));
  return { memory, cpus: parseCount('--cpus', MAX_CPUS)(opts.cpus), cpuTemplate: opts.cpuTemplate, boot, devices, trackDirtyPages: opts.trackDirtyPages };
}

/** `--disk PATH[,ro][,id=NAME][,bw_size=N,...]`; the image itself is opened when the machine is built. */
export function parseDisk(text: string): DeviceConfig {
  const [path, ...options] = text.split(',');
  if (path === '') throw new UsageError(`--disk: '${text}' names no image file`);
  const disk: Extract<DeviceConfig, { kind: 'virtio-blk' }> = { kind: 'virtio-blk', path };
  const limits = new RateLimiterFlags('--disk', ['']);
  for (const option of options) {
    const [key, value = ''] = option.split(/=(.*)/s);
    if (limits.take(key, value)) continue;
    if (option === 'ro') {
      disk.readOnly = true;
    } else if (option.startsWith('id=')) {
      disk.id = option.slice('id='.length);
      try {
        checkBlkId(disk.id);
      } catch (e) {
        throw new UsageError(`--disk: ${(e as Error).message}`);
      }
    } else {
      throw new UsageError(`--disk: unknown option '${option}' in '${text}' (expected ro, id=NAME or ${rateLimiterOptionNames()})`);
    }
  }
  const rateLimiter = limits.limiter();
  return rateLimiter ? { ...disk, rateLimiter } : disk;
}

/** `--net tap=NAME[,mac=MAC][,vhost=on|off][,rx_bw_size=N,...]`; the tap is opened when the machine is built. */
export function parseNet(text: string): DeviceConfig {
  const nic: Partial<Extract<DeviceConfig, { kind: 'virtio-net' }>> = {};
  const limits = new RateLimiterFlags('--net', ['rx_', 'tx_']);
  for (const option of text.split(',')) {
    const [key, value = ''] = option.split(/=(.*)/s);
    if (limits.take(key, value)) continue;
    if (key === 'tap' && value !== '') nic.tap = value;
    else if (key === 'mac') {
      try {
        parseMac(value);
      } catch (e) {
        throw new UsageError(`--net: ${(e as Error).message}`);
      }
      nic.mac = value;
    } else if (key === 'vhost' && (value === 'on' || value === 'off')) {
      nic.vhost = value === 'on';
    } else throw new UsageError(`--net: unknown option '${option}' in '${text}' (expected tap=NAME, mac=MAC, vhost=on|off or ${rateLimiterOptionNames('rx_|tx_')})`);
  }
  if (nic.tap === undefined) throw new UsageError(`--net: '${text}' names no tap (tap=NAME)`);
  const [rx, tx] = [limits.limiter('rx_'), limits.limiter('tx_')];
  if ((rx || tx) && nic.vhost === true) throw new UsageError(`--net: '${text}': vhost=on moves frames in the host kernel, where tsvmm cannot rate-limit them; leave vhost out with a rate limiter`);
  return { kind: 'virtio-net', tap: nic.tap, mac: nic.mac, vhost: nic.vhost, ...(rx && { rxRateLimiter: rx }), ...(tx && { txRateLimiter: tx }) };
}

/** `--fw-cfg [name=]NAME,file=PATH` or `--fw-cfg [name=]NAME,string=TEXT` (TEXT runs to the end), as QEMU's -fw_cfg. */
export function parseFwCfg(text: string, flag = '--fw-cfg'): FwCfgFile {
  const match = /^(?:name=)?([^,]+),(file|string)=(.*)$/s.exec(text);
  if (match === null) throw new UsageError(`${flag}: '${text}' is not NAME,file=PATH or NAME,string=TEXT`);
  const [, name, kind, value] = match;
  try {
    checkFwCfgName(name);
  } catch (e) {
    throw new UsageError(`${flag}: ${(e as Error).message}`);
  }
  return { name, data: kind === 'file' ? readUserFile(`${flag} ${name}`, value) : Buffer.from(value, 'utf8') };
}

/** The user's fw_cfg files go to the machine's fw_cfg device, which a Linux guest gets only when it has some. */
function withFwCfgFiles(devices: DeviceConfig[], files: FwCfgFile[]): DeviceConfig[] {
  if (files.length === 0) return devices;
  const others = devices.filter((d) => d.kind !== 'fw-cfg');
  return [...others, { kind: 'fw-cfg', files }];
}

/** `--vsock cid=N[,uds=PATH]`. */
export function parseVsock(text: string): DeviceConfig {
  let cid: number | undefined;
  let uds: string | undefined;
  for (const option of text.split(',')) {
    const [key, value = ''] = option.split(/=(.*)/s);
    if (key === 'cid' && /^\d+$/.test(value)) cid = Number(value);
    else if (key === 'uds' && value !== '') uds = value;
    else throw new UsageError(`--vsock: unknown option '${option}' in '${text}' (expected cid=N or uds=PATH)`);
  }
  if (cid === undefined) throw new UsageError(`--vsock: '${text}' gives no guest CID (cid=N)`);
  try {
    checkGuestCid(cid);
  } catch (e) {
    throw new UsageError(`--vsock: ${(e as Error).message}`);
  }
  return { kind: 'virtio-vsock', cid, uds };
}

async function bootSource(opts: RunOptions, command: string[]): Promise<BootSource> {
  if (opts.raw !== undefined && opts.kernel !== undefined) throw new UsageError('give either --raw or --kernel, not both');
  if (command.length > 0 && (opts.raw !== undefined || opts.kernel !== undefined)) {
    throw new UsageError('a command after -- runs in the default guest; it cannot be given with --raw or --kernel');
  }
  // A flag for another kind of guest would be dropped without a word.
  const rawOnly = (['mode', 'loadAddr', 'entry', 'user'] as const).filter((k) => opts[k] !== undefined);
  if (opts.raw === undefined && rawOnly.length > 0) {
    throw new UsageError(`${rawOnly.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')}: for --raw images only`);
  }
  if (opts.raw !== undefined) {
    const kernelOnly = [...(opts.initrd !== undefined ? ['--initrd'] : []), ...(opts.append !== undefined ? ['--append'] : []), ...(opts.module.length > 0 ? ['--module'] : [])];
    if (kernelOnly.length > 0) throw new UsageError(`${kernelOnly.join(', ')}: for --kernel only; a raw image has no command line or files`);
    const mode = opts.mode ?? RAW_DEFAULT_MODE;
    if (opts.user && mode !== 'long') throw new UsageError('--user needs --mode long');
    return {
      kind: 'raw',
      image: readUserFile('raw image', opts.raw),
      mode,
      loadAddr: parseAddress('--load-addr')(opts.loadAddr ?? RAW_DEFAULT_LOAD_ADDRESS),
      entry: opts.entry === undefined ? undefined : parseAddress('--entry')(opts.entry),
      user: opts.user,
    };
  }
  if (opts.kernel !== undefined) {
    const image = readUserFile('kernel', opts.kernel);
    // Version 2 when the kernel has both headers, the richer boot information.
    const multiboot = isMultiboot2(image) ? 2 : isMultiboot(image) ? 1 : undefined;
    // A file given for the other kind of kernel would be dropped without a word.
    if (multiboot && opts.initrd !== undefined) throw new UsageError('--initrd is for Linux kernels; give a multiboot kernel its files with --module');
    if (!multiboot && opts.module.length > 0) throw new UsageError('--module is for multiboot kernels; give a Linux kernel its initramfs with --initrd');
    if (multiboot) {
      // Command lines as the loader each version is written against gives them: QEMU's -kernel (version 1)
      // puts the file's path first, GRUB 2's multiboot2 and module2 give only the arguments.
      const withPath = multiboot === 1;
      const modules: MultibootModule[] = opts.module.map((spec) => {
        const [path, ...args] = spec.split(',');
        return { data: readUserFile('module', path), cmdline: (withPath ? [path, ...args] : args).join(' ') };
      });
      const cmdline = withPath ? `${opts.kernel} ${opts.append ?? ''}` : opts.append ?? '';
      return { kind: 'multiboot', image, cmdline, modules, version: multiboot };
    }
    return linuxSource(image, opts.initrd === undefined ? undefined : readUserFile('initrd', opts.initrd), opts.append, []);
  }
  // Loaded only here: the guest builder pulls in the .deb and tar readers.
  const { ensureDefaultGuest } = await import('../guest/default-guest.js');
  const progress = stderrProgress();
  const guest = await ensureDefaultGuest({ progress }).finally(() => progress.clear());
  // The initramfs goes to the kernel uncompressed: gunzip is quick here and slow in a guest.
  const initrd = gunzipSync(readUserFile('initrd', guest.initrd));
  return linuxSource(readUserFile('kernel', guest.kernel), initrd, opts.append, command);
}

function linuxSource(kernel: Uint8Array, initrd: Uint8Array | undefined, append: string | undefined, command: string[]): BootSource {
  const parts = [LINUX_BASE_CMDLINE];
  // `quiet` keeps the kernel's messages out of the command's output. On a software backend the
  // command never runs (user space cannot), and the boot is minutes long: there the kernel's log is
  // the progress, and its report of init's fault is what tsvmm explains.
  if (command.length > 0) parts.push(...(hostBackend().kind === 'software' ? [] : ['quiet']), guestCommandParameter(command));
  if (append) parts.push(append);
  return { kind: 'linux', kernel, initrd, cmdline: parts.join(' ') };
}
