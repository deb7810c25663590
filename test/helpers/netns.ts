/**
 * A network namespace with a tap in it, for tests that give a guest a
 * network: the host's end of the link is the tap, with HOST_IP, in a
 * namespace of its own so tests neither see nor disturb the machine's
 * interfaces. tsvmm runs inside it (`prefix`), where the tap is.
 */
import { execFileSync } from 'node:child_process';
import type { TestContext } from 'node:test';

export const HOST_IP = '10.0.2.1';
export const GUEST_IP = '10.0.2.2';
/** The kernel's ip= word (as /init reads it) for the guest's side. */
export const GUEST_IP_PARAMETER = `ip=${GUEST_IP}::${HOST_IP}:255.255.255.0::eth0:off`;

/** The ports test/helpers/tcp-peer.ts serves: it takes from the guest on one and sends on the other. */
export const SINK_PORT = 5001;
export const SOURCE_PORT = 5002;

let made = 0;

export interface TapNamespace {
  name: string;
  tap: string;
  /** Runs a command in the namespace; its stdout. */
  run(...argv: string[]): string;
  /** Put before a command to run it in the namespace. */
  prefix: string[];
}

/** The host side's MAC, the same in every namespace: a guest restored in another one finds the host where its ARP cache says. */
const HOST_MAC = '02:74:73:76:6d:01';

/** Makes the namespace and its tap, up with HOST_IP; removed when the test ends. */
export function tapNamespace(t: TestContext, tap = 'tsvmmtap0'): TapNamespace {
  const name = `tsvmm-${process.pid}-${made++}`;
  const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });
  ip('netns', 'add', name);
  t.after(() => ip('netns', 'del', name));
  ip('-n', name, 'link', 'set', 'lo', 'up');
  ip('-n', name, 'tuntap', 'add', 'dev', tap, 'mode', 'tap');
  ip('-n', name, 'link', 'set', tap, 'address', HOST_MAC);
  ip('-n', name, 'addr', 'add', `${HOST_IP}/24`, 'dev', tap);
  ip('-n', name, 'link', 'set', tap, 'up');
  const prefix = ['ip', 'netns', 'exec', name];
  return { name, tap, prefix, run: (...argv) => execFileSync(prefix[0], [...prefix.slice(1), ...argv], { encoding: 'utf8' }) };
}
