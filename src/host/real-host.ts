/**
 * The HostProbe of the machine tsvmm runs on: the real files and the real
 * /dev/kvm.
 */
import { accessSync, closeSync, constants, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { Kvm } from '../kvm/system.js';
import type { HostProbe } from './host-probe.js';

const errorCode = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? String(e);

export const realHost: HostProbe = {
  readText(path) {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return undefined;
    }
  },

  listDir(path) {
    try {
      return readdirSync(path);
    } catch {
      return [];
    }
  },

  stat(path) {
    try {
      const s = statSync(path);
      return { gid: s.gid, mode: s.mode & 0o7777 };
    } catch {
      return undefined;
    }
  },

  readWriteDenied(path) {
    try {
      accessSync(path, constants.R_OK | constants.W_OK);
      return undefined;
    } catch (e) {
      return errorCode(e);
    }
  },

  kernelLog() {
    // /dev/kmsg hands out one record per read ("level,seq,time,flags;text"), and EAGAIN once all are read.
    let fd: number;
    try {
      fd = openSync('/dev/kmsg', constants.O_RDONLY | constants.O_NONBLOCK);
    } catch {
      return '';
    }
    const lines: string[] = [];
    const record = Buffer.alloc(8192);
    try {
      for (;;) {
        let n: number;
        try {
          n = readSync(fd, record, 0, record.length, null);
        } catch (e) {
          // EPIPE: a record was overwritten while we read; the next read goes on from the oldest one left.
          if (errorCode(e) === 'EPIPE') continue;
          break;
        }
        if (n <= 0) break;
        const text = record.toString('utf8', 0, n);
        lines.push(text.slice(text.indexOf(';') + 1).split('\n')[0]);
      }
    } finally {
      closeSync(fd);
    }
    return lines.join('\n');
  },

  probeKvm(device) {
    const kvm = Kvm.open(device);
    try {
      return { apiVersion: kvm.apiVersion(), capabilities: kvm.capabilities() };
    } finally {
      kvm.close();
    }
  },
};
