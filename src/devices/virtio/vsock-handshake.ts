/**
 * The line a host program writes after it connects to the hybrid vsock
 * device's Unix socket, `CONNECT <port>\n`, naming the guest port it
 * wants; once the guest accepts, the device answers `OK <host port>\n`
 * and the socket carries the stream.
 *
 * The line is taken byte-exact: bytes after the newline are the stream's
 * first data, so they stay in the socket (peeked at, not read). A line
 * that is too long, not a CONNECT, or cut off by the host closing fails
 * the handshake; one that has not arrived yet keeps it waiting, for as
 * long as the host likes, without holding anything else up.
 */
import { constants } from 'node:os';
import { peek, receive } from '../../host/unix-socket.js';

/** "CONNECT 4294967295\n" with room to spare. */
const MAX_LINE = 32;
const NEWLINE = 0x0a;
const { EAGAIN } = constants.errno;

export type HandshakeState = { port: number } | 'waiting' | 'failed';

export class HostHandshake {
  /** The line so far, without its newline. */
  private line = '';

  constructor(readonly fd: number) {}

  /** Reads what the host has written of the line: the guest port once it is whole. */
  advance(): HandshakeState {
    const peeked = new Uint8Array(MAX_LINE - this.line.length);
    const n = peek(this.fd, peeked);
    if (n === -EAGAIN) return 'waiting';
    if (n <= 0) return 'failed';
    const end = peeked.subarray(0, n).indexOf(NEWLINE);
    const taken = new Uint8Array(end < 0 ? n : end + 1);
    if (receive(this.fd, taken) !== taken.length) return 'failed';
    this.line += Buffer.from(taken.subarray(0, end < 0 ? n : end)).toString('latin1');
    if (end < 0) return this.line.length < MAX_LINE ? 'waiting' : 'failed';
    const match = /^CONNECT ([0-9]{1,10})$/.exec(this.line);
    if (match === null) return 'failed';
    const port = Number(match[1]);
    return port <= 0xffff_ffff ? { port } : 'failed';
  }
}

/** What the device writes the host once the guest accepted: the host port the guest sees. */
export function okLine(hostPort: number): Uint8Array {
  return Buffer.from(`OK ${hostPort}\n`);
}
