/**
 * The bench:io workload: one boot of the default guest's kernel and
 * initramfs with a data disk, a disk carrying bench/io/io-probe (built
 * static here), a tap in a network namespace of its own and a vsock; the
 * guest runs io-probe against each device while the host's ends of the
 * network and vsock run io-probe too. The same run is made under tsvmm and
 * under QEMU (virtio-blk-pci, virtio-net-pci with vhost, vhost-vsock-pci),
 * and io-probe alone on the host gives the limits: the same file, TCP over
 * loopback in the namespace, vsock over the host's loopback transport.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { guestCommandParameter } from '../../src/guest/init-script.js';
import { BenchSetupError } from './c-loop.js';

const PROBE_SOURCE = fileURLToPath(new URL('../../../bench/io/io-probe.c', import.meta.url));
const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const HOST_IP = '10.0.3.1';
const GUEST_IP = '10.0.3.2';
const IP_PARAMETER = `ip=${GUEST_IP}::${HOST_IP}:255.255.255.0::eth0:off`;
const TAP = 'tsvmmbench0';
const Port = { TCP_SINK: 7001, TCP_SOURCE: 7002, VSOCK_SINK: 7003 } as const;
const VSOCK_LOCAL_CID = 1;

export interface IoSizes {
  /** MiB for the disk's sequential passes, and for each network and vsock transfer. */
  mib: number;
  /** Seconds of 4 KiB random reads. */
  randomSeconds: number;
}

/** Every figure of one contender, in MB/s except IOPS. */
export interface IoFigures {
  blk_seq_read_mbs: number;
  blk_seq_write_mbs: number;
  blk_rand_read_iops: number;
  tcp_guest_to_host_mbs: number;
  tcp_host_to_guest_mbs: number;
  vsock_guest_to_host_mbs: number;
}

export interface Workspace {
  dir: string;
  probe: string;
  dataDisk: string;
  toolDisk: string;
  netns: string;
  sizes: IoSizes;
}

/** Builds io-probe and the disks, and makes the namespace with its tap; `close()` removes the namespace. */
export function prepareWorkspace(dir: string, sizes: IoSizes): Workspace & { close(): void } {
  const probe = join(dir, 'io-probe');
  try {
    execFileSync('gcc', ['-static', '-O2', '-o', probe, PROBE_SOURCE], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    throw new BenchSetupError(`building io-probe with gcc -static failed (install gcc and libc6-dev): ${(e as Error).message.split('\n')[0]}`);
  }
  const dataDisk = join(dir, 'data.img');
  writeFileSync(dataDisk, Buffer.alloc(sizes.mib << 20, 0x5a));
  const binary = readFileSync(probe);
  const toolDisk = join(dir, 'tool.img');
  writeFileSync(toolDisk, Buffer.concat([binary, Buffer.alloc((512 - (binary.length % 512)) % 512)]));
  const netns = `tsvmm-bench-${process.pid}`;
  const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'ignore' });
  ip('netns', 'add', netns);
  ip('-n', netns, 'link', 'set', 'lo', 'up');
  ip('-n', netns, 'tuntap', 'add', 'dev', TAP, 'mode', 'tap');
  ip('-n', netns, 'addr', 'add', `${HOST_IP}/24`, 'dev', TAP);
  ip('-n', netns, 'link', 'set', TAP, 'up');
  return { dir, probe, dataDisk, toolDisk, netns, sizes, close: () => ip('netns', 'del', netns) };
}

/** The guest's side: copy io-probe off its disk, then measure each device in turn. */
function guestScript(w: Workspace, probeBytes: number): string[] {
  const { mib, randomSeconds } = w.sizes;
  const p = '/tmp/io-probe';
  return ['sh', '-c', [
    `head -c ${probeBytes} /dev/vdb > ${p} && chmod +x ${p}`,
    `${p} blk /dev/vda ${mib} ${randomSeconds}`,
    `${p} tcp-send ${HOST_IP} ${Port.TCP_SINK} ${mib}`,
    `${p} tcp-recv ${HOST_IP} ${Port.TCP_SOURCE}`,
    `${p} vsock-send 2 ${Port.VSOCK_SINK} ${mib}`,
  ].join(' && ')];
}

export type Vmm = 'tsvmm' | 'qemu';

/** The VMM's command line for the workload, run inside the namespace (where the tap is). */
function vmmCommand(vmm: Vmm, w: Workspace, guest: { kernel: string; initrd: string }, cid: number, probeBytes: number): string[] {
  const script = guestScript(w, probeBytes);
  if (vmm === 'tsvmm') {
    return [process.execPath, CLI, 'run', '--disk', w.dataDisk, '--disk', `${w.toolDisk},ro`, '--net', `tap=${TAP}`, '--vsock', `cid=${cid}`, '--append', IP_PARAMETER, '--', ...script];
  }
  return [
    'qemu-system-x86_64', '-accel', 'kvm', '-M', 'pc', '-cpu', 'host', '-m', '512M', '-smp', '1',
    '-nodefaults', '-nographic', '-no-reboot', '-serial', 'stdio',
    '-kernel', guest.kernel, '-initrd', guest.initrd,
    '-append', `console=ttyS0 panic=-1 quiet ${IP_PARAMETER} ${guestCommandParameter(script)}`,
    '-drive', `if=none,id=data,file=${w.dataDisk},format=raw`, '-device', 'virtio-blk-pci,drive=data',
    '-drive', `if=none,id=tool,file=${w.toolDisk},format=raw,readonly=on`, '-device', 'virtio-blk-pci,drive=tool',
    '-netdev', `tap,id=net,ifname=${TAP},script=no,downscript=no,vhost=on`, '-device', 'virtio-net-pci,netdev=net',
    '-device', `vhost-vsock-pci,guest-cid=${cid}`,
  ];
}

interface Running {
  lines(): Record<string, any>[];
  /** Resolves when a line with key `key` has appeared. */
  line(key: string): Promise<Record<string, any>>;
  done: Promise<number | null>;
  kill(): void;
}

/** Starts a process whose stdout carries JSON lines (anything else is kept for the error message). */
function start(argv: string[], timeoutMs: number): Running {
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const parsed: Record<string, any>[] = [];
  const waiters: (() => void)[] = [];
  child.stdout.on('data', (d: Buffer) => {
    output += d.toString('latin1');
    const lines = output.split('\n');
    output = lines.pop()!;
    for (const line of lines) {
      const json = line.slice(line.indexOf('{'));
      try {
        if (line.includes('{')) parsed.push(JSON.parse(json));
      } catch {
        // a console line that only looks like JSON
      }
    }
    waiters.forEach((w) => w());
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString('latin1')).slice(-4000)));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise<number | null>((resolve) =>
    child.on('close', (status) => {
      clearTimeout(timer);
      waiters.forEach((w) => w());
      resolve(status);
    }),
  );
  let ended = false;
  void done.then(() => (ended = true));
  return {
    lines: () => parsed,
    kill: () => child.kill('SIGKILL'),
    done,
    line: (key) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const found = parsed.find((l) => key in l);
          if (found) resolve(found);
          else if (ended) reject(new Error(`${argv.slice(0, 3).join(' ')} ended without ${key}: ${stderr.slice(-1500)}`));
          else return;
          waiters.splice(waiters.indexOf(check), 1);
        };
        waiters.push(check);
        check();
      }),
  };
}

const inNetns = (w: Workspace, argv: string[]) => ['ip', 'netns', 'exec', w.netns, ...argv];

/** One VMM through the whole workload. */
export async function measureVmm(vmm: Vmm, w: Workspace, guest: { kernel: string; initrd: string }, cid: number, timeoutMs: number): Promise<IoFigures> {
  const probeBytes = readFileSync(w.probe).length;
  const mib = String(w.sizes.mib);
  const peers = [
    start(inNetns(w, [w.probe, 'tcp-sink', String(Port.TCP_SINK), mib]), timeoutMs),
    start(inNetns(w, [w.probe, 'tcp-source', String(Port.TCP_SOURCE), mib]), timeoutMs),
    start([w.probe, 'vsock-sink', String(Port.VSOCK_SINK), mib], timeoutMs),
  ];
  try {
    await Promise.all(peers.map((p) => p.line('listening')));
    const run = start(inNetns(w, vmmCommand(vmm, w, guest, cid, probeBytes)), timeoutMs);
    try {
      const [blk, send, recv, vsock] = [await run.line('blk'), await run.line('tcp_send'), await run.line('tcp_recv'), await run.line('vsock_send')];
      return {
        blk_seq_read_mbs: blk.blk.seq_read_mbs,
        blk_seq_write_mbs: blk.blk.seq_write_mbs,
        blk_rand_read_iops: blk.blk.rand_read_iops,
        tcp_guest_to_host_mbs: send.tcp_send.mbs,
        tcp_host_to_guest_mbs: recv.tcp_recv.mbs,
        vsock_guest_to_host_mbs: vsock.vsock_send.mbs,
      };
    } finally {
      await Promise.race([run.done, new Promise((r) => setTimeout(r, 30_000))]);
      run.kill();
    }
  } finally {
    peers.forEach((p) => p.kill());
  }
}

/** io-probe alone on the host: the same file; TCP over loopback in the namespace; vsock over the loopback transport. */
export async function measureHost(w: Workspace, timeoutMs: number): Promise<IoFigures & { vsock_loopback: boolean }> {
  const mib = String(w.sizes.mib);
  const blk = JSON.parse(execFileSync(w.probe, ['blk', w.dataDisk, mib, String(w.sizes.randomSeconds)], { encoding: 'utf8' })).blk;
  const pair = async (server: string[], client: string[], key: string) => {
    const peer = start(server, timeoutMs);
    await peer.line('listening');
    const c = start(client, timeoutMs);
    const line = await c.line(key);
    peer.kill();
    return line[key].mbs as number;
  };
  const send = await pair(inNetns(w, [w.probe, 'tcp-sink', String(Port.TCP_SINK), mib]), inNetns(w, [w.probe, 'tcp-send', '127.0.0.1', String(Port.TCP_SINK), mib]), 'tcp_send');
  const recv = await pair(inNetns(w, [w.probe, 'tcp-source', String(Port.TCP_SOURCE), mib]), inNetns(w, [w.probe, 'tcp-recv', '127.0.0.1', String(Port.TCP_SOURCE)]), 'tcp_recv');
  let vsock = NaN;
  let vsockLoopback = true;
  try {
    vsock = await pair([w.probe, 'vsock-sink', String(Port.VSOCK_SINK), mib], [w.probe, 'vsock-send', String(VSOCK_LOCAL_CID), String(Port.VSOCK_SINK), mib], 'vsock_send');
  } catch {
    vsockLoopback = false;
  }
  return {
    blk_seq_read_mbs: blk.seq_read_mbs, blk_seq_write_mbs: blk.seq_write_mbs, blk_rand_read_iops: blk.rand_read_iops,
    tcp_guest_to_host_mbs: send, tcp_host_to_guest_mbs: recv, vsock_guest_to_host_mbs: vsock, vsock_loopback: vsockLoopback,
  };
}
