/**
 * The web console's page: the serial console in xterm.js, the exit chart,
 * the vCPUs, the busiest ports and addresses, the memory map, and the
 * pause, resume and stop buttons, all over one WebSocket (messages.ts).
 * The server sends cumulative counts; rates are worked out here.
 */
import type { Terminal as XtermTerminal } from '@xterm/xterm';
import type { PageMessage, ServerMessage, VcpuView } from '../messages.js';
import { ExitChart, formatRate, type Rates } from './exit-chart.js';
import { drawMemoryMap } from './memory-map-view.js';

declare global {
  interface Window {
    /** xterm.js's UMD build, loaded by index.html. */
    Terminal: typeof XtermTerminal;
  }
}

const $ = <T extends Element = HTMLElement>(selector: string) => document.querySelector(selector) as T;

const terminal = new window.Terminal({ convertEol: false, fontSize: 13, theme: { background: '#0b0e11' } });
terminal.open($('#terminal'));
const chart = new ExitChart($<HTMLCanvasElement>('#chart'), $('#legend'));
const socket = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
const send = (m: PageMessage) => socket.readyState === WebSocket.OPEN && socket.send(JSON.stringify(m));

terminal.onData((data) => send({ type: 'input', data }));
for (const action of ['pause', 'resume', 'stop'] as const) $(`#${action}`).addEventListener('click', () => send({ type: action }));
const chartVcpu = $<HTMLSelectElement>('#chart-vcpu');
chartVcpu.addEventListener('change', () => chart.show(chartVcpu.value === 'all' ? 'all' : Number(chartVcpu.value)));

let previous: { atMs: number; vcpus: VcpuView[] } | undefined;

socket.addEventListener('message', (event) => {
  const m = JSON.parse(event.data as string) as ServerMessage;
  switch (m.type) {
    case 'machine': {
      // Each machine of the run (a reboot builds a new one) is counted, for whoever watches the page.
      const boot = Number(document.body.dataset.boots ?? 0) + 1;
      document.body.dataset.boots = String(boot);
      $('#description').textContent = boot > 1 ? `${m.description} (boot ${boot})` : m.description;
      drawMemoryMap($<SVGSVGElement>('#memory-map'), m.memoryMap);
      previous = undefined;
      chooseVcpus(m.cpus);
      chart.clear();
      return showState('starting');
    }
    case 'console':
      return terminal.write(Uint8Array.from(atob(m.data), (c) => c.charCodeAt(0)));
    case 'sample': {
      const seconds = previous === undefined ? 0 : (m.atMs - previous.atMs) / 1000;
      const rates = seconds > 0 ? m.vcpus.map((v, i) => ratesOf(previous!.vcpus[i], v, seconds)) : [];
      if (seconds > 0) chart.add(m.atMs, rates);
      const all = rates.flatMap(Object.values).reduce((a, b) => a + b, 0);
      $('#rate').textContent = seconds > 0 ? `(${formatRate(all)}/s in all)` : '';
      showVcpus(m.vcpus, seconds > 0 ? previous!.vcpus : undefined, seconds);
      showTotals(m.vcpus);
      showHot(m.vcpus);
      $('#assisted').textContent = Object.keys(m.assisted).length > 0
        ? `Emulation assist: ${Object.entries(m.assisted).map(([k, v]) => `${k} ${v}`).join(', ')}` : '';
      previous = { atMs: m.atMs, vcpus: m.vcpus };
      // How many samples the page has shown, for whoever watches it (the tests).
      document.body.dataset.samples = String(Number(document.body.dataset.samples ?? 0) + 1);
      return showState(m.state);
    }
    case 'ended':
      showTotals(m.vcpus);
      return showState('ended', m.message);
  }
});
socket.addEventListener('close', () => {
  if (document.body.dataset.state !== 'ended') showState('disconnected', 'the VMM has gone');
});

function showState(state: string, why?: string): void {
  document.body.dataset.state = state;
  const badge = $('#state');
  badge.className = `state ${state}`;
  badge.textContent = why === undefined ? state : `${state}: ${why}`;
  $<HTMLButtonElement>('#pause').disabled = state !== 'running';
  $<HTMLButtonElement>('#resume').disabled = state !== 'paused';
  $<HTMLButtonElement>('#stop').disabled = state !== 'running' && state !== 'paused';
}

function sum(vcpus: VcpuView[], field: 'exits' | 'handlingNs'): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of vcpus) for (const [reason, n] of Object.entries(v[field])) out[reason] = (out[reason] ?? 0) + n;
  return out;
}

/** One vCPU's exits per second by reason between two samples. */
function ratesOf(before: VcpuView | undefined, now: VcpuView, seconds: number): Rates {
  return Object.fromEntries(Object.entries(now.exits).map(([reason, n]) => [reason, (n - (before?.exits[reason] ?? 0)) / seconds]));
}

/** The chart's choice of vCPUs: all of them, or one (kept across a reboot where it still exists). */
function chooseVcpus(cpus: number): void {
  const kept = chartVcpu.value;
  const options = [['all', 'all vCPUs'], ...Array.from({ length: cpus }, (_, i) => [String(i), `vCPU ${i}`])];
  chartVcpu.replaceChildren(...options.map(([value, label]) => new Option(label, value)));
  chartVcpu.value = options.some(([value]) => value === kept) ? kept : 'all';
  chart.show(chartVcpu.value === 'all' ? 'all' : Number(chartVcpu.value));
}

function rows(table: string, cells: (string | number)[][], attributes?: Record<string, string>[]): void {
  $(`${table} tbody`).replaceChildren(
    ...cells.map((row, i) => {
      const tr = document.createElement('tr');
      for (const [k, v] of Object.entries(attributes?.[i] ?? {})) tr.dataset[k] = v;
      for (const cell of row) {
        const td = document.createElement('td');
        td.textContent = String(cell);
        if (typeof cell === 'number') td.className = 'number';
        tr.append(td);
      }
      return tr;
    }),
  );
}

/** The exit table: what `--stats` prints at the end, summed over vCPUs. */
function showTotals(vcpus: VcpuView[]): void {
  const [exits, ns] = [sum(vcpus, 'exits'), sum(vcpus, 'handlingNs')];
  const reasons = Object.keys(exits).sort((a, b) => exits[b] - exits[a]);
  rows('#totals', reasons.map((r) => [r, exits[r], ns[r] > 0 ? `${(ns[r] / exits[r] / 1000).toFixed(1)} us each` : '']), reasons.map((r) => ({ reason: r, count: String(exits[r]) })));
}

function showVcpus(vcpus: VcpuView[], before: VcpuView[] | undefined, seconds: number): void {
  const total = (v: VcpuView) => Object.values(v.exits).reduce((a, b) => a + b, 0);
  const rates = vcpus.map((v, i) => (before ? (total(v) - total(before[i])) / seconds : undefined));
  rows('#vcpus', vcpus.map((v, i) => [v.id, v.state, v.rip ?? '', rates[i] === undefined ? '' : formatRate(rates[i])]), rates.map((r): Record<string, string> => (r === undefined ? {} : { rate: String(r) })));
}

function showHot(vcpus: VcpuView[]): void {
  const merged = new Map<string, number>();
  for (const v of vcpus) {
    for (const [port, n] of v.ports) merged.set(`port 0x${port.toString(16)}`, (merged.get(`port 0x${port.toString(16)}`) ?? 0) + n);
    for (const [address, n] of v.mmio) merged.set(`MMIO 0x${address.toString(16)}`, (merged.get(`MMIO 0x${address.toString(16)}`) ?? 0) + n);
  }
  rows('#hot', [...merged].sort((a, b) => b[1] - a[1]).slice(0, 8));
}
