/**
 * The host's end of a TCP transfer test: test/helpers/tcp-peer.js started
 * in a network namespace; next() is its next JSON line (listening, then
 * one per transfer).
 */
import { fileURLToPath } from 'node:url';
import { startProcess } from './cli.js';

export interface TcpPeer {
  kill(): void;
  next(): Promise<Record<string, unknown>>;
}

export function startTcpPeer(prefix: string[], bytes: number, timeoutMs: number): TcpPeer {
  const script = fileURLToPath(new URL('./tcp-peer.js', import.meta.url));
  const run = startProcess([process.execPath, script, String(bytes)], { prefix, timeoutMs });
  let seen = 0;
  return {
    kill: () => run.child.kill('SIGKILL'),
    next: async () => {
      const lines = (await run.waitFor(new RegExp(`^(?:.*\\n){${seen}}(.*)\\n`))).input!.split('\n');
      return JSON.parse(lines[seen++]);
    },
  };
}
