/**
 * Puts console output from several vCPU threads back in the order it was
 * written. Each worker stamps a chunk with a number from one shared counter
 * when it flushes; the main thread receives each worker's messages on its
 * own port, so chunks can arrive out of order, and are held until the ones
 * before them have come.
 */
export class ConsoleOrder {
  /** Int32Array[1] over this: the next number to hand out; shared with the workers. */
  readonly counter = new SharedArrayBuffer(4);
  private next = 0;
  private readonly held = new Map<number, Uint8Array>();

  constructor(private readonly emit: (data: Uint8Array) => void) {}

  receive(seq: number, data: Uint8Array): void {
    this.held.set(seq, data);
    for (let chunk = this.held.get(this.next); chunk !== undefined; chunk = this.held.get(this.next)) {
      this.held.delete(this.next++);
      this.emit(chunk);
    }
  }

  /** Emits whatever is held (a worker that ended between stamping and posting leaves a gap). */
  drain(): void {
    for (const seq of [...this.held.keys()].sort((a, b) => a - b)) this.emit(this.held.get(seq)!);
    this.held.clear();
  }
}
