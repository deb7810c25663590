/**
 * The guest-physical memory map as a picture: address on a log axis from
 * 4 KiB up (so the first megabyte, the MMIO hole near 4 GiB and RAM above
 * it all show), RAM as one column, the MMIO hole and each device's window
 * as another, every block at its true place and size on that axis.
 */
import type { MemoryMapView } from '../messages.js';

const SVG = 'http://www.w3.org/2000/svg';
const FLOOR = 12; // log2 of 4 KiB: where the axis starts
const LABEL_GAP = 13;

export function drawMemoryMap(svg: SVGSVGElement, entries: MemoryMapView[]): void {
  const memory = entries.filter((e) => e.space === 'memory');
  const width = Number(svg.getAttribute('width'));
  const height = Number(svg.getAttribute('height'));
  const top = Math.max(...memory.map((e) => Math.log2(e.end)));
  const y = (address: number) => height - 10 - ((height - 20) * (Math.max(FLOOR, Math.log2(Math.max(1, address))) - FLOOR)) / (top - FLOOR);
  const element = (name: string, attributes: Record<string, string | number>, text?: string) => {
    const e = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attributes)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const children: Element[] = [];
  for (let p = FLOOR; p <= top; p += 2) {
    children.push(element('line', { x1: 0, x2: 150, y1: y(2 ** p), y2: y(2 ** p), stroke: '#232a31' }));
    children.push(element('text', { x: 0, y: y(2 ** p) - 2 }, sizeName(2 ** p)));
  }
  const block = (e: MemoryMapView, x: number, w: number, fill: string) =>
    element('rect', { x, width: w, y: y(e.end), height: Math.max(1, y(e.start) - y(e.end)), fill, stroke: '#101418' });
  for (const e of memory.filter((e) => e.what === 'RAM')) children.push(block(e, 50, 40, '#1f6f43'));
  const hole = memory.find((e) => e.what === 'MMIO hole');
  if (hole) children.push(block(hole, 96, 54, '#2c333b'));
  const devices = memory.filter((e) => e !== hole && e.what !== 'RAM');
  for (const e of devices) children.push(block(e, 100, 46, '#4fb3ff'));
  // Labels in a column from the top down, pushed apart where blocks sit close on the axis, each with a line to its block.
  let lastLabel = -Infinity;
  for (const e of [...memory].sort((a, b) => b.end - a.end || b.start - a.start)) {
    const middle = (y(e.start) + y(e.end)) / 2;
    const at = Math.max(middle + 4, lastLabel + LABEL_GAP);
    lastLabel = at;
    children.push(element('line', { x1: e.what === 'RAM' ? 90 : 150, x2: 170, y1: middle, y2: at - 4, stroke: '#46505a' }));
    children.push(element('text', { x: 174, y: at }, `${e.what} @ 0x${e.start.toString(16)}`));
  }
  svg.setAttribute('viewBox', `0 0 ${width} ${Math.max(height, lastLabel + LABEL_GAP)}`);
  svg.setAttribute('height', String(Math.max(height, lastLabel + LABEL_GAP)));
  svg.replaceChildren(...children);
}

function sizeName(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (bytes >= 1024 && i < units.length - 1) {
    bytes /= 1024;
    i++;
  }
  return `${bytes} ${units[i]}`;
}
