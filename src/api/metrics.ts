/**
 * Metrics as Firecracker writes them: one JSON object per line to the
 * file or named pipe PUT /metrics names, on FlushMetrics and every 60
 * seconds. tsvmm's lines carry the API's request counts, the VM exits by
 * reason, and what each virtio device's queues have served (chains and
 * bytes written into them), under Firecracker's section names where they
 * have one.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import type { ExitStats } from '../vcpu/exit-stats.js';
import type { DeviceStats } from '../vmm/machine.js';
import type { MetricsBody } from '../config/firecracker-schema.js';
import { ApiError } from './http-unix-server.js';

const PERIOD_MS = 60_000;

export class Metrics {
  private fd?: number;
  private timer?: NodeJS.Timeout;
  private body?: MetricsBody;
  private instanceId = '';
  private readonly requests = new Map<string, number>();
  private failedRequests = 0;

  constructor(
    private readonly exitStats: () => ExitStats | undefined,
    private readonly deviceStats: () => DeviceStats[] | undefined,
  ) {}

  configure(body: MetricsBody, instanceId: string): void {
    if (this.fd !== undefined) throw new ApiError('Reinitialization of metrics not allowed.');
    try {
      this.fd = openSync(body.metrics_path, 'a');
    } catch (e) {
      throw new ApiError(`metrics: metrics_path '${body.metrics_path}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    this.body = body;
    this.instanceId = instanceId;
    this.timer = setInterval(() => this.flush(), PERIOD_MS);
    this.timer.unref();
  }

  countRequest(method: string, route: string, ok: boolean): void {
    const key = `${method.toLowerCase()}_${route}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    if (!ok) this.failedRequests++;
  }

  /** Writes one line; false when metrics were never configured. */
  flush(): boolean {
    if (this.fd === undefined) return false;
    const stats = this.exitStats();
    const line = {
      utc_timestamp_ms: Date.now(),
      ...(this.body?.emit_id && { id: this.instanceId }),
      ...(this.body?.properties && { properties: this.body.properties }),
      api_server: { ...Object.fromEntries(this.requests), failed_requests: this.failedRequests },
      vcpu: stats ? Object.fromEntries(stats.rows.map((r) => [`exit_${r.reason.toLowerCase()}`, r.count])) : {},
      devices: Object.fromEntries((this.deviceStats() ?? []).map(({ device, queues }) => [
        device,
        Object.fromEntries(queues.flatMap((q, i) => [[`queue${i}_chains`, q.chains], [`queue${i}_bytes`, q.bytes]])),
      ])),
    };
    writeSync(this.fd, `${JSON.stringify(line)}\n`);
    return true;
  }

  close(): void {
    clearInterval(this.timer);
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
