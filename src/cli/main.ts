#!/usr/bin/env node
/**
 * The tsvmm command line: a thin layer over the library. Each command's
 * module is imported when that command runs, so a command does not pay
 * for loading the others (see "Boot time" in docs/benchmarks.md).
 */
import { Argument, Command, CommanderError, Option } from 'commander';
import { cpuTemplates } from '../arch/x86/cpu-template.js';
import { reportError, EXIT_USAGE } from './fail.js';
import { TSVMM_VERSION } from '../version.js';

const program = new Command('tsvmm')
  .description('a KVM virtual machine monitor in TypeScript')
  .version(TSVMM_VERSION)
  .exitOverride()
  .configureOutput({
    // One line with tsvmm's prefix, like every other error, keeping the parser's "Did you mean" hint.
    outputError: (text, write) => write(`${text.trim().split('\n').map((line) => line.trim()).join(' ').replace(/^error: /, 'tsvmm: ')}\n`),
  });

const runFlags = (cmd: Command) =>
  cmd
    .option('--stats', 'print a table of VM exits (count, time) at the end')
    .option('--trace-exits [file]', 'log every VM exit (reason, port or address, size, data, RIP) to stderr or a file')
    .option('--memory-map', 'print the guest-physical memory map before starting')
    .option('--console <mode>', 'serial console: stdio (keys too; Ctrl-A x quits, Ctrl-A p pauses and resumes, Ctrl-A h help), file:PATH or none', 'stdio')
    .option('--web <[host:]port>', 'serve a web console and live VM-exit dashboard (loopback unless a host is given; port 0 picks one)')
    .option('--web-token <token>', 'the token the page needs (?token=...); required with --web on any address but loopback');

runFlags(
  program
    .command('run')
    .description('run the default Linux guest (or a command in it, after --), a kernel of your own, or a raw binary')
    .argument('[command...]', 'a command to run in the default guest, after --')
    .option('--raw <file>', 'raw binary image')
    .addOption(new Option('--mode <mode>', 'CPU mode for --raw (default long)').choices(['real', 'protected', 'long']))
    .option('--load-addr <addr>', 'where --raw is loaded (default 0x100000)')
    .option('--entry <addr>', 'entry point for --raw (default: the load address)')
    .option('--user', 'with --mode long: start at CPL3 (ring 3)')
    .option('--kernel <file>', 'Linux bzImage or vmlinux, or a multiboot 1 or 2 kernel')
    .option('--initrd <file>', 'initramfs for a Linux kernel')
    .option('--append <text>', 'kernel command line (added to the default for Linux)')
    .option('--module <file[,args]>', 'multiboot module with its command line, comma-separated (repeatable)', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--mem <size>', 'guest RAM, e.g. 64M, 2G (default 512M for Linux, 128M otherwise)')
    .option('--cpus <n>', 'number of vCPUs', '1')
    .addOption(new Option('--cpu-template <template>', 'what the guest sees of the host CPU').choices(cpuTemplates).default('host'))
    .option('--test-device <addr>', 'add the MMIO test device at this address')
    .option('--disk <path[,ro][,id=NAME][,bw_size=N,ops_size=N,...]>', 'a virtio-blk disk over a raw image file, read-only with ro, rate-limited by token buckets (repeatable)', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--net <tap=NAME[,mac=MAC][,vhost=on|off][,rx_bw_size=N,tx_ops_size=N,...]>', 'a virtio-net card on an existing tap; vhost-net where the host has it and no rate limit is set (repeatable)', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--fw-cfg <[name=]NAME,file=PATH|string=TEXT>', 'a file in QEMU\'s fw_cfg device, as -fw_cfg (repeatable; multiboot and raw guests have the device)', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--vsock <cid=N[,uds=PATH]>', 'a virtio-vsock line to the host: through vhost-vsock (host AF_VSOCK, CID 2), or with uds= over Unix sockets as Firecracker does')
    .addOption(new Option('--on-reboot <action>', 'when the guest reboots: exit, or restart it').choices(['exit', 'restart']).default('exit'))
    .option('--config-file <file>', 'boot the VM a Firecracker configuration file describes (JSON: boot-source, machine-config, drives, ...)')
    .option('--api-sock <path>', 'expose the running VM through Firecracker\'s API on this Unix socket')
    .option('--track-dirty-pages', 'track the pages written since the last snapshot, for diff snapshots (tsvmm snapshot --diff)')
    .option('--restore <state-file>', 'resume a VM from a snapshot (PUT /snapshot/create); with --restore-mem')
    .option('--restore-mem <memory-file>', 'the snapshot\'s guest memory file')
    .option('--net-override <iface=TAP>', 'with --restore: network interface iface (net0, net1, ... or its iface_id) uses this tap instead of its own (repeatable)', (v: string, all: string[]) => [...all, v], [] as string[]),
).action(async (command: string[], opts) => {
  process.exitCode = await (await import('./run-command.js')).runCommand(opts, command);
});

runFlags(program.command('demo').description('run the built-in demo guest and show the VM exits it causes'))
  .option('--rounds <n>', 'repeat the guest\'s port and MMIO exits n times (the exit trace is off past 1 unless asked for)', '1')
  .action(async (opts) => {
  process.exitCode = await (await import('./demo-command.js')).demoCommand(opts);
});

program
  .command('serve')
  .description('an idle VMM configured and started through Firecracker\'s API on a Unix socket')
  .requiredOption('--api-sock <path>', 'the Unix socket to serve the API on')
  .option('--config-file <file>', 'configure from a Firecracker configuration file and start at once')
  .option('--web <[host:]port>', 'serve a web console and live VM-exit dashboard for the VM the API starts')
  .option('--web-token <token>', 'the token the page needs; required with --web on any address but loopback')
  .action(async (opts) => {
    process.exitCode = await (await import('./serve-command.js')).serveCommand(opts);
  });

program
  .command('snapshot')
  .description('save the VM a tsvmm run --api-sock or tsvmm serve runs to a state file and a memory file (tsvmm run --restore brings it back)')
  .argument('<state-file>', 'where the VM state goes')
  .argument('<memory-file>', 'where guest memory goes')
  .requiredOption('--api-sock <path>', 'the API socket of the VMM')
  .option('--diff', 'only the pages written since the previous snapshot (the VM was run with --track-dirty-pages); merge with tsvmm rebase-memory')
  .option('--leave-paused', 'leave the VM paused afterwards')
  .action(async (statePath: string, memoryPath: string, opts) => {
    process.exitCode = await (await import('./snapshot-command.js')).snapshotCommand(statePath, memoryPath, opts);
  });

program
  .command('rebase-memory')
  .description('merge a diff snapshot\'s memory file onto the previous snapshot\'s, in place, as Firecracker\'s rebase-snap does')
  .requiredOption('--base-file <file>', 'the previous snapshot\'s memory file, updated in place')
  .requiredOption('--diff-file <file>', 'the diff snapshot\'s memory file')
  .action(async (opts) => {
    process.exitCode = await (await import('./snapshot-command.js')).rebaseMemoryCommand(opts);
  });

program
  .command('schema')
  .description('print a JSON Schema: the Firecracker config file, the API bodies, or the library\'s machine configuration')
  .addArgument(new Argument('<which>', 'which schema').choices(['config-file', 'api', 'machine']))
  .action(async (which) => {
    const { jsonSchema } = await import('../config/json-schema.js');
    process.stdout.write(`${JSON.stringify(jsonSchema(which), null, 2)}\n`);
  });

program
  .command('guest')
  .description('manage the default guest (a Debian cloud kernel and a busybox initramfs)')
  .command('fetch')
  .description('download the packages and build the default guest into the cache')
  .option('--force', 'rebuild even when the cache is up to date')
  .action(async (opts) => {
    process.exitCode = await (await import('./guest-command.js')).guestFetchCommand(opts);
  });

program
  .command('jail')
  .description('as root: run a tsvmm command in a jail, as Firecracker\'s jailer does (chroot, namespaces, a cgroup, an unprivileged user, no capabilities)')
  .argument('<command...>', 'the tsvmm command and its arguments, after --, with the jail\'s paths (e.g. -- run --kernel /vmlinux)')
  .requiredOption('--id <id>', 'the jail\'s name: its chroot is <chroot-base>/<id>/root, its cgroup tsvmm/<id>')
  .requiredOption('--uid <n>', 'the user tsvmm runs as')
  .requiredOption('--gid <n>', 'the group tsvmm runs as')
  .option('--chroot-base <dir>', 'where jails are made', '/srv/tsvmm')
  .option('--file <path[:path-in-jail]>', 'a file the VM needs (kernel, initrd, disk): hard-linked into the jail, at /its-name unless given (repeatable)', (v: string, all: string[]) => [...all, v], [] as string[])
  .option('--netns <path>', 'join this network namespace (e.g. /var/run/netns/NAME)')
  .option('--cgroup <file=value>', 'a cgroup v2 limit, e.g. memory.max=512M, cpu.max="50000 100000", pids.max=64 (repeatable)', (v: string, all: string[]) => [...all, v], [] as string[])
  .action(async (command: string[], opts) => {
    process.exitCode = await (await import('./jail-command.js')).jailCommand(command, opts);
  });

program
  .command('check')
  .description('explain what this host can run: CPU, /dev/kvm, capabilities, KVM backend')
  .option('--json', 'machine-readable output')
  .action(async (opts) => {
    process.exitCode = await (await import('./check-command.js')).checkCommand(opts);
  });

program
  .command('qemu')
  .description('run a QEMU command line (qemu-system-x86_64 -kernel ... as test harnesses write it) with QEMU\'s exit statuses')
  .argument('[qemu-options...]', 'QEMU options: -kernel -initrd -append -m -smp -cpu -machine -accel -serial -device -drive -netdev -fw_cfg ...');

try {
  // QEMU's options are not tsvmm's: they go to the QEMU front end untouched.
  if (process.argv[2] === 'qemu') process.exitCode = await (await import('./qemu/qemu-command.js')).qemuCommand(process.argv.slice(3));
  else await program.parseAsync();
} catch (e) {
  if (e instanceof CommanderError) {
    process.exitCode = e.exitCode === 0 ? 0 : EXIT_USAGE;
  } else {
    process.exitCode = reportError(e);
  }
}
