/**
 * The host's side of the Linux vsock tests: the guest's tool (vsock-tool.c,
 * built static here and handed over as a raw disk the guest copies it
 * from), calls into the guest over AF_VSOCK (Python's: Node has none) and
 * over a hybrid vsock's Unix socket (`CONNECT <port>` first).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const VSOCK_TOOL_SOURCE = fileURLToPath(new URL('../../../test/guests/vsock-tool.c', import.meta.url));

/** vsock-tool built into `dir`, as a disk image; `install` is the guest's command that copies it to /tmp/vt. */
export function vsockToolDisk(dir: string): { disk: string; install: string } {
  const tool = join(dir, 'vsock-tool');
  execFileSync('gcc', ['-static', '-O2', '-o', tool, VSOCK_TOOL_SOURCE]);
  const binary = readFileSync(tool);
  const disk = join(dir, 'tool.img');
  writeFileSync(disk, Buffer.concat([binary, Buffer.alloc((512 - (binary.length % 512)) % 512)]));
  return { disk, install: `head -c ${binary.length} /dev/vda > /tmp/vt && chmod +x /tmp/vt` };
}

/** Python: connect to CID PORT, send MESSAGE, half-close, print what comes back until EOF. */
export const PY_SEND = `import socket, sys
s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
s.connect((int(sys.argv[1]), int(sys.argv[2])))
s.sendall(sys.argv[3].encode())
s.shutdown(socket.SHUT_WR)
data = b''
while True:
    d = s.recv(4096)
    if not d: break
    data += d
sys.stdout.write(data.decode())`;

/** A stream to guest port `port` through the hybrid vsock at `uds`, once the guest has accepted it. */
export function udsConnect(uds: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(uds);
    let line = '';
    const onData = (d: Buffer) => {
      line += d.toString('latin1');
      if (!line.includes('\n')) return;
      socket.off('data', onData);
      if (/^OK \d+\n$/.test(line)) resolve(socket);
      else reject(new Error(`vsock uds: ${JSON.stringify(line)} to CONNECT ${port}`));
    };
    socket.on('error', reject);
    socket.on('connect', () => socket.write(`CONNECT ${port}\n`));
    socket.on('data', onData);
  });
}

/** Sends `message` to guest port `port` through the hybrid vsock at `uds`, half-closes, and resolves with the reply. */
export async function udsCall(uds: string, port: number, message: string): Promise<string> {
  const socket = await udsConnect(uds, port);
  return new Promise((resolve, reject) => {
    let reply = '';
    socket.on('error', reject);
    socket.on('data', (d) => (reply += d));
    socket.on('end', () => resolve(reply));
    socket.end(message);
  });
}
