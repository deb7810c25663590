/**
 * QEMU's fw_cfg as a raw guest reads it (test/guests/fw-cfg-report.s):
 * the signature, features, CPU count and RAM size through the data port,
 * the DMA register's signature, and a user file (`--fw-cfg`) by DMA.
 */
import assert from 'node:assert/strict';
import { runCli } from '../helpers/cli.js';
import { guestFile } from '../helpers/guests.js';
import { kvmTest } from '../helpers/kvm.js';

const ONE_MIB = 0x100000;
/** fw-cfg-report.s writes 0x10 to the debug-exit port: status (0x10 << 1) | 1. */
const REPORT_DONE = 33;

kvmTest('a raw guest reads its CPU count, RAM size and a --fw-cfg file from fw_cfg, through the data port and by DMA', async () => {
  const guest = guestFile('fw-cfg-report.s', { address: ONE_MIB });
  const r = await runCli([
    'run', '--raw', guest, '--mode', 'long', '--load-addr', '0x100000', '--cpus', '2', '--mem', '64M',
    '--fw-cfg', 'opt/org.tsvmm/greeting,string=hello from fw_cfg', '--console', 'stdio',
  ]);
  assert.equal(r.status, REPORT_DONE, r.stderr);
  assert.equal(
    r.stdout,
    ['sig=554d4551', 'features=00000003', 'cpus=00000002', 'ram=0000000004000000', 'dmasig=51454d5520434647', 'file=hello from fw_cfg', 'dma=00000000', ''].join('\n'),
  );
});
