/**
 * Errors from the kernel, turned into sentences a person can act on.
 */
import { constants } from 'node:os';

const errnoNames = new Map<number, string>(
  Object.entries(constants.errno).map(([name, value]) => [value, name]),
);

export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

/** A failed system call: which call, the errno, and what it means here. */
export class SystemError extends Error {
  readonly code: string;
  constructor(
    readonly call: string,
    readonly errno: number,
    detail?: string,
  ) {
    const code = errnoName(errno);
    super(`${call}${detail ? ` (${detail})` : ''} failed: ${code}${explain(call, code, detail)}`);
    this.name = 'SystemError';
    this.code = code;
  }
}

function explain(call: string, code: string, detail?: string): string {
  if (call === 'open' && detail === '/dev/kvm') {
    if (code === 'ENOENT') return ': /dev/kvm does not exist (`tsvmm check` says why, and what to do)';
    if (code === 'EACCES' || code === 'EPERM') {
      return ': no permission on /dev/kvm; add yourself to its group (usually `sudo usermod -aG kvm $USER`, then log in again)';
    }
  }
  if (code === 'ENOMEM') return ': the host is out of memory for this request';
  if (code === 'EEXIST' && call.includes('IRQCHIP')) return ': the VM already has an interrupt controller';
  return '';
}
