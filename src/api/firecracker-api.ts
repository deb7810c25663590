/**
 * Firecracker's API (its swagger's paths, methods, bodies and status
 * codes) over a VmmController: 204 for a change made, 200 with JSON for a
 * read, 400 with a fault message for anything refused, pre-boot requests
 * refused once the VM runs. tsvmm's own additions live under /tsvmm/.
 */
import {
  ActionBody, DrivePatch, InputError, LoggerBody, MetricsBody, NetworkInterfacePatch, parseInput, SnapshotCreateBody, SnapshotLoadBody, VmStateBody,
} from '../config/firecracker-schema.js';
import { TSVMM_VERSION, FIRECRACKER_API_VERSION } from '../version.js';
import { rateLimiterOf } from '../config/vm-resources.js';
import { ApiError, type ApiRequest, type ApiResponse } from './http-unix-server.js';
import { NOT_AFTER_START, NOT_BEFORE_START, type VmmController } from './vmm-controller.js';

const NO_CONTENT: ApiResponse = { status: 204 };
const ok = (json: unknown): ApiResponse => ({ status: 200, json });

type Route = (vmm: VmmController, body: unknown, id: string) => Promise<ApiResponse> | ApiResponse;

/** A request that changes the configuration: allowed only before InstanceStart. */
const preBoot = (apply: (vmm: VmmController, body: unknown, id: string) => void): Route => (vmm, body, id) => {
  if (vmm.started) throw new ApiError(NOT_AFTER_START);
  apply(vmm, body, id);
  return NO_CONTENT;
};

/** Routes by method and path pattern; `{id}` matches one path segment. */
const ROUTES: [string, string, Route][] = [
  ['GET', '/', (vmm) => ok({ id: vmm.instanceId, state: vmm.state, vmm_version: TSVMM_VERSION, app_name: 'tsvmm' })],
  // The Firecracker API version tsvmm speaks, so SDKs that check it see one they know.
  ['GET', '/version', () => ok({ firecracker_version: FIRECRACKER_API_VERSION })],
  ['PUT', '/boot-source', preBoot((vmm, body) => vmm.resources.setBootSource(body))],
  ['GET', '/machine-config', (vmm) => ok(vmm.machineConfigView())],
  ['PUT', '/machine-config', preBoot((vmm, body) => vmm.resources.setMachineConfig(body))],
  ['PATCH', '/machine-config', preBoot((vmm, body) => vmm.resources.patchMachineConfig(body))],
  ['PUT', '/drives/{id}', preBoot((vmm, body, id) => vmm.resources.setDrive(id, body))],
  ['PATCH', '/drives/{id}', (vmm, body, id) => {
    if (!vmm.started) throw new ApiError(NOT_BEFORE_START);
    const patch = parseInput(DrivePatch, body, `drives/${id}`);
    if (patch.drive_id !== id) throw new ApiError(`drives/${id}: drive_id '${patch.drive_id}' does not match the path's '${id}'`);
    if (patch.path_on_host !== undefined) throw new ApiError(`drives/${id}: path_on_host: changing a running drive's file is not supported by tsvmm yet`);
    if (patch.rate_limiter !== undefined) vmm.updateRateLimiter({ disk: id }, rateLimiterOf(patch.rate_limiter)!);
    return NO_CONTENT;
  }],
  ['PUT', '/network-interfaces/{id}', preBoot((vmm, body, id) => vmm.resources.setNetworkInterface(id, body))],
  ['PATCH', '/network-interfaces/{id}', (vmm, body, id) => {
    if (!vmm.started) throw new ApiError(NOT_BEFORE_START);
    const patch = parseInput(NetworkInterfacePatch, body, `network-interfaces/${id}`);
    if (patch.iface_id !== id) throw new ApiError(`network-interfaces/${id}: iface_id '${patch.iface_id}' does not match the path's '${id}'`);
    if (patch.rx_rate_limiter !== undefined) vmm.updateRateLimiter({ net: id, direction: 'rx' }, rateLimiterOf(patch.rx_rate_limiter)!);
    if (patch.tx_rate_limiter !== undefined) vmm.updateRateLimiter({ net: id, direction: 'tx' }, rateLimiterOf(patch.tx_rate_limiter)!);
    return NO_CONTENT;
  }],
  ['PUT', '/vsock', preBoot((vmm, body) => vmm.resources.setVsock(body))],
  ['PUT', '/entropy', preBoot((vmm, body) => vmm.resources.setEntropy(body))],
  ['PUT', '/serial', preBoot((vmm, body) => vmm.resources.setSerial(body))],
  ['PUT', '/logger', (vmm, body) => {
    vmm.logger.configure(parseInput(LoggerBody, body, 'logger'));
    return NO_CONTENT;
  }],
  ['PUT', '/metrics', (vmm, body) => {
    vmm.metrics.configure(parseInput(MetricsBody, body, 'metrics'), vmm.instanceId);
    return NO_CONTENT;
  }],
  ['PUT', '/actions', async (vmm, body) => {
    const { action_type } = parseInput(ActionBody, body, 'actions');
    switch (action_type) {
      case 'InstanceStart':
        await vmm.start();
        break;
      case 'FlushMetrics':
        if (!vmm.metrics.flush()) throw new ApiError('FlushMetrics: metrics are not configured (PUT /metrics first)');
        break;
      case 'SendCtrlAltDel':
        throw new ApiError('SendCtrlAltDel needs a PS/2 keyboard behind the i8042, which tsvmm does not emulate yet');
    }
    return NO_CONTENT;
  }],
  ['PATCH', '/vm', async (vmm, body) => {
    await vmm.setState(parseInput(VmStateBody, body, 'vm').state);
    return NO_CONTENT;
  }],
  ['GET', '/vm/config', (vmm) => ok(vmm.fullConfigView())],
  ['PUT', '/snapshot/create', (vmm, body) => {
    const { snapshot_path, mem_file_path, snapshot_type } = parseInput(SnapshotCreateBody, body, 'snapshot/create');
    vmm.snapshot(snapshot_path, mem_file_path, snapshot_type === 'Diff' ? 'diff' : 'full');
    return NO_CONTENT;
  }],
  ['PUT', '/snapshot/load', async (vmm, body) => {
    const load = parseInput(SnapshotLoadBody, body, 'snapshot/load');
    await vmm.load(load.snapshot_path, load.mem_backend?.backend_path ?? load.mem_file_path!, load.resume_vm ?? false, {
      trackDirtyPages: load.track_dirty_pages ?? load.enable_diff_snapshots,
      networkOverrides: load.network_overrides?.map((o) => ({ ifaceId: o.iface_id, tap: o.host_dev_name })),
    });
    return NO_CONTENT;
  }],
  ['PUT', '/tsvmm/raw-boot', preBoot((vmm, body) => vmm.resources.setRawBoot(body))],
  ['GET', '/tsvmm/exit-stats', (vmm) => {
    const stats = vmm.exitStats();
    if (stats === undefined) throw new ApiError(NOT_BEFORE_START);
    return ok(stats);
  }],
];

function match(pattern: string, path: string): string | undefined | false {
  const p = pattern.split('/');
  const q = path.replace(/\/+$/, '').split('/');
  if (path === '/' || pattern === '/') return path === pattern ? undefined : false;
  if (p.length !== q.length) return false;
  let id: string | undefined;
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '{id}' && q[i] !== '') id = decodeURIComponent(q[i]);
    else if (p[i] !== q[i]) return false;
  }
  return id;
}

/** Answers one request for `vmm`, counting it in the metrics and logging it. */
export async function handleFirecrackerRequest(vmm: VmmController, { method, path, body }: ApiRequest): Promise<ApiResponse> {
  for (const [m, pattern, route] of ROUTES) {
    const id = match(pattern, path);
    if (id === false || m !== method) continue;
    const name = pattern.replace(/^\//, '').replace(/[/{}-]+/g, '_').replace(/_$/, '') || 'instance_info';
    try {
      const response = await route(vmm, body, id ?? '');
      vmm.metrics.countRequest(method, name, true);
      vmm.logger.debug(`${method} ${path}: ${response.status}`);
      return response;
    } catch (e) {
      vmm.metrics.countRequest(method, name, false);
      vmm.logger.warn(`${method} ${path}: ${(e as Error).message}`);
      if (e instanceof InputError) throw new ApiError(e.message);
      throw e;
    }
  }
  throw new ApiError(`Invalid request method and/or path: ${method} ${path}.`);
}
