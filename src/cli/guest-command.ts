/**
 * `tsvmm guest fetch [--force]`: builds the default Linux guest (Debian's
 * cloud kernel and a busybox initramfs) into the user's cache, or finds it
 * there, and says where it is. Progress goes to stderr, the result to
 * stdout.
 */
import { ensureDefaultGuest } from '../guest/default-guest.js';
import { stderrProgress } from '../guest/progress.js';

export async function guestFetchCommand(opts: { force?: boolean }): Promise<number> {
  const progress = stderrProgress();
  const guest = await ensureDefaultGuest({ force: opts.force, progress }).finally(() => progress.clear());
  process.stdout.write(
    [
      `kernel:   ${guest.kernel}`,
      `initrd:   ${guest.initrd}`,
      `release:  ${guest.release}`,
      `packages: ${guest.packages.map((p) => `${p.name} ${p.version}`).join(', ')}`,
      `          (${guest.cached ? 'from the cache; --force rebuilds' : 'built now'})`,
      '',
    ].join('\n'),
  );
  return 0;
}
