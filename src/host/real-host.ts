/**
 * The HostProbe of the machine tsvmm runs on: the real files and the real
 * /dev/kvm.
 */
import { accessSync, constants, readdirSync, readFileSync, statSync } from 'node:fs';
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

  probeKvm(device) {
    const kvm = Kvm.open(device);
    try {
      return { apiVersion: kvm.apiVersion(), capabilities: kvm.capabilities() };
    } finally {
      kvm.close();
    }
  },
};
