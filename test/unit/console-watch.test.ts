import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConsoleWatch } from '../../src/guest/console-watch.js';

function watched(text: string) {
  const seen: string[] = [];
  const watch = new ConsoleWatch({
    ready: (cpus) => seen.push(`ready ${cpus}`),
    commandExit: (status) => seen.push(`exit ${status}`),
    panic: (reason) => seen.push(`panic ${reason}`),
    initFault: (ip) => seen.push(`init fault 0x${ip.toString(16)}`),
  });
  // Fed in small pieces, as a serial console delivers it.
  const bytes = Buffer.from(text, 'latin1');
  for (let i = 0; i < bytes.length; i += 7) watch.feed(bytes.subarray(i, i + 7));
  return seen;
}

test('the markers, a panic and init\'s user-mode faults are found in the console stream, whole lines only', () => {
  const seen = watched(
    [
      'TSVMM-READY cpus=2\r',
      '[    1.0] traps: init[1] general protection fault ip:ffffffff81a00040 sp:7ffc12345678 error:0 in busybox[400000+1000]',
      '[    1.1] init[1]: segfault at ffffffff81a00000 ip ffffffff81a00000 sp 00007ffd2e1c2a40 error 15',
      '[    1.2] traps: sh[42] general protection fault ip:401000 sp:7ffc12345678 error:0',
      '[    1.3] Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b',
      'TSVMM-EXIT status=3',
      'TSVMM-EXIT status=4 (no end of line yet)',
    ].join('\n'),
  );
  assert.deepEqual(seen, ['ready 2', 'init fault 0xffffffff81a00040', 'init fault 0xffffffff81a00000', 'panic Attempted to kill init! exitcode=0x0000000b', 'exit 3']);
});
