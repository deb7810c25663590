/**
 * A packet port in memory, for the network device's tests: frames to
 * receive wait in a list, frames sent are recorded.
 */
import type { PacketPort } from '../../src/devices/net/tap.js';

export class FakePacketPort implements PacketPort {
  readonly fd = -1;
  usable = true;
  readonly incoming: Uint8Array[] = [];
  readonly sent: Uint8Array[] = [];
  offload = -1;
  /** Whether send() takes frames (false: the host drops them). */
  accepting = true;

  receive(buffers: Uint8Array[]): number {
    const frame = this.incoming.shift();
    if (frame === undefined) return 0;
    let at = 0;
    for (const b of buffers) {
      const n = Math.min(b.length, frame.length - at);
      b.set(frame.subarray(at, at + n));
      at += n;
      if (at === frame.length) break;
    }
    return at;
  }

  send(buffers: Uint8Array[]): boolean {
    if (!this.accepting) return false;
    this.sent.push(Uint8Array.from(Buffer.concat(buffers)));
    return true;
  }

  setOffload(flags: number): void {
    this.offload = flags;
  }
}
