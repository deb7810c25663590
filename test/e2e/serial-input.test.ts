/**
 * Host input reaching a guest through the UART's interrupt: a real-mode
 * guest that echoes what it receives from its IRQ 4 handler, fed from the
 * main thread, and the terminal console's keys and output around it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { attachConsole } from '../../src/console/attach-console.js';
import { parseConsoleMode } from '../../src/console/console-mode.js';
import { serialInputOf } from '../../src/console/serial-input.js';
import { MiB } from '../../src/memory/layout.js';
import { assemble } from '../../src/tools/assembler.js';
import { buildMachine } from '../../src/vmm/builder.js';
import type { Machine } from '../../src/vmm/machine.js';
import { kvmTest } from '../helpers/kvm.js';

const LOAD_ADDRESS = 0x7c00;
const EOT = 0x04;
/** The guest writes 0x22 to the debug-exit port once it has received EOT. */
const EOT_STATUS = (0x22 << 1) | 1;

/** The shared 8259 set-up, included by absolute path: the guest is assembled from a temporary folder. */
const PIC_SETUP = fileURLToPath(new URL('../../../test/guests/lib/pic8259.inc', import.meta.url));

// Real mode: IRQ 4 is vector 0x24 after the PIC remap; only it is unmasked.
// The UART gets 8N1, FIFOs with a 14-byte trigger (so short input arrives as
// a character timeout), the receive interrupt and OUT2. The handler echoes
// every byte while LSR.DR says there is one, and marks EOT instead.
const ECHO_GUEST = `
    .code16
    .set COM1, 0x3f8
    .set IRQ4_VECTOR, 0x24
    .globl _start
_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    movw $irq4, IRQ4_VECTOR * 4
    movw %ax, IRQ4_VECTOR * 4 + 2
    mov $0x20, %al
    mov $0xef, %ah
    call pic_setup

    mov $COM1 + 3, %dx
    mov $0x03, %al
    out %al, %dx
    mov $COM1 + 2, %dx
    mov $0xc7, %al
    out %al, %dx
    mov $COM1 + 4, %dx
    mov $0x0b, %al
    out %al, %dx
    mov $COM1 + 1, %dx
    mov $0x01, %al
    out %al, %dx

    mov $ready, %si
    mov $COM1, %dx
1:  lodsb
    test %al, %al
    jz wait
    out %al, %dx
    jmp 1b

wait:
    sti
    hlt
    cli
    cmpb $0, done
    je wait
    mov $0x22, %al
    out %al, $0xf4
    hlt

irq4:
    push %ax
    push %dx
    mov $COM1 + 2, %dx
    in %dx, %al
1:  mov $COM1 + 5, %dx
    in %dx, %al
    test $0x01, %al
    jz 3f
    mov $COM1, %dx
    in %dx, %al
    cmp $${EOT}, %al
    jne 2f
    movb $1, %cs:done
    jmp 1b
2:  out %al, %dx
    jmp 1b
3:  mov $0x20, %al
    out %al, $0x20
    pop %dx
    pop %ax
    iret

    .include "${PIC_SETUP}"

done: .byte 0
ready: .asciz "ready\\n"
`;

function echoGuest(): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), 'tsvmm-serial-input-'));
  try {
    const source = join(dir, 'echo.s');
    writeFileSync(source, ECHO_GUEST);
    return assemble(source, { address: LOAD_ADDRESS });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Builds the echo guest; `output` collects what it prints (unless a console is attached instead). */
function echoMachine(): { machine: Machine; output: () => Buffer } {
  const chunks: Uint8Array[] = [];
  const machine = buildMachine({
    memory: 16 * MiB,
    cpus: 1,
    boot: { kind: 'raw', image: echoGuest(), mode: 'real', loadAddr: LOAD_ADDRESS },
    console: (data) => chunks.push(data),
  });
  return { machine, output: () => Buffer.concat(chunks) };
}

async function until(what: string, condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}

kvmTest('bytes pushed from the main thread reach the guest through IRQ 4 and come back in order', async () => {
  const { machine, output } = echoMachine();
  try {
    await machine.start();
    await until('the guest to be ready', () => output().toString().endsWith('ready\n'));
    const input = serialInputOf(machine);
    assert.ok(input);
    // Larger than the UART's input ring, so some of it has to wait on the host side.
    const paste = Buffer.from(Array.from({ length: 6000 }, (_, i) => String.fromCharCode(0x20 + (i % 95))).join(''));
    input.send(paste);
    assert.ok(input.pending > 0, 'the paste is larger than the ring: some of it waits');
    input.send(Uint8Array.of(EOT));
    const stop = await machine.wait();
    assert.equal(stop.kind, 'debug-exit', stop.message);
    assert.equal(stop.exitCode, EOT_STATUS);
    assert.equal(input.pending, 0);
    assert.equal(output().subarray('ready\n'.length).toString(), paste.toString());
  } finally {
    await machine.destroy();
  }
});

kvmTest('the terminal console: keys to the guest, Ctrl-A Ctrl-A sends Ctrl-A, Ctrl-A h helps, Ctrl-A x quits', async () => {
  const { machine } = echoMachine();
  const input = new PassThrough();
  const output = new PassThrough();
  const messages = new PassThrough();
  let shown = '';
  output.on('data', (d: Buffer) => (shown += d.toString('latin1')));
  let help = '';
  messages.on('data', (d: Buffer) => (help += d.toString()));
  let quits = 0;
  const console = attachConsole(machine, { kind: 'stdio' }, () => quits++, { input, output, messages });
  try {
    await machine.start();
    await until('the guest to be ready', () => shown === 'ready\n');
    input.write('ab');
    input.write(Uint8Array.of(0x01));
    input.write(Uint8Array.of(0x01, 0x63, 0x01, 0x68, 0x01, 0x7a)); // Ctrl-A, c, Ctrl-A h, Ctrl-A z (dropped)
    await until('the echo', () => shown === 'ready\nab\x01c');
    await until('the help', () => help.includes('Ctrl-A x'));
    assert.equal(quits, 0);
    input.write(Uint8Array.of(0x01, 0x78));
    await until('Ctrl-A x', () => quits === 1);
    await machine.stop();
    assert.equal(shown, 'ready\nab\x01c');
  } finally {
    console.detach();
    await machine.destroy();
  }
});

kvmTest('Ctrl-A p pauses the VM (keys typed meanwhile wait) and resumes it', async () => {
  const { machine } = echoMachine();
  const input = new PassThrough();
  const output = new PassThrough();
  const messages = new PassThrough();
  let shown = '';
  output.on('data', (d: Buffer) => (shown += d.toString('latin1')));
  let said = '';
  messages.on('data', (d: Buffer) => (said += d.toString()));
  const console = attachConsole(machine, { kind: 'stdio' }, () => {}, { input, output, messages });
  try {
    await machine.start();
    await until('the guest to be ready', () => shown === 'ready\n');
    input.write(Uint8Array.of(0x01, 0x70)); // Ctrl-A p
    await until('the pause', () => said.includes('tsvmm: paused (Ctrl-A p resumes)'));
    assert.equal(machine.state, 'paused');
    input.write('xy');
    await delay(500);
    assert.equal(shown, 'ready\n', 'a paused guest echoes nothing');
    input.write(Uint8Array.of(0x01, 0x70));
    await until('the resume', () => said.includes('tsvmm: resumed'));
    assert.equal(machine.state, 'running');
    await until('the echo of what was typed while paused', () => shown === 'ready\nxy');
  } finally {
    console.detach();
    await machine.destroy();
  }
});

kvmTest('console file:PATH writes the output to the file; none discards it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvmm-console-'));
  try {
    const path = join(dir, 'console.log');
    for (const mode of [{ kind: 'file', path } as const, { kind: 'none' } as const]) {
      const { machine, output } = echoMachine();
      const console = attachConsole(machine, mode, () => {});
      try {
        await machine.start();
        await until('the guest to be ready', () => mode.kind === 'none' || readFileSync(path, 'utf8') === 'ready\n');
        serialInputOf(machine)!.send(Buffer.from(`to ${mode.kind}\x04`));
        const stop = await machine.wait();
        assert.equal(stop.exitCode, EOT_STATUS);
      } finally {
        console.detach();
        await machine.destroy();
      }
      assert.equal(output().length, 0, 'the attached console replaced the config one');
    }
    assert.equal(readFileSync(path, 'utf8'), 'ready\nto file');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--console values: stdio, file:PATH, none; anything else is a one-line error', () => {
  assert.deepEqual(parseConsoleMode('stdio'), { kind: 'stdio' });
  assert.deepEqual(parseConsoleMode('none'), { kind: 'none' });
  assert.deepEqual(parseConsoleMode('file:/tmp/a:b.log'), { kind: 'file', path: '/tmp/a:b.log' });
  for (const bad of ['file:', 'tty', '']) assert.throws(() => parseConsoleMode(bad), /^Error: --console takes stdio, file:PATH or none, not '.*'$/);
});
