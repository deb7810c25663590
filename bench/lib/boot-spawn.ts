/**
 * One timed start of a VMM: a fresh process, from just before spawn() to
 * its exit, checked against the exit status its guest should end with.
 */
import { spawn } from 'node:child_process';

export interface Contender {
  /** A short key, used in the JSON output. */
  key: string;
  /** What the table calls it. */
  label: string;
  command: string;
  args: string[];
  /** The exit status a run that reached the guest's debug exit ends with. */
  status: number;
  /** Output that says the run failed even with the right status (tsvmm's own exit statuses overlap the guest's). */
  failureMark?: string;
}

export interface SpawnResult {
  ms: number;
  stdout: string;
}

const KEPT_OUTPUT = 64 * 1024;

/** A run that did not end as its guest should: the message says how, with the program's last output. */
export class RunFailure extends Error {}

/** Runs the contender once; rejects with its stderr when it did not end as its guest does. */
export function timeSpawn(c: Contender): Promise<SpawnResult> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(c.command, c.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let end = start;
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout = (stdout + d.toString()).slice(-KEPT_OUTPUT)));
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-KEPT_OUTPUT)));
    // 'exit' is the moment the process ended; 'close' waits for its pipes to drain as well.
    child.on('exit', () => (end = process.hrtime.bigint()));
    child.on('error', (e) => reject(new RunFailure(`${c.label}: could not start ${c.command}: ${e.message}`)));
    child.on('close', (code, signal) => {
      const failed = code !== c.status || (c.failureMark !== undefined && stderr.includes(c.failureMark));
      if (failed) {
        const how = signal ? `was killed by ${signal}` : `exited with ${code}, not ${c.status}`;
        reject(new RunFailure(`${c.label} ${how}: ${[c.command, ...c.args].join(' ')}${stderr.trim() ? `\n${stderr.trim()}` : ''}`));
      } else {
        resolve({ ms: Number(end - start) / 1e6, stdout });
      }
    });
  });
}

/** Undefined when the contender's guest runs to its debug exit; otherwise why not, in one line. */
export async function whyNot(c: Contender): Promise<string | undefined> {
  try {
    await timeSpawn(c);
    return undefined;
  } catch (e) {
    const lines = (e as Error).message.split('\n');
    // The first line says how it ended; the last line of stderr usually says why.
    return lines.length > 1 ? `${lines[0].split(':')[0]}: ${lines[lines.length - 1]}` : lines[0];
  }
}
