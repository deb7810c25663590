/**
 * Firecracker's API and configuration file driving a real VM: the default
 * Linux guest configured over the socket with the typed client, started,
 * paused and resumed, its command's output and status tsvmm's; the same
 * guest from a configuration file, with and without the socket; and bad
 * input refused in one line before /dev/kvm is opened.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectApi, defaultGuestBootSource } from '../helpers/api-client.js';
import { runCli, startCli } from '../helpers/cli.js';
import { guestFile } from '../helpers/guests.js';
import { kvmTest } from '../helpers/kvm.js';

const dir = mkdtempSync(join(tmpdir(), 'tsvmm-fc-api-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const LINUX = { backend: 'hardware', timeout: 10 * 60_000 } as const;

kvmTest('tsvmm serve: the default guest configured and started over the API, paused and resumed; its command\'s status is tsvmm\'s', LINUX, async () => {
  const sock = join(dir, 'serve.sock');
  const cli = startCli(['serve', '--api-sock', sock], { timeoutMs: 8 * 60_000 });
  const client = await connectApi(sock, cli);
  assert.equal((await client.describeInstance()).state, 'Not started');
  await client.putMachineConfig({ vcpu_count: 2, mem_size_mib: 256 });
  await client.putBootSource(await defaultGuestBootSource(['sh', '-c', 'sleep 3; echo api-guest-$(nproc); exit 5']));
  await client.putEntropy();
  const metrics = join(dir, 'metrics.jsonl');
  await client.putMetrics({ metrics_path: metrics });
  await client.startInstance();
  assert.equal((await client.describeInstance()).state, 'Running');
  await cli.waitFor(/TSVMM-READY cpus=2/);
  await client.pause();
  assert.equal((await client.describeInstance()).state, 'Paused');
  // tsvmm's own path: the exits so far. A paused guest makes none: its vCPUs are out of KVM_RUN.
  const exits = async () => (await client.call<{ total: number }>('GET', '/tsvmm/exit-stats')).total;
  const paused = await exits();
  await sleep(1500);
  assert.equal(await exits(), paused, 'no exits while paused');
  assert.ok(paused > 0);
  await client.resume();
  assert.equal((await client.describeInstance()).state, 'Running');
  await client.action('FlushMetrics');
  const line = JSON.parse(readFileSync(metrics, 'utf8').trim().split('\n').at(-1)!);
  assert.ok(line.vcpu.exit_io > 0, `VM exits by reason: ${JSON.stringify(line.vcpu)}`);
  assert.ok(line.devices['virtio-rng.0'].queue0_chains > 0, `the guest's hwrng read the entropy device: ${JSON.stringify(line.devices)}`);
  assert.equal(line.api_server.put_actions, 1);
  const r = await cli.done;
  assert.match(r.stdout, /^api-guest-2\r?$/m);
  assert.equal(r.status, 5);
  assert.ok(!existsSync(sock), 'the socket is removed when tsvmm ends');
});

kvmTest('tsvmm\'s own path: a raw binary booted through the API, its debug-exit status tsvmm\'s', async () => {
  const sock = join(dir, 'raw.sock');
  const cli = startCli(['serve', '--api-sock', sock], { timeoutMs: 2 * 60_000 });
  const client = await connectApi(sock, cli);
  await client.putRawBoot({ image_path: guestFile('long-hello.s', { address: 0x100000 }), mode: 'long', load_addr: 0x100000 });
  await client.startInstance();
  const r = await cli.done;
  assert.deepEqual({ stdout: r.stdout, status: r.status }, { stdout: 'hello from long mode\n', status: (0x2a << 1) | 1 });
});

kvmTest('a Firecracker configuration file boots the same guest, with tsvmm run and with tsvmm serve', LINUX, async () => {
  const config = join(dir, 'vm.json');
  const disk = join(dir, 'disk.img');
  writeFileSync(disk, Buffer.alloc(1 << 20, 0x5a));
  writeFileSync(config, JSON.stringify({
    'boot-source': await defaultGuestBootSource(['sh', '-c', 'head -c 4 /dev/vda; echo; exit 4']),
    'machine-config': { vcpu_count: 1, mem_size_mib: 256 },
    drives: [{ drive_id: 'data', path_on_host: disk, is_root_device: false, is_read_only: true }],
  }));
  const run = await runCli(['run', '--config-file', config], { timeoutMs: 5 * 60_000 });
  assert.match(run.stdout, /^ZZZZ\r?$/m);
  assert.equal(run.status, 4);
  const sock = join(dir, 'serve-config.sock');
  const served = await runCli(['serve', '--api-sock', sock, '--config-file', config], { timeoutMs: 5 * 60_000 });
  assert.match(served.stdout, /^ZZZZ\r?$/m);
  assert.equal(served.status, 4);
});

kvmTest('tsvmm run --api-sock: the running VM seen and paused through the API', LINUX, async () => {
  const sock = join(dir, 'run.sock');
  const cli = startCli(['run', '--mem', '256M', '--api-sock', sock, '--', 'sh', '-c', 'sleep 4; echo run-api-ok'], { timeoutMs: 5 * 60_000 });
  const client = await connectApi(sock, cli);
  await cli.waitFor(/TSVMM-READY/);
  assert.equal((await client.describeInstance()).state, 'Running');
  assert.deepEqual(await client.getMachineConfig(), { vcpu_count: 1, mem_size_mib: 256, smt: false, track_dirty_pages: false, huge_pages: 'None' });
  await assert.rejects(client.putBootSource({ kernel_image_path: '/x' }), /not supported after starting the microVM/);
  await client.pause();
  assert.equal((await client.describeInstance()).state, 'Paused');
  await client.resume();
  const r = await cli.done;
  assert.match(r.stdout, /^run-api-ok\r?$/m);
  assert.equal(r.status, 0);
});

test('bad input is refused in one line, status 2, before any VM: the config file, its fields, flags beside it, a taken socket', async () => {
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ 'boot-source': { kernel_image_path: join(dir, 'missing') } }));
  const missing = await runCli(['run', '--config-file', bad]);
  assert.deepEqual({ status: missing.status, stdout: missing.stdout }, { status: 2, stdout: '' });
  assert.match(missing.stderr, /^tsvmm: boot-source: kernel_image_path '.*missing': no such file\n$/);

  writeFileSync(bad, JSON.stringify({ 'boot-source': { kernel_image_path: bad }, 'machine-config': { vcpu_count: 1, mem_size_mib: 64, gpu: 1 } }));
  const unknown = await runCli(['serve', '--api-sock', join(dir, 'x.sock'), '--config-file', bad]);
  assert.deepEqual({ status: unknown.status, stderr: unknown.stderr }, { status: 2, stderr: `tsvmm: config file '${bad}': machine-config: unknown field 'gpu'\n` });

  const beside = await runCli(['run', '--config-file', bad, '--mem', '1G', '--disk', bad]);
  assert.deepEqual({ status: beside.status, stderr: beside.stderr }, { status: 2, stderr: 'tsvmm: --config-file describes the VM; drop --mem, --disk\n' });

  const taken = join(dir, 'taken.sock');
  writeFileSync(taken, '');
  const busy = await runCli(['serve', '--api-sock', taken]);
  assert.deepEqual({ status: busy.status, stderr: busy.stderr }, { status: 2, stderr: `tsvmm: the API socket '${taken}' already exists: remove it, or choose another path\n` });

  const version = await runCli(['--version']);
  const packageVersion = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')).version;
  assert.deepEqual({ status: version.status, stdout: version.stdout }, { status: 0, stdout: `${packageVersion}\n` });
  const typo = await runCli(['run', '--cpu', '2']);
  assert.equal(typo.status, 2);
  assert.equal(typo.stderr, "tsvmm: unknown option '--cpu' (Did you mean --cpus?)\n", 'one line, with the parser\'s suggestion');
});
