/**
 * Unix stream sockets through koffi, for a device's I/O thread: it has no
 * Node event loop, so every socket here is non-blocking and every call
 * returns at once. Setting a socket up (listen) throws a SystemError;
 * connect, accept, recv and send return -errno instead, since EAGAIN,
 * ECONNREFUSED and EPIPE are routine for them.
 */
import koffi from 'koffi';
import { constants } from 'node:os';
import { SystemError } from '../kvm/errors.js';
import { close } from '../kvm/libc.js';

const libc = koffi.load('libc.so.6');

const c = {
  socket: libc.func('int socket(int domain, int type, int protocol)'),
  bind: libc.func('int bind(int fd, const void *addr, uint32_t len)'),
  listen: libc.func('int listen(int fd, int backlog)'),
  accept4: libc.func('int accept4(int fd, void *addr, void *len, int flags)'),
  connect: libc.func('int connect(int fd, const void *addr, uint32_t len)'),
  recv: libc.func('long recv(int fd, void *buf, size_t len, int flags)'),
  send: libc.func('long send(int fd, const void *buf, size_t len, int flags)'),
  shutdown: libc.func('int shutdown(int fd, int how)'),
};

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const MSG_PEEK = 0x2;
/** A send to a peer that is gone fails with EPIPE rather than raising SIGPIPE. */
const MSG_NOSIGNAL = 0x4000;
const SHUT_WR = 1;
const BACKLOG = 64;
/** struct sockaddr_un: sa_family_t, then sun_path[108] (NUL-terminated here). */
const SUN_PATH_OFFSET = 2;
const SUN_PATH_SIZE = 108;
export const MAX_SOCKET_PATH = SUN_PATH_SIZE - 1;

const { ENAMETOOLONG } = constants.errno;

/** The sockaddr_un for `path`, or undefined when the path does not fit. */
function address(path: string): Uint8Array | undefined {
  const bytes = Buffer.from(path);
  if (bytes.length > MAX_SOCKET_PATH) return undefined;
  const addr = new Uint8Array(SUN_PATH_OFFSET + SUN_PATH_SIZE);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  addr.set(bytes, SUN_PATH_OFFSET);
  return addr;
}

/** A new non-blocking socket, or -errno (out of fds). */
function newSocket(): number {
  const fd = c.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) as number;
  return fd < 0 ? -koffi.errno() : fd;
}

/** A non-blocking socket bound at `path` and listening. Throws a SystemError from socket, bind or listen. */
export function listenUnix(path: string): number {
  const addr = address(path);
  if (addr === undefined) throw new SystemError('bind', ENAMETOOLONG, path);
  const fd = newSocket();
  if (fd < 0) throw new SystemError('socket', -fd, path);
  const failed = (c.bind(fd, addr, addr.length) as number) < 0 ? 'bind' : (c.listen(fd, BACKLOG) as number) < 0 ? 'listen' : undefined;
  if (failed !== undefined) {
    const errno = koffi.errno();
    close(fd);
    throw new SystemError(failed, errno, path);
  }
  return fd;
}

/** The next connection waiting on a listening socket, non-blocking; -EAGAIN when there is none. */
export function acceptUnix(listenFd: number): number {
  const fd = c.accept4(listenFd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC) as number;
  return fd < 0 ? -koffi.errno() : fd;
}

/**
 * A non-blocking socket connected to the listener at `path`, or -errno.
 * A Unix connect completes at once or fails (ECONNREFUSED, ENOENT, and
 * EAGAIN when the listener's backlog is full): it never waits.
 */
export function connectUnix(path: string): number {
  const addr = address(path);
  if (addr === undefined) return -ENAMETOOLONG;
  const fd = newSocket();
  if (fd < 0) return fd;
  if ((c.connect(fd, addr, addr.length) as number) < 0) {
    const errno = koffi.errno();
    close(fd);
    return -errno;
  }
  return fd;
}

/** recv(2) into `buffer`: bytes read, 0 at end of stream, or -errno (-EAGAIN when nothing is waiting). */
export function receive(fd: number, buffer: Uint8Array): number {
  const r = c.recv(fd, buffer, buffer.length, 0) as number;
  return r < 0 ? -koffi.errno() : r;
}

/** As receive(), but leaves the bytes in the socket. */
export function peek(fd: number, buffer: Uint8Array): number {
  const r = c.recv(fd, buffer, buffer.length, MSG_PEEK) as number;
  return r < 0 ? -koffi.errno() : r;
}

/** send(2) of `buffer`: bytes taken (maybe fewer), or -errno (-EAGAIN when the socket is full, -EPIPE when the peer is gone). */
export function send(fd: number, buffer: Uint8Array): number {
  const r = c.send(fd, buffer, buffer.length, MSG_NOSIGNAL) as number;
  return r < 0 ? -koffi.errno() : r;
}

/** Ends the sending direction: the peer reads end of stream. 0 or -errno (the peer may be gone already). */
export function shutdownSend(fd: number): number {
  return (c.shutdown(fd, SHUT_WR) as number) < 0 ? -koffi.errno() : 0;
}
