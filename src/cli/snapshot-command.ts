/**
 * `tsvmm snapshot --api-sock PATH STATE-FILE MEMORY-FILE`: saves the VM a
 * `tsvmm run --api-sock` or `tsvmm serve` runs, through the same API an
 * operator would use: pause, PUT /snapshot/create, and resume unless it was
 * paused already or --leave-paused. `tsvmm run --restore` brings it back.
 * `tsvmm rebase-memory` merges a diff snapshot's memory onto its base.
 */
import { FirecrackerClient } from '../api/firecracker-client.js';
import { mergeDiffMemory } from '../snapshot/memory-file.js';
import { UsageError } from './fail.js';

export interface SnapshotOptions {
  apiSock: string;
  diff?: boolean;
  leavePaused?: boolean;
}

export async function snapshotCommand(statePath: string, memoryPath: string, opts: SnapshotOptions): Promise<number> {
  const client = new FirecrackerClient(opts.apiSock);
  let state: string;
  try {
    ({ state } = await client.describeInstance());
  } catch (e) {
    throw new UsageError(`--api-sock '${opts.apiSock}': no VMM answers there (${(e as Error).message})`);
  }
  if (state === 'Not started') throw new UsageError('the VMM has not started a VM yet: nothing to snapshot');
  const wasRunning = state === 'Running';
  if (wasRunning) await client.pause();
  const started = performance.now();
  try {
    await client.createSnapshot(statePath, memoryPath, opts.diff ? 'Diff' : 'Full');
  } finally {
    if (wasRunning && !opts.leavePaused) await client.resume();
  }
  process.stderr.write(`tsvmm: snapshot written to ${statePath} and ${memoryPath} in ${Math.round(performance.now() - started)} ms${wasRunning && !opts.leavePaused ? '; the VM runs on' : '; the VM is paused'}\n`);
  return 0;
}

export function rebaseMemoryCommand(opts: { baseFile: string; diffFile: string }): number {
  const copied = mergeDiffMemory(opts.diffFile, opts.baseFile);
  process.stderr.write(`tsvmm: ${copied} bytes of '${opts.diffFile}' merged onto '${opts.baseFile}'\n`);
  return 0;
}
