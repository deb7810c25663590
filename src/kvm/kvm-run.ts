/**
 * struct kvm_run, the page KVM shares with userspace for each vCPU. Read on
 * every exit, so it is accessed through a DataView at fixed offsets rather
 * than decoded as a whole.
 */

export const ExitReason = {
  UNKNOWN: 0,
  EXCEPTION: 1,
  IO: 2,
  HYPERCALL: 3,
  DEBUG: 4,
  HLT: 5,
  MMIO: 6,
  IRQ_WINDOW_OPEN: 7,
  SHUTDOWN: 8,
  FAIL_ENTRY: 9,
  INTR: 10,
  SET_TPR: 11,
  TPR_ACCESS: 12,
  NMI: 16,
  INTERNAL_ERROR: 17,
  SYSTEM_EVENT: 24,
  IOAPIC_EOI: 26,
  X86_RDMSR: 29,
  X86_WRMSR: 30,
  DIRTY_RING_FULL: 31,
  X86_BUS_LOCK: 33,
  NOTIFY: 37,
  MEMORY_FAULT: 39,
} as const;

const exitNames = new Map<number, string>(Object.entries(ExitReason).map(([k, v]) => [v, k]));

export function exitReasonName(reason: number): string {
  return exitNames.get(reason) ?? `EXIT_${reason}`;
}

export const SystemEvent = { SHUTDOWN: 1, RESET: 2, CRASH: 3, WAKEUP: 4, SUSPEND: 5, SEV_TERM: 6 } as const;

export const InternalErrorSuberror = { EMULATION: 1, SIMUL_EX: 2, DELIVERY_EV: 3, UNEXPECTED_EXIT_REASON: 4 } as const;

export const IO_IN = 0;
export const IO_OUT = 1;

// Offsets in struct kvm_run (x86-64).
const IMMEDIATE_EXIT = 1;
const EXIT_REASON = 8;
const EXIT = 32; // the exit union
const IO_DIRECTION = EXIT;
const IO_SIZE = EXIT + 1;
const IO_PORT = EXIT + 2;
const IO_COUNT = EXIT + 4;
const IO_DATA_OFFSET = EXIT + 8;
const MMIO_PHYS_ADDR = EXIT;
const MMIO_DATA = EXIT + 8;
const MMIO_LEN = EXIT + 16;
const MMIO_IS_WRITE = EXIT + 20;
const EVENT_TYPE = EXIT;
const EVENT_NDATA = EXIT + 4;
const EVENT_DATA = EXIT + 8;
const EXIT_DATA_MAX = 16;

export class KvmRun {
  readonly view: DataView;
  readonly bytes: Uint8Array;

  constructor(readonly buffer: ArrayBuffer) {
    this.view = new DataView(buffer);
    this.bytes = new Uint8Array(buffer);
  }

  get exitReason(): number {
    return this.view.getUint32(EXIT_REASON, true);
  }

  set immediateExit(on: boolean) {
    this.view.setUint8(IMMEDIATE_EXIT, on ? 1 : 0);
  }

  // KVM_EXIT_IO: the data of `count` accesses of `size` bytes sits at data_offset in this page.
  get ioDirection(): number { return this.view.getUint8(IO_DIRECTION); }
  get ioSize(): number { return this.view.getUint8(IO_SIZE); }
  get ioPort(): number { return this.view.getUint16(IO_PORT, true); }
  get ioCount(): number { return this.view.getUint32(IO_COUNT, true); }
  // 64-bit fields read as two 32-bit halves: a BigInt per exit costs more than the exit's own JS.
  get ioDataOffset(): number { return this.u64(IO_DATA_OFFSET); }

  // KVM_EXIT_MMIO
  get mmioAddress(): number { return this.u64(MMIO_PHYS_ADDR); }
  get mmioLength(): number { return this.view.getUint32(MMIO_LEN, true); }
  get mmioIsWrite(): boolean { return this.view.getUint8(MMIO_IS_WRITE) !== 0; }
  get mmioDataOffset(): number { return MMIO_DATA; }

  private u64(offset: number): number {
    return this.view.getUint32(offset, true) + this.view.getUint32(offset + 4, true) * 0x1_0000_0000;
  }

  /** Reads a little-endian value of 1, 2, 4 or 8 bytes at an offset in this page. */
  readValue(offset: number, size: number): bigint {
    switch (size) {
      case 1: return BigInt(this.view.getUint8(offset));
      case 2: return BigInt(this.view.getUint16(offset, true));
      case 4: return BigInt(this.view.getUint32(offset, true));
      default: return this.view.getBigUint64(offset, true);
    }
  }

  writeValue(offset: number, size: number, value: bigint): void {
    switch (size) {
      case 1: this.view.setUint8(offset, Number(value & 0xffn)); break;
      case 2: this.view.setUint16(offset, Number(value & 0xffffn), true); break;
      case 4: this.view.setUint32(offset, Number(value & 0xffffffffn), true); break;
      default: this.view.setBigUint64(offset, BigInt.asUintN(64, value), true);
    }
  }

  // KVM_EXIT_SYSTEM_EVENT and KVM_EXIT_INTERNAL_ERROR share a layout: u32, u32 ndata, u64 data[16].
  get eventType(): number { return this.view.getUint32(EVENT_TYPE, true); }
  get suberror(): number { return this.view.getUint32(EVENT_TYPE, true); }
  get exitData(): bigint[] {
    const n = Math.min(this.view.getUint32(EVENT_NDATA, true), EXIT_DATA_MAX);
    return Array.from({ length: n }, (_, i) => this.view.getBigUint64(EVENT_DATA + i * 8, true));
  }

  // KVM_EXIT_FAIL_ENTRY
  get failEntryReason(): bigint { return this.view.getBigUint64(EXIT, true); }

  // KVM_EXIT_DEBUG: struct kvm_debug_exit_arch
  get debugException(): number { return this.view.getUint32(EXIT, true); }
  get debugPc(): bigint { return this.view.getBigUint64(EXIT + 8, true); }
}
