/**
 * The end-to-end tests' side of Firecracker's API: a client once tsvmm's
 * socket is there, and the default guest as a boot source that runs a
 * command.
 */
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { FirecrackerClient } from '../../src/api/firecracker-client.js';
import { ensureDefaultGuest } from '../../src/guest/default-guest.js';
import { guestCommandParameter } from '../../src/guest/init-script.js';
import type { RunningProcess } from './cli.js';

/**
 * Waits until the API socket is there. `tsvmm run` opens it once the machine's configuration is
 * ready, after it has read and unpacked the default guest: seconds in the rig, where TCG runs gunzip.
 */
export async function connectApi(sock: string, cli: RunningProcess): Promise<FirecrackerClient> {
  for (let i = 0; i < 2400; i++) {
    if (existsSync(sock)) return new FirecrackerClient(sock);
    const { stderr } = cli.output();
    if (stderr !== '') throw new Error(`tsvmm serve failed: ${stderr}`);
    await sleep(50);
  }
  throw new Error('the API socket never appeared');
}

/** The default guest's kernel and initramfs, and boot args that run `command` and report its status. */
export async function defaultGuestBootSource(command: string[]) {
  const guest = await ensureDefaultGuest();
  return { kernel_image_path: guest.kernel, initrd_path: guest.initrd, boot_args: `console=ttyS0 panic=-1 quiet ${guestCommandParameter(command)}` };
}
