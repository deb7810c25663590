/**
 * QEMU's command-line syntax: `-name [value]` options (one or two dashes),
 * each value either plain or QEMU's `driver,key=value,...` list where `,,`
 * stands for a literal comma. Only the options `tsvmm qemu` understands are
 * known here; any other is refused, naming it.
 */
import { UsageError } from '../fail.js';

/** Options that take a value, and those that do not. */
const WITH_VALUE = [
  'kernel', 'initrd', 'append', 'm', 'smp', 'cpu', 'machine', 'M', 'accel', 'serial', 'display', 'vnc',
  'device', 'drive', 'netdev', 'fw_cfg', 'monitor',
] as const;
const FLAGS = ['enable-kvm', 'nographic', 'nodefaults', 'no-reboot', 'no-shutdown'] as const;

export type QemuValueOption = (typeof WITH_VALUE)[number];
export type QemuFlag = (typeof FLAGS)[number];

export interface QemuOption {
  name: QemuValueOption | QemuFlag;
  value?: string;
}

const withValue = new Set<string>(WITH_VALUE);
const flags = new Set<string>(FLAGS);

export function parseQemuArgs(argv: readonly string[]): QemuOption[] {
  const options: QemuOption[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const name = /^--?(.+)$/.exec(arg)?.[1];
    if (name === undefined) throw new UsageError(`'${arg}' is not an option (QEMU options start with -)`);
    if (flags.has(name)) {
      options.push({ name: name as QemuFlag });
    } else if (withValue.has(name)) {
      const value = argv[++i];
      if (value === undefined) throw new UsageError(`-${name} needs a value`);
      options.push({ name: name as QemuValueOption, value });
    } else {
      throw new UsageError(`unsupported QEMU option '-${name}' (tsvmm qemu takes -${[...WITH_VALUE, ...FLAGS].join(' -')})`);
    }
  }
  return options;
}

/** Splits at single commas; `,,` is a literal comma. */
export function splitQemuList(text: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== ',') current += text[i];
    else if (text[i + 1] === ',') {
      current += ',';
      i++;
    } else {
      parts.push(current);
      current = '';
    }
  }
  parts.push(current);
  return parts;
}

/** `driver,key=value,...`: the first item (when it has no `=` and `implied` does not name it) and the properties. */
export interface QemuList {
  head?: string;
  props: Map<string, string>;
}

/**
 * Parses a QEMU list. `implied` names the key a bare first item stands for
 * (QEMU's "implied option": `-m 512` is `-m size=512`).
 */
export function parseQemuList(option: string, text: string, implied?: string): QemuList {
  const props = new Map<string, string>();
  let head: string | undefined;
  splitQemuList(text).forEach((item, i) => {
    const eq = item.indexOf('=');
    if (eq < 0 && i === 0) {
      if (implied === undefined) head = item;
      else props.set(implied, item);
      return;
    }
    if (eq < 0) throw new UsageError(`-${option}: '${item}' in '${text}' is not key=value`);
    const key = item.slice(0, eq);
    if (props.has(key)) throw new UsageError(`-${option}: '${key}' is given twice in '${text}'`);
    props.set(key, item.slice(eq + 1));
  });
  return { head, props };
}

/** Takes a property out of a list, so that what is left at the end can be refused by name. */
export function take(list: QemuList, key: string): string | undefined {
  const value = list.props.get(key);
  list.props.delete(key);
  return value;
}

/** Refuses the properties nobody took. */
export function refuseLeftovers(option: string, list: QemuList, what: string): void {
  const left = [...list.props.keys()];
  if (left.length > 0) throw new UsageError(`-${option} ${what}: unsupported propert${left.length > 1 ? 'ies' : 'y'} ${left.join(', ')}`);
}

/** QEMU's on/off booleans. */
export function parseOnOff(option: string, key: string, value: string): boolean {
  if (['on', 'yes', 'true'].includes(value)) return true;
  if (['off', 'no', 'false'].includes(value)) return false;
  throw new UsageError(`-${option}: ${key}=${value} is not on or off`);
}
