/**
 * The few libc calls a VMM needs, through koffi. Each wrapper turns a -1
 * return into a SystemError carrying errno, so callers never check codes.
 */
import koffi from 'koffi';
import { SystemError } from './errors.js';

const libc = koffi.load('libc.so.6');

const c = {
  open: libc.func('int open(const char *path, int flags)'),
  close: libc.func('int close(int fd)'),
  ioctlArg: libc.func('int ioctl(int fd, unsigned long request, unsigned long arg)'),
  ioctlPtr: libc.func('int ioctl(int fd, unsigned long request, void *arg)'),
  mmap: libc.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)'),
  munmap: libc.func('int munmap(void *addr, size_t length)'),
  memfdCreate: libc.func('int memfd_create(const char *name, unsigned int flags)'),
  // memmove(p, p, 0) returns p: koffi's way to turn an address into a pointer it can view.
  pointerAt: libc.func('void *memmove(uintptr_t dest, uintptr_t src, size_t n)'),
  ftruncate: libc.func('int ftruncate(int fd, int64_t length)'),
  lseek: libc.func('int64_t lseek(int fd, int64_t offset, int whence)'),
  eventfd: libc.func('int eventfd(unsigned int initval, int flags)'),
  read: libc.func('long read(int fd, void *buf, size_t count)'),
  write: libc.func('long write(int fd, const void *buf, size_t count)'),
  poll: libc.func('int poll(void *fds, unsigned long nfds, int timeout)'),
  pthreadSelf: libc.func('uint64_t pthread_self()'),
  pthreadKill: libc.func('int pthread_kill(uint64_t thread, int sig)'),
  mknod: libc.func('int mknod(const char *path, uint32_t mode, uint64_t dev)'),
};

export const O_RDWR = 0o2;
export const O_CLOEXEC = 0o2000000;
const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 1;
const MAP_PRIVATE = 2;
const MFD_CLOEXEC = 1;
const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;
const EINTR = 4;
const EAGAIN = 11;
/** What a write to an eventfd adds to its counter. */
const ONE = new Uint8Array(new BigUint64Array([1n]).buffer);

function check(result: number, call: string, detail?: string): number {
  if (result < 0) throw new SystemError(call, koffi.errno(), detail);
  return result;
}

export function open(path: string, flags: number): number {
  return check(c.open(path, flags | O_CLOEXEC), 'open', path);
}

const S_IFCHR = 0o020000;

/** A character device node at `path` with the device number `rdev` (as fs.Stats.rdev gives it) and permissions `mode`. */
export function mknodChar(path: string, rdev: number, mode: number): void {
  check(c.mknod(path, S_IFCHR | mode, rdev), 'mknod', path);
}

export function close(fd: number): void {
  check(c.close(fd), 'close');
}

/** ioctl whose argument is an integer (or none). */
export function ioctlValue(fd: number, request: number, arg: number | bigint = 0, name = 'ioctl'): number {
  return check(c.ioctlArg(fd, request, arg), name);
}

/** ioctl whose argument points at a buffer the kernel reads and/or writes. */
export function ioctlBuffer(fd: number, request: number, buffer: Uint8Array, name = 'ioctl'): number {
  return check(c.ioctlPtr(fd, request, buffer), name);
}

/** ioctl that may fail, returning -errno instead of throwing (KVM_RUN's EINTR is routine). */
export function ioctlRaw(fd: number, request: number): number {
  const r = c.ioctlArg(fd, request, 0) as number;
  return r < 0 ? -koffi.errno() : r;
}

/** A read/write mapping of `length` bytes of a file. */
export interface Mapping {
  readonly address: bigint;
  readonly length: number;
  readonly buffer: ArrayBuffer;
  readonly pointer: unknown;
}

/** Writes reach the file (and every other mapping of it). */
export function mmapShared(fd: number, length: number, offset = 0): Mapping {
  return mmap(fd, length, offset, MAP_SHARED);
}

/** Copy-on-write: pages are read from the file when first touched, and writes stay in this process. */
export function mmapPrivate(fd: number, length: number, offset = 0): Mapping {
  return mmap(fd, length, offset, MAP_PRIVATE);
}

function mmap(fd: number, length: number, offset: number, flags: number): Mapping {
  const pointer = c.mmap(null, length, PROT_READ | PROT_WRITE, flags, fd, offset);
  const address = koffi.address(pointer);
  if (address === 0xffffffffffffffffn) throw new SystemError('mmap', koffi.errno());
  return { address, length, buffer: koffi.view(pointer, length), pointer };
}

/** Where a buffer's bytes are, for a kernel struct that points at them (valid while the buffer lives). */
export function addressOf(buffer: Uint8Array): bigint {
  return koffi.address(buffer) as bigint;
}

/**
 * The bytes at `address`, mapped by another thread of this process: a
 * worker sees guest RAM through the main thread's mapping this way (one
 * mapping per VM, so a private one stays one copy).
 */
export function viewAt(address: bigint, length: number): ArrayBuffer {
  return koffi.view(c.pointerAt(address, address, 0), length);
}

export function munmap(mapping: Mapping): void {
  check(c.munmap(mapping.pointer, mapping.length), 'munmap');
}

export function memfdCreate(name: string, size: number): number {
  const fd = check(c.memfdCreate(name, MFD_CLOEXEC), 'memfd_create');
  check(c.ftruncate(fd, size), 'ftruncate', `${size} bytes for guest RAM`);
  return fd;
}

const SEEK_DATA = 3;
const SEEK_HOLE = 4;
const ENXIO = 6;

/** The first offset from `offset` on that holds data, or -1 when only holes (or the end) follow. */
export function seekData(fd: number, offset: number): number {
  const r = Number(c.lseek(fd, offset, SEEK_DATA));
  if (r < 0 && koffi.errno() === ENXIO) return -1;
  return check(r, 'lseek', 'SEEK_DATA');
}

/** The first hole from `offset` on (the end of the file counts as one). */
export function seekHole(fd: number, offset: number): number {
  return check(Number(c.lseek(fd, offset, SEEK_HOLE)), 'lseek', 'SEEK_HOLE');
}

export function eventfd(): number {
  return check(c.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), 'eventfd');
}

/** read(2); -errno instead of throwing, since EAGAIN and EINTR are routine on eventfds. */
export function read(fd: number, buffer: Uint8Array): number {
  const r = c.read(fd, buffer, buffer.length) as number;
  return r < 0 ? -koffi.errno() : r;
}

/** write(2); -errno instead of throwing. */
export function write(fd: number, buffer: Uint8Array): number {
  const r = c.write(fd, buffer, buffer.length) as number;
  return r < 0 ? -koffi.errno() : r;
}

export const POLLIN = 0x1;
export const POLLOUT = 0x4;
const POLLFD_SIZE = 8;

/**
 * poll(2): which of `fds` are ready for their events, or in error or hung up
 * (an empty list when interrupted by a signal). timeoutMs -1 waits for ever.
 */
export function poll(fds: readonly { fd: number; events: number }[], timeoutMs: number): number[] {
  const buffer = new Uint8Array(fds.length * POLLFD_SIZE);
  const view = new DataView(buffer.buffer);
  fds.forEach(({ fd, events }, i) => {
    view.setInt32(i * POLLFD_SIZE, fd, true);
    view.setInt16(i * POLLFD_SIZE + 4, events, true);
  });
  const r = c.poll(buffer, fds.length, timeoutMs) as number;
  if (r < 0) {
    const errno = koffi.errno();
    if (errno === EINTR) return [];
    throw new SystemError('poll', errno);
  }
  return fds.filter((_, i) => view.getInt16(i * POLLFD_SIZE + 6, true) !== 0).map(({ fd }) => fd);
}

/** Adds 1 to an eventfd's counter, waking whoever waits on it. */
export function signalEventfd(fd: number): void {
  const r = write(fd, ONE);
  // EAGAIN: the counter is at its maximum, so the reader is awake anyway.
  if (r < 0 && r !== -EAGAIN) throw new SystemError('write', -r, 'eventfd');
}

/** Reads and clears an eventfd's counter; 0 when it was already clear. */
export function drainEventfd(fd: number): bigint {
  const buffer = new Uint8Array(8);
  const r = read(fd, buffer);
  if (r === -EAGAIN) return 0n;
  if (r < 0) throw new SystemError('read', -r, 'eventfd');
  return new DataView(buffer.buffer).getBigUint64(0, true);
}

/** The calling thread's pthread handle, so another thread can signal it. */
export function pthreadSelf(): bigint {
  return BigInt(c.pthreadSelf());
}

export function pthreadKill(thread: bigint, signal: number): void {
  const r = c.pthreadKill(thread, signal) as number;
  if (r !== 0) throw new SystemError('pthread_kill', r);
}
