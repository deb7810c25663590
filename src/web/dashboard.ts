/**
 * The web console's side of a run: what the page sees of the machine and
 * what it may do to it. Serial output goes to every open page as it comes
 * (beside the terminal; a page that opens later first gets the last 64
 * KiB of it), keys typed there go to the guest's UART, and the
 * pause, resume and stop buttons call the same Machine methods the API's
 * PATCH /vm and a signal do.
 *
 * While a page is open, every SAMPLE_MS each vCPU is asked where it
 * stands (one kick out of KVM_RUN, then KVM_GET_REGS and
 * KVM_GET_MP_STATE on its own thread) and the exit counters it keeps in
 * shared memory are read: the guest's exits cost nothing more than they
 * did, however many there are. The page gets cumulative counts and works
 * out the rates.
 *
 * A run may build several machines (a reboot): the page is told of each,
 * and of each one's end. Runs on the main thread.
 */
import type { WebSocket } from 'ws';
import { serialInputOf, type SerialInput } from '../console/serial-input.js';
import { ExitStatus, type VmStop } from '../devices/vm-stop.js';
import { collectExitStats } from '../vcpu/exit-stats.js';
import type { Machine } from '../vmm/machine.js';
import type { PageMessage, ServerMessage, VcpuView } from './messages.js';
import type { WebAddress } from './web-address.js';
import { WebServer } from './web-server.js';

const SAMPLE_MS = 500;
/** A vCPU that does not answer a probe within this is shown as busy (in a long exit). */
const PROBE_ANSWER_MS = 200;
/** Messages a slow page may have queued before it is sent no more samples. */
const MAX_BUFFERED = 1 << 20;
/** Serial output kept for a page that opens later: what a terminal's scrollback would hold. */
const CONSOLE_HISTORY = 64 << 10;

export class Dashboard {
  private readonly pages = new Set<WebSocket>();
  private machine?: Machine;
  /** The machine has done start()'s work (its vCPUs run, or wait paused): before that, no button acts on it. */
  private started = false;
  private lastMachineMessage?: ServerMessage;
  private ended?: ServerMessage;
  private serial?: SerialInput;
  private timer?: NodeJS.Timeout;
  private sampling = false;
  /** The run's latest serial output (across reboots), about CONSOLE_HISTORY bytes in chunks as they came, for pages that open later. */
  private readonly history: Uint8Array[] = [];
  private historyBytes = 0;

  private constructor(readonly server: WebServer) {}

  static async open(address: WebAddress): Promise<Dashboard> {
    let dashboard: Dashboard | undefined;
    const server = await WebServer.listen(address, (socket) => dashboard!.connected(socket));
    dashboard = new Dashboard(server);
    return dashboard;
  }

  /** Shows `machine` from now on; returns what undoes it (before the machine is destroyed). */
  attach(machine: Machine): () => void {
    this.machine = machine;
    this.started = false;
    void machine.started.then(() => {
      if (this.machine === machine) this.started = true;
    });
    this.ended = undefined;
    this.serial = serialInputOf(machine);
    const sink = machine.console;
    machine.console = (data) => {
      sink(data);
      if (data.length === 0) return;
      this.history.push(Uint8Array.from(data));
      this.historyBytes += data.length;
      while (this.historyBytes - this.history[0].length >= CONSOLE_HISTORY) this.historyBytes -= this.history.shift()!.length;
      this.send({ type: 'console', data: Buffer.from(data).toString('base64') });
    };
    this.lastMachineMessage = { type: 'machine', description: machine.description, cpus: machine.vcpus.length, memoryMap: machine.memoryMap() };
    this.send(this.lastMachineMessage);
    this.startSampling();
    return () => {
      this.serial?.close();
      this.serial = undefined;
      machine.console = sink;
      if (this.machine === machine) this.machine = undefined;
    };
  }

  /** The machine stopped: the page gets its final counts. */
  machineEnded(machine: Machine, stop: VmStop): void {
    this.ended = { type: 'ended', message: stop.message, vcpus: this.counts(machine) };
    this.send(this.ended);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.server.close();
  }

  private connected(socket: WebSocket): void {
    this.pages.add(socket);
    socket.on('close', () => this.pages.delete(socket));
    socket.on('error', () => this.pages.delete(socket));
    socket.on('message', (raw) => this.command(raw.toString()));
    // What the guest printed before the page opened comes first, as a terminal's scrollback would.
    const earlier: ServerMessage | undefined = this.history.length > 0 ? { type: 'console', data: Buffer.concat(this.history).toString('base64') } : undefined;
    for (const m of [this.lastMachineMessage, earlier, this.ended]) if (m) socket.send(JSON.stringify(m));
  }

  /** What the page asked; anything else is ignored, as a page is not trusted to be well-formed. */
  private command(text: string): void {
    let m: PageMessage;
    try {
      m = JSON.parse(text) as PageMessage;
    } catch {
      return;
    }
    const machine = this.machine;
    if (machine === undefined) return;
    if (m.type !== 'input' && !this.started) return;
    if (m.type === 'input' && typeof m.data === 'string') this.serial?.send(Buffer.from(m.data, 'utf8'));
    else if (m.type === 'pause' && machine.state === 'running') void machine.pause().then(() => this.sample());
    else if (m.type === 'resume' && machine.state === 'paused') machine.resume();
    else if (m.type === 'stop' && (machine.state === 'running' || machine.state === 'paused')) {
      void machine.stop({ kind: 'stopped', exitCode: ExitStatus.OK, message: 'stopped from the web console' });
    }
  }

  private startSampling(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => void this.sample(), SAMPLE_MS);
    this.timer.unref();
  }

  private async sample(): Promise<void> {
    const machine = this.machine;
    if (machine === undefined || this.pages.size === 0 || this.sampling || this.ended) return;
    this.sampling = true;
    try {
      const probed = machine.state === 'running' || machine.state === 'paused'
        ? await Promise.all(machine.vcpus.map((v) => v.thread.sample(PROBE_ANSWER_MS)))
        : undefined;
      const vcpus = this.counts(machine).map((view, i) => {
        const p = probed?.[i];
        return p === undefined ? view : { ...view, state: p.state, rip: p.rip === undefined ? undefined : `0x${p.rip.toString(16)}`, ports: p.ports, mmio: p.mmio };
      });
      if (this.machine === machine && !this.ended) {
        // Until start() is done, the buttons wait (the page enables them by this state).
        const state = this.started ? machine.state : 'starting';
        this.send({ type: 'sample', atMs: performance.now(), state, vcpus, assisted: machine.exitStats().assisted });
      }
    } finally {
      this.sampling = false;
    }
  }

  /** Each vCPU's counters, read from the memory its worker writes them to. */
  private counts(machine: Machine): VcpuView[] {
    return machine.vcpus.map((v) => {
      const { rows } = collectExitStats([v.thread.stats]);
      const exits = Object.fromEntries(rows.map((r) => [r.reason, r.count]));
      const handlingNs = Object.fromEntries(rows.map((r) => [r.reason, r.handlingNs]));
      return { id: v.thread.id, state: 'stopped', exits, handlingNs, ports: [], mmio: [] };
    });
  }

  private send(message: ServerMessage): void {
    const text = JSON.stringify(message);
    for (const page of this.pages) {
      // A page that cannot keep up misses samples, never console output or the end.
      if (message.type === 'sample' && page.bufferedAmount > MAX_BUFFERED) continue;
      page.send(text);
    }
  }
}
