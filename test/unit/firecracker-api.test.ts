/**
 * Firecracker's API as tsvmm serves it, on a real Unix socket with the
 * typed client, over a stand-in machine (no KVM needed): paths, methods,
 * status codes, fault messages, pre-boot rules, limits, metrics, the
 * configuration a start hands the library.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FirecrackerApiError, FirecrackerClient } from '../../src/api/firecracker-client.js';
import { handleFirecrackerRequest } from '../../src/api/firecracker-api.js';
import { HttpUnixServer } from '../../src/api/http-unix-server.js';
import { VmmController, type Launcher } from '../../src/api/vmm-controller.js';
import { DEFAULT_BOOT_ARGS, VmResources } from '../../src/config/vm-resources.js';
import type { MachineConfig } from '../../src/vmm/config.js';
import type { Machine } from '../../src/vmm/machine.js';
import { writeStateFile } from '../../src/snapshot/snapshot-file.js';
import { TSVMM_VERSION } from '../../src/version.js';

const dir = mkdtempSync(join(tmpdir(), 'tsvmm-api-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, bytes = 16) => {
  const path = join(dir, name);
  writeFileSync(path, new Uint8Array(bytes));
  return path;
};
const kernel = file('vmlinux');
const rootfs = file('rootfs.ext4', 4096);
const data = file('data.img', 4096);

/** A machine stand-in: the state the API reads, pause and resume. */
function fakeMachine(): Machine {
  let state = 'running';
  return {
    get state() { return state; },
    started: Promise.resolve(),
    pause: async () => void (state = 'paused'),
    resume: () => void (state = 'running'),
    exitStats: () => ({ rows: [{ reason: 'IO', count: 7, handlingNs: 0 }], total: 7, guestNs: 0, assisted: 0 }),
    deviceStats: () => [{ device: 'virtio-blk.0', queues: [{ chains: 3, bytes: 1536 }] }],
  } as unknown as Machine;
}

interface Served {
  client: FirecrackerClient;
  launched: Omit<MachineConfig, 'console'>[];
  sock: string;
}

let serial = 0;
async function serve(failStart?: string): Promise<Served> {
  const launched: Omit<MachineConfig, 'console'>[] = [];
  const launcher: Launcher = (config) => {
    launched.push(config);
    if (failStart) return { machine: Promise.reject(new Error(failStart)), ended: new Promise(() => {}) };
    return { machine: Promise.resolve(fakeMachine()), ended: new Promise(() => {}) };
  };
  const vmm = new VmmController(new VmResources(), launcher);
  const sock = join(dir, `api-${serial++}.sock`);
  const server = await HttpUnixServer.listen(sock, (r) => handleFirecrackerRequest(vmm, r));
  after(() => server.close());
  return { client: new FirecrackerClient(sock), launched, sock };
}

async function refused(call: Promise<unknown>, message: RegExp, status = 400): Promise<void> {
  await assert.rejects(call, (e: unknown) => {
    assert.ok(e instanceof FirecrackerApiError, String(e));
    assert.equal(e.status, status);
    assert.match(e.faultMessage, message);
    return true;
  });
}

/** A raw request, for what the client would not send. */
function raw(sock: string, method: string, path: string, body: string): Promise<{ status: number; json: { fault_message?: string } }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: sock, method, path, headers: { 'Content-Type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, json: text ? JSON.parse(text) : {} }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('an idle VMM: instance info, version, machine-config defaults', async () => {
  const { client } = await serve();
  assert.deepEqual(await client.describeInstance(), { id: 'anonymous-instance', state: 'Not started', vmm_version: TSVMM_VERSION, app_name: 'tsvmm' });
  assert.match((await client.version()).firecracker_version, /^\d+\.\d+\.\d+$/);
  assert.deepEqual(await client.getMachineConfig(), { vcpu_count: 1, mem_size_mib: 128, smt: false, track_dirty_pages: false, huge_pages: 'None' });
});

test('configured, started, paused and resumed; the library gets the configuration Firecracker\'s bodies describe', async () => {
  const { client, launched } = await serve();
  await client.putMachineConfig({ vcpu_count: 2, mem_size_mib: 256 });
  await client.patchMachineConfig({ mem_size_mib: 512 });
  await client.putBootSource({ kernel_image_path: kernel, boot_args: 'console=ttyS0' });
  await client.putDrive({ drive_id: 'data', path_on_host: data, is_root_device: false, is_read_only: true, rate_limiter: { ops: { size: 100, refill_time: 1000, one_time_burst: 50 } } });
  await client.putDrive({ drive_id: 'rootfs', path_on_host: rootfs, is_root_device: true, is_read_only: false });
  await client.putNetworkInterface({ iface_id: 'eth0', host_dev_name: 'tap0', guest_mac: '06:00:ac:10:00:02', tx_rate_limiter: { bandwidth: { size: 1 << 20, refill_time: 100 } } });
  await client.putVsock({ guest_cid: 3, uds_path: join(dir, 'v.sock') });
  await client.putEntropy();
  await refused(client.call('PATCH', '/drives/data', { drive_id: 'data', rate_limiter: { ops: { size: 1, refill_time: 1 } } }), /not supported before starting/);
  await client.startInstance();
  assert.equal((await client.describeInstance()).state, 'Running');
  await client.pause();
  assert.equal((await client.describeInstance()).state, 'Paused');
  await client.resume();
  assert.equal((await client.describeInstance()).state, 'Running');

  assert.equal(launched.length, 1);
  const config = launched[0];
  assert.equal(config.cpus, 2);
  assert.equal(config.memory, 512 << 20);
  assert.ok(config.boot.kind === 'linux');
  assert.equal(config.boot.cmdline, 'console=ttyS0 root=/dev/vda rw', 'the root drive named as Firecracker names it');
  assert.deepEqual(config.devices!.filter((d) => d.kind.startsWith('virtio')), [
    { kind: 'virtio-rng' },
    { kind: 'virtio-blk', path: rootfs, readOnly: false, id: 'rootfs' }, // the root drive first: /dev/vda
    { kind: 'virtio-blk', path: data, readOnly: true, id: 'data', rateLimiter: { bandwidth: undefined, ops: { size: 100, oneTimeBurst: 50, refillTimeMs: 1000 } } },
    { kind: 'virtio-net', tap: 'tap0', id: 'eth0', mac: '06:00:ac:10:00:02', txRateLimiter: { bandwidth: { size: 1 << 20, oneTimeBurst: undefined, refillTimeMs: 100 }, ops: undefined } },
    { kind: 'virtio-vsock', cid: 3, uds: join(dir, 'v.sock') },
  ]);
  const full = await client.vmConfig();
  assert.deepEqual(Object.keys(full).sort(), ['boot-source', 'drives', 'entropy', 'machine-config', 'network-interfaces', 'vsock']);
});

test('pre-boot requests refused after the start, post-boot ones before, as Firecracker words it', async () => {
  const { client } = await serve();
  await refused(client.pause(), /^The requested operation is not supported before starting the microVM\.$/);
  await refused(client.call('PATCH', '/drives/rootfs', { drive_id: 'rootfs' }), /not supported before starting/);
  await refused(client.startInstance(), /^Cannot start microvm without kernel configuration\.$/);
  await client.putBootSource({ kernel_image_path: kernel });
  await client.startInstance();
  await refused(client.putBootSource({ kernel_image_path: kernel }), /^The requested operation is not supported after starting the microVM\.$/);
  await refused(client.putMachineConfig({ vcpu_count: 1, mem_size_mib: 64 }), /not supported after starting/);
  await refused(client.startInstance(), /not supported after starting/);
  await refused(client.call('PATCH', '/drives/rootfs', { drive_id: 'rootfs', path_on_host: rootfs }), /changing a running drive's file is not supported/);
});

test('bad bodies: unknown fields, wrong types, what tsvmm cannot honour, missing files, each in one line naming the field', async () => {
  const { client, sock } = await serve();
  await refused(client.call('PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: 64, turbo: true }), /^machine-config: unknown field 'turbo'$/);
  await refused(client.call('PUT', '/machine-config', { vcpu_count: '2', mem_size_mib: 64 }), /^machine-config: vcpu_count: .*expected number/);
  await refused(client.call('PUT', '/machine-config', { vcpu_count: 2, mem_size_mib: 64, smt: true }), /smt: SMT is not supported by tsvmm/);
  await refused(client.call('PUT', '/drives/rootfs', { drive_id: 'rootfs', path_on_host: rootfs, is_root_device: true, rate_limiter: { bandwidth: { size: 1, refill_time: 1, burst: 5 } } }),
    /^drives\/rootfs: rate_limiter\.bandwidth: unknown field 'burst'/);
  await refused(client.call('PUT', '/entropy', { rate_limiter: { ops: { size: 1, refill_time: 1 } } }),
    /^entropy: rate_limiter: a rate limiter on this device is not supported by tsvmm yet; leave the field out$/);
  await refused(client.call('PUT', '/drives/a', { drive_id: 'b', path_on_host: rootfs, is_root_device: false }), /drive_id 'b' does not match the path's 'a'/);
  await refused(client.putBootSource({ kernel_image_path: join(dir, 'nope') }), /^boot-source: kernel_image_path '.*nope': no such file$/);
  await refused(client.putDrive({ drive_id: 'd', path_on_host: dir, is_root_device: false }), /is not a regular file/);
  await refused(client.putVsock({ guest_cid: 2, uds_path: join(dir, 'v.sock') }), /guest_cid: Too small|guest_cid/);
  await refused(client.putVsock({ guest_cid: 3, uds_path: join(dir, 'no-such-dir', 'v.sock') }), /its directory does not exist/);
  await refused(client.putNetworkInterface({ iface_id: 'eth0', host_dev_name: 'tap0', guest_mac: 'not-a-mac' }), /guest_mac/);
  await client.putDrive({ drive_id: 'root1', path_on_host: rootfs, is_root_device: true });
  await refused(client.putDrive({ drive_id: 'root2', path_on_host: data, is_root_device: true }), /drive 'root1' is already the root device/);
  await refused(client.action('SendCtrlAltDel'), /needs a PS\/2 keyboard/);
  await refused(client.call('PUT', '/actions', { action_type: 'Explode' }), /^actions: action_type: /);

  const unknown = await raw(sock, 'DELETE', '/boot-source', '');
  assert.deepEqual(unknown, { status: 400, json: { fault_message: 'Invalid request method and/or path: DELETE /boot-source.' } });
  const notJson = await raw(sock, 'PUT', '/boot-source', '{"kernel_image_path": ');
  assert.equal(notJson.status, 400);
  assert.match(notJson.json.fault_message!, /^An error occurred when deserializing the json body of a request: /);
  const big = await raw(sock, 'PUT', '/boot-source', JSON.stringify({ boot_args: 'x'.repeat(60_000) }));
  assert.deepEqual(big, { status: 400, json: { fault_message: 'Request payload with size 60016 is larger than the limit of 51200 allowed by server.' } });
});

test('PUT /snapshot/load: one memory file, as File; a missing or damaged snapshot, or one after configuring the machine, refused in one line', async () => {
  const { client, launched } = await serve();
  const state = file('vm.state', 64);
  const memory = file('vm.mem', 4096);
  await refused(client.call('PUT', '/snapshot/load', { snapshot_path: state }), /^snapshot\/load: give the memory file as mem_backend or mem_file_path, one of the two$/);
  await refused(client.call('PUT', '/snapshot/load', { snapshot_path: state, mem_file_path: memory, mem_backend: { backend_type: 'File', backend_path: memory } }), /one of the two/);
  await refused(client.call('PUT', '/snapshot/load', { snapshot_path: state, mem_backend: { backend_type: 'Uffd', backend_path: memory } }), /a userfaultfd handler \(Uffd\) is not supported/);
  await refused(client.loadSnapshot(join(dir, 'no.state'), memory), /^Cannot load the snapshot: snapshot '.*no.state': no such file$/);
  await refused(client.loadSnapshot(state, memory), /^Cannot load the snapshot: snapshot '.*vm.state' is not a tsvmm snapshot/);
  await client.putBootSource({ kernel_image_path: kernel });
  await refused(client.loadSnapshot(state, memory), /not allowed after configuring boot-specific resources/);
  assert.deepEqual(launched, [], 'nothing was started');
  assert.equal((await client.describeInstance()).state, 'Not started');
});

test('PUT /snapshot/load with network_overrides: the clone gets its own tap, an interface the snapshot lacks is refused', async () => {
  const state = join(dir, 'nets.state');
  const memory = file('nets.mem', 4096);
  const devices = [{ kind: 'serial' }, { kind: 'virtio-net', tap: 'tap-a', id: 'eth0' }, { kind: 'virtio-net', tap: 'tap-b' }];
  writeStateFile(state, { tsvmmVersion: TSVMM_VERSION, config: { memory: 1 << 20, cpus: 1, boot: { kind: 'raw' }, devices } });
  const body = (overrides: unknown) => ({ snapshot_path: state, mem_backend: { backend_type: 'File', backend_path: memory }, network_overrides: overrides });
  const bad = await serve();
  await refused(bad.client.call('PUT', '/snapshot/load', body([{ iface_id: 'net0', host_dev_name: 'tap-c' }])), /^Cannot load the snapshot: snapshot '.*nets.state' has no network interface 'net0' \(it has eth0, net1\)$/);
  await refused(bad.client.call('PUT', '/snapshot/load', body([{ iface_id: 'eth0', host_dev_name: 'a-tap-name-too-long' }])), /host_dev_name/);
  assert.deepEqual(bad.launched, []);
  const { client, launched } = await serve();
  await client.call('PUT', '/snapshot/load', body([{ iface_id: 'eth0', host_dev_name: 'tap-c' }]));
  assert.deepEqual(launched[0].devices, [devices[0], { ...devices[1], tap: 'tap-c' }, devices[2]]);
});

test('tsvmm\'s raw boot: a binary in a CPU mode instead of a kernel, with the debug-exit port', async () => {
  const { client, launched } = await serve();
  await refused(client.putRawBoot({ image_path: kernel, mode: 'unreal' as never, load_addr: 0x100000 }), /^tsvmm\/raw-boot: mode: /);
  await client.putRawBoot({ image_path: kernel, mode: 'long', load_addr: 0x100000 });
  await client.startInstance();
  const config = launched[0];
  assert.deepEqual({ ...config.boot, image: undefined }, { kind: 'raw', image: undefined, mode: 'long', loadAddr: 0x100000, entry: undefined });
  assert.ok(config.devices!.some((d) => d.kind === 'debug-exit'));
});

test('a start that fails reports why and leaves the VMM idle', async () => {
  const { client } = await serve('the tap tap0 does not exist');
  await client.putBootSource({ kernel_image_path: kernel });
  await refused(client.startInstance(), /^Failed to start microVM: the tap tap0 does not exist$/);
  assert.equal((await client.describeInstance()).state, 'Not started');
});

test('metrics: one JSON line per flush with the request counts and the VM exits; logger lines at the level asked', async () => {
  const { client } = await serve();
  const metrics = join(dir, 'metrics.json');
  const log = join(dir, 'log.json');
  await refused(client.action('FlushMetrics'), /metrics are not configured/);
  await client.putMetrics({ metrics_path: metrics });
  await refused(client.putMetrics({ metrics_path: metrics }), /Reinitialization of metrics not allowed/);
  await client.putLogger({ log_path: log, level: 'debug' as never });
  await client.putBootSource({ kernel_image_path: kernel });
  await client.startInstance();
  await client.action('FlushMetrics');
  const lines = readFileSync(metrics, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, 1);
  assert.equal(lines[0].api_server.put_boot_source, 1);
  assert.equal(lines[0].api_server.put_actions, 2, 'the failed flush and the start; this flush is counted after it is written');
  assert.equal(lines[0].api_server.failed_requests, 2);
  assert.deepEqual(lines[0].vcpu, { exit_io: 7 });
  assert.deepEqual(lines[0].devices, { 'virtio-blk.0': { queue0_chains: 3, queue0_bytes: 1536 } });
  const logLines = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(logLines.some((l) => l.msg === 'the microVM started' && l.level === 30));
  assert.ok(logLines.some((l) => /PUT \/actions: 204/.test(l.msg) && l.level === 20), 'debug lines, as asked');
});

test('a Firecracker configuration file: the same checks, and the default command line when none is given', () => {
  const config = (doc: unknown) => VmResources.fromConfigFile(JSON.stringify(doc), 'vm.json');
  const resources = config({ 'boot-source': { kernel_image_path: kernel }, 'machine-config': { vcpu_count: 2, mem_size_mib: 64 }, drives: [{ drive_id: 'rootfs', path_on_host: rootfs, is_root_device: true, is_read_only: true }] });
  const built = resources.machineConfig();
  assert.ok(built.boot.kind === 'linux');
  assert.equal(built.boot.cmdline, `${DEFAULT_BOOT_ARGS} root=/dev/vda ro`);
  assert.equal(built.cpus, 2);
  assert.throws(() => VmResources.fromConfigFile('{', 'vm.json'), /^InputError: config file 'vm.json': not JSON/);
  assert.throws(() => config({}), /config file 'vm.json': boot-source: /);
  assert.throws(() => config({ 'boot-source': { kernel_image_path: kernel }, balloon: { amount_mib: 1 } }), /balloon: the balloon device is not supported by tsvmm yet/);
  assert.throws(() => config({ 'boot-source': { kernel_image_path: kernel }, drives: [{ drive_id: 'x', path_on_host: join(dir, 'missing'), is_root_device: false }] }), /drives\/x: path_on_host '.*missing': no such file/);
});

test('the schemas as JSON Schema: closed objects, the required fields, the ranges', async () => {
  const { jsonSchema } = await import('../../src/config/json-schema.js');
  const file = jsonSchema('config-file') as { required: string[]; additionalProperties: boolean; properties: Record<string, { required?: string[]; additionalProperties?: boolean; properties?: Record<string, { minimum?: number; maximum?: number }> }> };
  assert.deepEqual(file.required, ['boot-source']);
  assert.equal(file.additionalProperties, false);
  assert.deepEqual(file.properties['boot-source'].required, ['kernel_image_path']);
  assert.equal(file.properties['machine-config'].additionalProperties, false);
  assert.deepEqual([file.properties['machine-config'].properties!.vcpu_count.minimum, file.properties['machine-config'].properties!.vcpu_count.maximum], [1, 255]);
  const api = jsonSchema('api') as { definitions: Record<string, { required?: string[] }> };
  assert.deepEqual(api.definitions.Drive.required, ['drive_id', 'is_root_device', 'path_on_host']);
  assert.deepEqual(api.definitions.Vm.required, ['state']);
  const machine = jsonSchema('machine') as { required: string[] };
  assert.deepEqual(machine.required, ['memory', 'cpus', 'boot']);
});
