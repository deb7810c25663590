/**
 * `tsvmm jail --id ID --uid N --gid N [--file PATH[:IN_JAIL]]... [--cgroup FILE=VALUE]...
 * [--netns PATH] -- COMMAND...`: the flags to a JailConfig, then the jail
 * (src/host/jail.ts). Its exit status is the jailed tsvmm's.
 */
import { basename } from 'node:path';
import { runJail, type JailConfig } from '../host/jail.js';
import { UsageError } from './fail.js';

interface JailFlags {
  id: string;
  uid: string;
  gid: string;
  chrootBase: string;
  file: string[];
  netns?: string;
  cgroup: string[];
}

const whole = (flag: string, text: string) => {
  if (!/^\d+$/.test(text)) throw new UsageError(`${flag}: '${text}' is not a number`);
  return Number(text);
};

export function jailConfig(command: string[], flags: JailFlags): JailConfig {
  return {
    id: flags.id,
    uid: whole('--uid', flags.uid),
    gid: whole('--gid', flags.gid),
    chrootBase: flags.chrootBase,
    files: flags.file.map((f) => {
      const [from, to = `/${basename(f)}`] = f.split(/:(.*)/s);
      return { from, to };
    }),
    netns: flags.netns,
    cgroup: flags.cgroup.map((g) => {
      const m = /^([^=]+)=(.+)$/s.exec(g);
      if (m === null) throw new UsageError(`--cgroup: '${g}' is not FILE=VALUE (e.g. memory.max=512M)`);
      return { file: m[1], value: m[2] };
    }),
    args: command,
  };
}

export async function jailCommand(command: string[], flags: JailFlags): Promise<number> {
  return runJail(jailConfig(command, flags));
}
