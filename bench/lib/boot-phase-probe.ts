/**
 * Run by the boot benchmark as a process of its own: boots the
 * benchmark's multiboot guest through the library, as `tsvmm run --kernel`
 * does, and prints on stdout, as JSON, the milliseconds each phase took.
 *
 * Usage: node boot-phase-probe.js KERNEL.elf
 *
 * Everything is imported dynamically, after the first mark, so that each
 * phase's modules count in that phase (static imports would all load
 * before this file's first line runs).
 */
import type { BootSource } from '../../src/vmm/config.js';
import type { Phase } from './boot-phases.js';

const marks: { phase: Phase; at: number }[] = [];
// performance.now() counts from the start of the process.
const mark = (phase: Phase) => marks.push({ phase, at: performance.now() });
mark('node_start');

await import('koffi');
mark('koffi_load');
const { buildMachine } = await import('../../src/vmm/builder.js');
const { defaultDevicesFor } = await import('../../src/vmm/config.js');
const { MiB } = await import('../../src/memory/layout.js');
mark('library_modules');
// What `tsvmm run` loads on top of the library.
await import('commander');
await import('../../src/cli/run-command.js');
mark('cli_modules');

const { readFileSync } = await import('node:fs');
const boot: BootSource = { kind: 'multiboot', image: readFileSync(process.argv[2]), cmdline: '', modules: [] };
// The CLI's defaults for a kernel that is not Linux: 128M, one vCPU, the host CPU template.
const machine = buildMachine({ memory: 128 * MiB, cpus: 1, cpuTemplate: 'host', boot, devices: defaultDevicesFor(boot) });
mark('vm_build');
await machine.start();
mark('vcpu_start');
const stop = await machine.wait();
mark('first_exit');
await machine.destroy();
mark('teardown');

if (stop.kind !== 'debug-exit') process.stderr.write(`tsvmm: ${stop.message}\n`);
process.stdout.write(`${JSON.stringify(Object.fromEntries(marks.map((m, i) => [m.phase, m.at - (i > 0 ? marks[i - 1].at : 0)])))}\n`);
process.exitCode = stop.exitCode;
