/**
 * A typed client for Firecracker's API (as tsvmm serves it, or Firecracker
 * itself) over its Unix socket. Each call resolves with the response's
 * JSON (or undefined for 204) and rejects with a FirecrackerApiError that
 * carries the status and the server's fault message.
 */
import { request } from 'node:http';
import type { ExitStats } from '../vcpu/exit-stats.js';
import type {
  RawBootBody, BootSourceBody, DriveBody, EntropyBody, LoggerBody, MachineConfigBody, MetricsBody, NetworkInterfaceBody, SerialBody, VsockBody,
} from '../config/firecracker-schema.js';

export class FirecrackerApiError extends Error {
  constructor(readonly status: number, readonly faultMessage: string, what: string) {
    super(`${what}: ${status} ${faultMessage}`);
    this.name = 'FirecrackerApiError';
  }
}

export interface InstanceInfo {
  id: string;
  state: 'Not started' | 'Running' | 'Paused';
  vmm_version: string;
  app_name: string;
}

export class FirecrackerClient {
  constructor(readonly socketPath: string) {}

  /** Any request; the JSON answer, or undefined when there is none. */
  call<T = unknown>(method: 'GET' | 'PUT' | 'PATCH', path: string, body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          socketPath: this.socketPath, method, path,
          headers: { Accept: 'application/json', ...(payload !== undefined && { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) }) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const json = text === '' ? undefined : JSON.parse(text);
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve(json as T);
            else reject(new FirecrackerApiError(status, json?.fault_message ?? text, `${method} ${path}`));
          });
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  describeInstance = () => this.call<InstanceInfo>('GET', '/');
  version = () => this.call<{ firecracker_version: string }>('GET', '/version');
  putBootSource = (body: BootSourceBody) => this.call<void>('PUT', '/boot-source', body);
  getMachineConfig = () => this.call<MachineConfigBody>('GET', '/machine-config');
  putMachineConfig = (body: MachineConfigBody) => this.call<void>('PUT', '/machine-config', body);
  patchMachineConfig = (body: Partial<MachineConfigBody>) => this.call<void>('PATCH', '/machine-config', body);
  putDrive = (body: DriveBody) => this.call<void>('PUT', `/drives/${encodeURIComponent(body.drive_id)}`, body);
  putNetworkInterface = (body: NetworkInterfaceBody) => this.call<void>('PUT', `/network-interfaces/${encodeURIComponent(body.iface_id)}`, body);
  putVsock = (body: VsockBody) => this.call<void>('PUT', '/vsock', body);
  putEntropy = (body: EntropyBody = {}) => this.call<void>('PUT', '/entropy', body);
  putSerial = (body: SerialBody) => this.call<void>('PUT', '/serial', body);
  putLogger = (body: LoggerBody) => this.call<void>('PUT', '/logger', body);
  putMetrics = (body: MetricsBody) => this.call<void>('PUT', '/metrics', body);
  action = (actionType: 'InstanceStart' | 'FlushMetrics' | 'SendCtrlAltDel') => this.call<void>('PUT', '/actions', { action_type: actionType });
  startInstance = () => this.action('InstanceStart');
  pause = () => this.call<void>('PATCH', '/vm', { state: 'Paused' });
  resume = () => this.call<void>('PATCH', '/vm', { state: 'Resumed' });
  vmConfig = () => this.call<Record<string, unknown>>('GET', '/vm/config');
  createSnapshot = (snapshotPath: string, memFilePath: string, snapshotType: 'Full' | 'Diff' = 'Full') =>
    this.call<void>('PUT', '/snapshot/create', { snapshot_type: snapshotType, snapshot_path: snapshotPath, mem_file_path: memFilePath });

  loadSnapshot = (snapshotPath: string, memFilePath: string, resume = false) =>
    this.call<void>('PUT', '/snapshot/load', { snapshot_path: snapshotPath, mem_backend: { backend_type: 'File', backend_path: memFilePath }, resume_vm: resume });
  /** tsvmm's own: boot a raw binary. */
  putRawBoot = (body: RawBootBody) => this.call<void>('PUT', '/tsvmm/raw-boot', body);
  /** tsvmm's own: the VM exits so far, by reason. */
  exitStats = () => this.call<ExitStats>('GET', '/tsvmm/exit-stats');
}
