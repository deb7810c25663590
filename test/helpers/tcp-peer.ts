/**
 * The host's end of the TCP transfer test, run in the test's network
 * namespace: `node tcp-peer.js BYTES` (a program: importing it would start its servers). Port 5001 takes BYTES from the
 * guest and closes; port 5002 sends BYTES of random data and closes. Prints
 * one JSON line when listening and one per transfer, with its SHA-256 (and,
 * for what it took, the milliseconds from its first byte to its last).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { SINK_PORT, SOURCE_PORT } from './netns.js';

const bytes = Number(process.argv[2]);
const say = (o: object) => process.stdout.write(JSON.stringify(o) + '\n');
let left = 2;
const finished = () => {
  if (--left === 0) process.exit(0);
};

const sink = createServer((socket) => {
  const hash = createHash('sha256');
  let received = 0;
  let first = 0;
  socket.on('data', (d) => {
    if (received === 0) first = performance.now();
    hash.update(d.subarray(0, bytes - received));
    received += d.length;
    if (received >= bytes) {
      say({ sink: hash.digest('hex'), bytes: received, ms: Math.round(performance.now() - first) });
      socket.destroy();
      finished();
    }
  });
});

const source = createServer((socket) => {
  const data = randomBytes(bytes);
  socket.end(data, () => {
    say({ source: createHash('sha256').update(data).digest('hex'), bytes });
    finished();
  });
});

let listening = 0;
const ready = () => ++listening === 2 && say({ listening: true });
sink.listen(SINK_PORT, ready);
source.listen(SOURCE_PORT, ready);
