/**
 * `tsvmm check [--json]`: explains what this host can run. Status 0 when
 * KVM is usable, 1 when it is not.
 */
import { checkHost } from '../host/host-check.js';
import { formatReport } from '../host/format-check.js';
import { realHost } from '../host/real-host.js';

export async function checkCommand(opts: { json?: boolean }): Promise<number> {
  const report = checkHost(realHost);
  process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return report.usable ? 0 : 1;
}
