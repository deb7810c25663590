/**
 * MSI-X (PCI Local Bus 3.0, 6.8.2): the capability in config space and the
 * vector table and pending-bit array in a BAR. A vector is delivered when
 * MSI-X is enabled, the function is not masked and the vector's entry is
 * not masked; otherwise its pending bit is set and it is delivered when
 * that changes. A vector's route is installed when it becomes deliverable
 * (masking is done here, by not signalling, so the route can stay).
 *
 * The caller holds the function's state lock for every call.
 */
import type { FunctionInterrupts } from './interrupts.js';
import { CapabilityId } from './config-space.js';
import type { PciCapability } from './pci-device.js';

export const MSIX_ENTRY_SIZE = 16;
const ENABLE = 1 << 15;
const FUNCTION_MASK = 1 << 14;
const VECTOR_MASKED = 1;
/** Offsets in a table entry. */
const ADDRESS_LO = 0;
const ADDRESS_HI = 4;
const DATA = 8;
const VECTOR_CONTROL = 12;

export interface MsixLayout {
  vectors: number;
  /** The BAR holding table and PBA, and their offsets in it (8-byte aligned). */
  bar: number;
  tableOffset: number;
  pbaOffset: number;
}

export function pbaSize(vectors: number): number {
  return 8 * Math.ceil(vectors / 64);
}

/** Shared state for the table and the pending bits. */
export function msixStateSize(vectors: number): number {
  return vectors * MSIX_ENTRY_SIZE + pbaSize(vectors);
}

/** The capability: message control (table size - 1; enable and function mask writable), table and PBA locations. */
export function msixCapability(layout: MsixLayout): PciCapability {
  if (layout.vectors < 1 || layout.vectors > 2048) throw new Error(`MSI-X has 1 to 2048 vectors, not ${layout.vectors}`);
  const body = new Uint8Array(10);
  const v = new DataView(body.buffer);
  v.setUint16(0, layout.vectors - 1, true);
  v.setUint32(2, layout.tableOffset | layout.bar, true);
  v.setUint32(6, layout.pbaOffset | layout.bar, true);
  const writable = new Uint8Array(10);
  writable[1] = (ENABLE | FUNCTION_MASK) >> 8;
  return { id: CapabilityId.MSIX, body, writable };
}

export class Msix {
  private readonly table: DataView;
  private readonly pending: Uint8Array;

  constructor(
    /** Config space, and where the capability is in it. */
    private readonly config: DataView,
    private readonly capabilityOffset: number,
    /** msixStateSize(vectors) bytes of shared state. */
    state: Uint8Array,
    readonly vectors: number,
    private readonly interrupts: FunctionInterrupts,
    /** Told after the guest changed the table or message control: who bypasses fire() looks again. */
    private readonly changed: () => void = () => {},
  ) {
    this.table = new DataView(state.buffer, state.byteOffset, vectors * MSIX_ENTRY_SIZE);
    this.pending = state.subarray(vectors * MSIX_ENTRY_SIZE, vectors * MSIX_ENTRY_SIZE + pbaSize(vectors));
  }

  /** Power-on: every vector masked, nothing pending. */
  reset(): void {
    for (let v = 0; v < this.vectors; v++) {
      const at = v * MSIX_ENTRY_SIZE;
      for (let i = 0; i < MSIX_ENTRY_SIZE; i += 4) this.table.setUint32(at + i, 0, true);
      this.table.setUint32(at + VECTOR_CONTROL, VECTOR_MASKED, true);
    }
    this.pending.fill(0);
  }

  private get control(): number {
    return this.config.getUint16(this.capabilityOffset + 2, true);
  }

  get enabled(): boolean {
    return (this.control & ENABLE) !== 0;
  }

  /** The config dword holding message control: its offset, for PciDevice.configWritten. */
  get controlDword(): number {
    return this.capabilityOffset;
  }

  /** After the guest wrote message control: enabling or unmasking may deliver pending vectors. */
  controlWritten(): void {
    this.changed();
    for (let v = 0; v < this.vectors; v++) this.update(v);
  }

  tableRead(offset: number, data: Uint8Array): void {
    const bytes = new Uint8Array(this.table.buffer, this.table.byteOffset, this.table.byteLength);
    copyOut(bytes, offset, data);
  }

  tableWrite(offset: number, data: Uint8Array): void {
    this.changed();
    const end = Math.min(offset + data.length, this.table.byteLength);
    if (offset < 0 || offset >= end) return;
    new Uint8Array(this.table.buffer, this.table.byteOffset, this.table.byteLength).set(data.subarray(0, end - offset), offset);
    const first = Math.floor(offset / MSIX_ENTRY_SIZE);
    const last = Math.floor((end - 1) / MSIX_ENTRY_SIZE);
    for (let v = first; v <= last; v++) this.update(v);
  }

  /** The pending bits are read-only. */
  pbaRead(offset: number, data: Uint8Array): void {
    copyOut(this.pending, offset, data);
  }

  /** Raises `vector` (vectors outside the table, such as VIRTIO_MSI_NO_VECTOR, raise nothing). */
  fire(vector: number): void {
    if (vector >= this.vectors) return;
    if (this.deliverable(vector)) this.interrupts.signalVector(vector);
    else this.pending[vector >> 3] |= 1 << (vector & 7);
  }

  private isPending(vector: number): boolean {
    return (this.pending[vector >> 3] & (1 << (vector & 7))) !== 0;
  }

  /** Whether `vector` reaches the guest now: MSI-X on, the function and the vector unmasked (its route then in place). */
  deliverable(vector: number): boolean {
    const control = this.control;
    return (control & ENABLE) !== 0 && (control & FUNCTION_MASK) === 0 && (this.table.getUint32(vector * MSIX_ENTRY_SIZE + VECTOR_CONTROL, true) & VECTOR_MASKED) === 0;
  }

  private update(vector: number): void {
    if (!this.deliverable(vector)) return;
    const at = vector * MSIX_ENTRY_SIZE;
    this.interrupts.routeVector(vector, {
      addressLo: this.table.getUint32(at + ADDRESS_LO, true),
      addressHi: this.table.getUint32(at + ADDRESS_HI, true),
      data: this.table.getUint32(at + DATA, true),
    });
    if (this.isPending(vector)) {
      this.pending[vector >> 3] &= ~(1 << (vector & 7));
      this.interrupts.signalVector(vector);
    }
  }
}

/** Copies bytes from `offset` of `source` into `data`; past the end reads 0. */
function copyOut(source: Uint8Array, offset: number, data: Uint8Array): void {
  data.fill(0);
  if (offset >= 0 && offset < source.length) data.set(source.subarray(offset, Math.min(offset + data.length, source.length)));
}
