/**
 * The MCFG table (PCI Firmware Specification 3.2, 4.1.2): where each PCI
 * segment's ECAM window is, for the buses it covers. The OS then reaches
 * config space through memory rather than ports 0xCF8/0xCFC.
 */
import { systemTable } from './table.js';

export const MCFG_REVISION = 1;
const RESERVED = 8;
const ALLOCATION_SIZE = 16;

export interface EcamWindow {
  base: number;
  segment: number;
  firstBus: number;
  lastBus: number;
}

export function mcfg(windows: readonly EcamWindow[]): Uint8Array {
  const body = new Uint8Array(RESERVED + ALLOCATION_SIZE * windows.length);
  const view = new DataView(body.buffer);
  windows.forEach((w, i) => {
    const at = RESERVED + ALLOCATION_SIZE * i;
    view.setBigUint64(at, BigInt(w.base), true);
    view.setUint16(at + 8, w.segment, true);
    view.setUint8(at + 10, w.firstBus);
    view.setUint8(at + 11, w.lastBus);
  });
  return systemTable('MCFG', MCFG_REVISION, body);
}
