/**
 * The library's machine configuration (MachineConfig) as a schema, checked
 * by buildMachine before it opens /dev/kvm: counts and sizes in range,
 * the files a device names there and readable, device options that fit
 * their device, nothing unknown. The CLI and the Firecracker front ends
 * fill the same configuration, so every input ends up checked by it.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { z } from 'zod';
import { checkCpuFeature } from '../arch/x86/cpu-features.js';
import { cpuTemplates } from '../arch/x86/cpu-template.js';
import { checkFwCfgName } from '../devices/legacy/fw-cfg-content.js';
import { checkBlkId } from '../devices/virtio/blk.js';
import { parseMac } from '../devices/virtio/net.js';
import { RateLimiter } from '../devices/virtio/rate-limiter.js';
import { checkGuestCid } from '../devices/virtio/vsock.js';
import { MiB } from '../memory/layout.js';
import { MAX_CPUS } from '../vmm/config.js';

/** A check from a device's own module, as a refinement: its error message becomes the field's. */
const checkedBy = <T>(check: (value: T) => unknown) => (value: T, ctx: z.RefinementCtx) => {
  try {
    check(value);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
  }
};

/** A file the VMM will open: there, a regular file, readable (and writable when asked). */
const readableFile = (writable: (config: { readOnly?: boolean }) => boolean) => (config: { path: string; readOnly?: boolean }, ctx: z.RefinementCtx) => {
  try {
    if (!statSync(config.path).isFile()) throw new Error('is not a regular file');
    accessSync(config.path, constants.R_OK | (writable(config) ? constants.W_OK : 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
    ctx.addIssue({ code: 'custom', path: ['path'], message: `'${config.path}': ${why}` });
  }
};

const address = z.int().min(0).max(Number.MAX_SAFE_INTEGER);
const port = z.int().min(0).max(0xffff);
const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'must be a Uint8Array');

const tokenBucket = z.strictObject({ size: z.int().min(0), oneTimeBurst: z.int().min(0).optional(), refillTimeMs: z.int().min(0) });
/** Firecracker's rate_limiter (src/devices/virtio/rate-limiter.ts): bytes and operations, each a token bucket. */
const rateLimiter = z.strictObject({ bandwidth: tokenBucket.optional(), ops: tokenBucket.optional() });

export const DeviceConfigSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('serial'), base: port.optional(), irq: z.int().min(0).max(15).optional() }),
  z.strictObject({ kind: z.literal('i8042') }),
  z.strictObject({ kind: z.literal('rtc'), ramBytes: z.int().min(0).optional() }),
  z.strictObject({ kind: z.literal('debug-exit'), port: port.optional(), mmio: address.optional(), size: z.int().refine((n) => [1, 2, 4].includes(n), 'must be 1, 2 or 4').optional() }),
  z.strictObject({ kind: z.literal('test-device'), base: address }),
  z.strictObject({ kind: z.literal('acpi-pm'), base: port.optional() }),
  z.strictObject({ kind: z.literal('vmgenid') }),
  z.strictObject({ kind: z.literal('fw-cfg'), files: z.array(z.strictObject({ name: z.string().superRefine(checkedBy(checkFwCfgName)), data: bytes })).optional() }),
  z.strictObject({ kind: z.literal('virtio-rng') }),
  z.strictObject({
    kind: z.literal('virtio-blk'), path: z.string().min(1), readOnly: z.boolean().optional(), id: z.string().superRefine(checkedBy(checkBlkId)).optional(),
    rateLimiter: rateLimiter.optional(),
  }).superRefine(readableFile((c) => !c.readOnly)),
  z.strictObject({
    kind: z.literal('virtio-net'), tap: z.string().min(1).max(15), id: z.string().min(1).optional(), mac: z.string().superRefine(checkedBy(parseMac)).optional(), vhost: z.boolean().optional(),
    rxRateLimiter: rateLimiter.optional(), txRateLimiter: rateLimiter.optional(),
  }).superRefine((c, ctx) => {
    if (c.vhost === true && (RateLimiter.limits(c.rxRateLimiter) || RateLimiter.limits(c.txRateLimiter))) {
      ctx.addIssue({ code: 'custom', path: ['vhost'], message: 'vhost-net moves frames in the host kernel, where tsvmm cannot rate-limit them: leave vhost out (or off) with a rate limiter' });
    }
  }),
  z.strictObject({ kind: z.literal('virtio-vsock'), cid: z.int().superRefine(checkedBy(checkGuestCid)), uds: z.string().min(1).optional() }),
  z.strictObject({ kind: z.literal('pc-testdev') }),
  z.strictObject({ kind: z.literal('pci-testdev') }),
]);

/** A device as the user configures it (the builder adds what it opens and places). */
export type DeviceConfig = z.infer<typeof DeviceConfigSchema>;

const BootSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('raw'), image: bytes, mode: z.enum(['real', 'protected', 'long']), loadAddr: address,
    entry: address.optional(), user: z.boolean().optional(),
  }),
  z.strictObject({
    kind: z.literal('multiboot'), image: bytes, cmdline: z.string().optional(),
    modules: z.array(z.strictObject({ data: bytes, cmdline: z.string() })).optional(), version: z.union([z.literal(1), z.literal(2)]).optional(),
  }),
  z.strictObject({ kind: z.literal('linux'), kernel: bytes, initrd: bytes.optional(), cmdline: z.string().optional() }),
]);

export const MachineConfigSchema = z.strictObject({
  memory: z.int().min(MiB).max(2 ** 40).refine((n) => n % 4096 === 0, 'must be a multiple of 4 KiB'),
  cpus: z.int().min(1).max(MAX_CPUS),
  boot: BootSchema,
  devices: z.array(DeviceConfigSchema).optional(),
  console: z.function().optional(),
  timeExits: z.boolean().optional(),
  traceFd: z.int().min(-1).optional(),
  cpuTemplate: z.enum(cpuTemplates).optional(),
  cpuFeatures: z.record(z.string(), z.boolean()).superRefine((features, ctx) => {
    for (const name of Object.keys(features)) {
      try {
        checkCpuFeature(name);
      } catch (e) {
        ctx.addIssue({ code: 'custom', path: [name], message: (e as Error).message });
      }
    }
  }).optional(),
  emulationAssist: z.boolean().optional(),
  trackDirtyPages: z.boolean().optional(),
});
