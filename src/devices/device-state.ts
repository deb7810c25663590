/**
 * Device state that every vCPU thread (and the main thread) sees: a
 * SharedArrayBuffer with a lock word in front. A device keeps its registers
 * here, so two vCPUs touching it see one device, and the bus takes the lock
 * around each access.
 */
const LOCK = 0;
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

  /** Runs fn with the lock held. Accesses are short, so waiters spin briefly, then sleep. */
  locked<T>(fn: () => T): T {
    while (Atomics.compareExchange(this.lockWord, LOCK, 0, 1) !== 0) {
      Atomics.wait(this.lockWord, LOCK, 1, 1);
    }
    try {
      return fn();
    } finally {
      Atomics.store(this.lockWord, LOCK, 0);
      Atomics.notify(this.lockWord, LOCK, 1);
    }
  }
}
