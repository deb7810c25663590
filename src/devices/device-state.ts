/**
 * Device state that every vCPU thread (and the main thread) sees: a
 * SharedArrayBuffer with a lock word in front. A device keeps its registers
 * here, so two vCPUs touching it see one device, and the bus takes the lock
 * around each access.
 *
 * Lock order (every lock tsvmm takes across threads):
 *   1. a device's lock: taken by the bus for one access (vCPU threads), by
 *      a virtio queue's I/O worker around its queue bookkeeping, and by the
 *      main thread for console input. One device's at a time, never two.
 *   2. the GSI routing table's lock (pci/gsi-routes.ts): taken under a PCI
 *      function's lock when the guest programs an MSI-X vector, and alone.
 * The emulation assist's lock (vmm/machine.ts) is held only around one
 * emulated instruction, which touches guest memory and no device: it is
 * never held together with one of the above.
 */
const LOCK = 0;
const FREE = 0;
const HELD = 1;
const CONTENDED = 2;
const HEADER = 8;

export class DeviceState {
  private readonly lockWord: Int32Array;
  /** The device's own bytes, after the lock word. */
  readonly bytes: Uint8Array;
  readonly view: DataView;

  constructor(readonly buffer: SharedArrayBuffer) {
    this.lockWord = new Int32Array(buffer, 0, 1);
    this.bytes = new Uint8Array(buffer, HEADER);
    this.view = new DataView(buffer, HEADER);
  }

  static allocate(size: number): SharedArrayBuffer {
    return new SharedArrayBuffer(HEADER + size);
  }

  /**
   * Takes the lock: 0 free, 1 held, 2 held with a waiter. Waiters mark it
   * contended and sleep; an uncontended lock and unlock are one atomic each.
   */
  lock(): void {
    if (Atomics.compareExchange(this.lockWord, LOCK, FREE, HELD) === FREE) return;
    while (Atomics.exchange(this.lockWord, LOCK, CONTENDED) !== FREE) {
      Atomics.wait(this.lockWord, LOCK, CONTENDED);
    }
  }

  unlock(): void {
    if (Atomics.exchange(this.lockWord, LOCK, FREE) === CONTENDED) Atomics.notify(this.lockWord, LOCK, 1);
  }

  /** Runs fn with the lock held. */
  locked<T>(fn: () => T): T {
    this.lock();
    try {
      return fn();
    } finally {
      this.unlock();
    }
  }
}
