/**
 * Firecracker's API bodies and configuration file (its swagger,
 * src/firecracker/swagger/firecracker.yaml), as one set of schemas that
 * every way in shares: the API server, `--config-file`, and the library's
 * `VmResources`. Unknown fields are refused. Fields Firecracker defines
 * that tsvmm cannot honour yet are refused with a sentence saying so,
 * never silently ignored.
 */
import { z } from 'zod';
import { MAX_CPUS } from '../vmm/config.js';

/** A field tsvmm knows but cannot honour: present at all, it fails with `why`. */
const notYet = (why: string) =>
  z.unknown().superRefine((_, ctx) => ctx.addIssue({ code: 'custom', message: why })).optional();

/** Firecracker's TokenBucket: `size` tokens, refilled in `refill_time` ms; size 0 or refill_time 0 sets no limit. */
const TokenBucketBody = z.strictObject({ size: z.int().min(0), one_time_burst: z.int().min(0).optional(), refill_time: z.int().min(0) });
export const RateLimiterBody = z.strictObject({ bandwidth: TokenBucketBody.optional(), ops: TokenBucketBody.optional() });
export type RateLimiterBody = z.infer<typeof RateLimiterBody>;
const rateLimiter = RateLimiterBody.optional();
const notYetLimited = notYet('a rate limiter on this device is not supported by tsvmm yet; leave the field out');
const hostPath = z.string().min(1, 'must be a path, not empty');
const id = z.string().regex(/^[A-Za-z0-9_]{1,64}$/, 'must be 1 to 64 letters, digits or underscores');
/** A field that may only hold its off/default value in tsvmm. */
const onlyValue = <T extends string | boolean>(value: T, why: string) =>
  z.union([z.literal(value), z.unknown().superRefine((_, ctx) => ctx.addIssue({ code: 'custom', message: why }))]).optional();

export const BootSourceBody = z.strictObject({
  kernel_image_path: hostPath,
  initrd_path: hostPath.optional(),
  boot_args: z.string().optional(),
});

/** tsvmm's own (PUT /tsvmm/raw-boot): a raw binary loaded at an address and entered in a CPU mode, as `tsvmm run --raw`. */
export const RawBootBody = z.strictObject({
  image_path: hostPath,
  mode: z.enum(['real', 'protected', 'long']),
  load_addr: z.int().min(0).max(2 ** 32 - 1),
  entry: z.int().min(0).max(2 ** 32 - 1).optional(),
});

const machineConfigFields = {
  vcpu_count: z.int().min(1).max(MAX_CPUS),
  mem_size_mib: z.int().min(2).max(1 << 22),
  smt: onlyValue(false, 'SMT is not supported by tsvmm; each vCPU is a core of its own'),
  track_dirty_pages: z.boolean().optional(),
  huge_pages: onlyValue('None', 'huge pages are not supported by tsvmm yet; use None'),
  cpu_template: onlyValue('None', 'Firecracker\'s CPU templates are not offered; tsvmm passes the host CPU (None)'),
};
export const MachineConfigBody = z.strictObject(machineConfigFields);
export const MachineConfigPatch = z.strictObject(machineConfigFields).partial();

export const DriveBody = z.strictObject({
  drive_id: id,
  is_root_device: z.boolean(),
  partuuid: z.string().optional(),
  is_read_only: z.boolean().optional(),
  path_on_host: hostPath,
  cache_type: z.enum(['Unsafe', 'Writeback']).optional(),
  io_engine: onlyValue('Sync', 'the Async io_engine is not supported by tsvmm; use Sync'),
  rate_limiter: rateLimiter,
  socket: notYet('vhost-user-block is not supported by tsvmm; give path_on_host'),
});
export const DrivePatch = z.strictObject({
  drive_id: id,
  path_on_host: hostPath.optional(),
  rate_limiter: rateLimiter,
});

export const NetworkInterfaceBody = z.strictObject({
  iface_id: id,
  host_dev_name: z.string().min(1).max(15),
  guest_mac: z.string().optional(),
  mtu: notYet('advertising an MTU is not supported by tsvmm yet'),
  rx_rate_limiter: rateLimiter,
  tx_rate_limiter: rateLimiter,
});
export const NetworkInterfacePatch = z.strictObject({ iface_id: id, rx_rate_limiter: rateLimiter, tx_rate_limiter: rateLimiter });

export const VsockBody = z.strictObject({
  guest_cid: z.int().min(3).max(0xffffffff),
  uds_path: hostPath,
  vsock_id: z.string().optional(), // deprecated by Firecracker, still accepted
});

export const EntropyBody = z.strictObject({ rate_limiter: notYetLimited });
export const SerialBody = z.strictObject({ serial_out_path: hostPath.optional(), rate_limiter: notYetLimited });

export const LOG_LEVELS = ['Error', 'Warning', 'Info', 'Debug', 'Trace', 'Off'] as const;
export const LoggerBody = z.strictObject({
  // The swagger says the values are case-insensitive.
  level: z.string().transform((text, ctx) => {
    const level = LOG_LEVELS.find((l) => l.toLowerCase() === text.toLowerCase());
    if (level === undefined) ctx.addIssue({ code: 'custom', message: `must be one of ${LOG_LEVELS.join(', ')}` });
    return level ?? 'Info';
  }).optional(),
  log_path: hostPath.optional(),
  show_level: z.boolean().optional(),
  show_log_origin: z.boolean().optional(),
  module: z.string().optional(),
});

export const MetricsBody = z.strictObject({
  metrics_path: hostPath,
  emit_id: z.boolean().optional(),
  properties: z.record(z.string(), z.string()).optional(),
});

export const SnapshotCreateBody = z.strictObject({
  snapshot_path: hostPath,
  mem_file_path: hostPath,
  snapshot_type: z.enum(['Full', 'Diff']).optional(),
  version: z.string().optional(),
});

/** Firecracker's SnapshotLoadParams: the memory file as mem_backend (type File) or the older mem_file_path, one of the two. */
export const SnapshotLoadBody = z
  .strictObject({
    snapshot_path: hostPath,
    mem_file_path: hostPath.optional(),
    mem_backend: z
      .strictObject({
        backend_path: hostPath,
        backend_type: z.enum(['File', 'Uffd']).refine((t) => t === 'File', 'tsvmm maps the memory file itself (File); a userfaultfd handler (Uffd) is not supported'),
      })
      .optional(),
    /** Older name of track_dirty_pages. */
    enable_diff_snapshots: z.boolean().optional(),
    track_dirty_pages: z.boolean().optional(),
    resume_vm: z.boolean().optional(),
    /** A clone's own taps, in place of the snapshotted VM's. */
    network_overrides: z.array(z.strictObject({ iface_id: id, host_dev_name: z.string().min(1).max(15) })).optional(),
  })
  .refine((b) => (b.mem_file_path === undefined) !== (b.mem_backend === undefined), 'give the memory file as mem_backend or mem_file_path, one of the two');

export const ActionBody = z.strictObject({ action_type: z.enum(['FlushMetrics', 'InstanceStart', 'SendCtrlAltDel']) });
export const VmStateBody = z.strictObject({ state: z.enum(['Paused', 'Resumed']) });

/** Firecracker's configuration file (`--config-file`): the API's pre-boot bodies in one document. */
export const ConfigFile = z.strictObject({
  'boot-source': BootSourceBody,
  'machine-config': MachineConfigBody.optional(),
  drives: z.array(DriveBody).optional(),
  'network-interfaces': z.array(NetworkInterfaceBody).optional(),
  vsock: VsockBody.optional(),
  entropy: EntropyBody.optional(),
  serial: SerialBody.optional(),
  logger: LoggerBody.optional(),
  metrics: MetricsBody.optional(),
  balloon: notYet('the balloon device is not supported by tsvmm yet'),
  'cpu-config': notYet('custom CPU templates are not supported by tsvmm'),
  'mmds-config': notYet('MMDS is not supported by tsvmm yet'),
  pmem: notYet('pmem devices are not supported by tsvmm yet'),
  'memory-hotplug': notYet('memory hotplug is not supported by tsvmm'),
});

export type BootSourceBody = z.infer<typeof BootSourceBody>;
export type RawBootBody = z.infer<typeof RawBootBody>;
export type MachineConfigBody = z.infer<typeof MachineConfigBody>;
export type DriveBody = z.infer<typeof DriveBody>;
export type NetworkInterfaceBody = z.infer<typeof NetworkInterfaceBody>;
export type VsockBody = z.infer<typeof VsockBody>;
export type EntropyBody = z.infer<typeof EntropyBody>;
export type SerialBody = z.infer<typeof SerialBody>;
export type LoggerBody = z.infer<typeof LoggerBody>;
export type MetricsBody = z.infer<typeof MetricsBody>;
export type ConfigFile = z.infer<typeof ConfigFile>;

/** Input that does not match its schema, in one line naming the field. */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

/** Parses `value` with `schema`, or throws an InputError naming the first bad field (under `what`). */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue.path.length > 0 ? issue.path.join('.') : undefined;
  const message = issue.code === 'unrecognized_keys' ? `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}` : issue.message;
  throw new InputError(`${what}${field ? `: ${field}` : ''}: ${message}`);
}
