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
  ftruncate: libc.func('int ftruncate(int fd, int64_t length)'),
  eventfd: libc.func('int eventfd(unsigned int initval, int flags)'),
  pthreadSelf: libc.func('uint64_t pthread_self()'),
  pthreadKill: libc.func('int pthread_kill(uint64_t thread, int sig)'),
};

export const O_RDWR = 0o2;
export const O_CLOEXEC = 0o2000000;
const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 1;
const MFD_CLOEXEC = 1;
const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;

function check(result: number, call: string, detail?: string): number {
  if (result < 0) throw new SystemError(call, koffi.errno(), detail);
  return result;
}

export function open(path: string, flags: number): number {
  return check(c.open(path, flags | O_CLOEXEC), 'open', path);
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

/** A shared read/write mapping of `length` bytes of `fd`. */
export interface Mapping {
  readonly address: bigint;
  readonly length: number;
  readonly buffer: ArrayBuffer;
  readonly pointer: unknown;
}

export function mmapShared(fd: number, length: number, offset = 0): Mapping {
  const pointer = c.mmap(null, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset);
  const address = koffi.address(pointer);
  if (address === 0xffffffffffffffffn) throw new SystemError('mmap', koffi.errno());
  return { address, length, buffer: koffi.view(pointer, length), pointer };
}

export function munmap(mapping: Mapping): void {
  check(c.munmap(mapping.pointer, mapping.length), 'munmap');
}

export function memfdCreate(name: string, size: number): number {
  const fd = check(c.memfdCreate(name, MFD_CLOEXEC), 'memfd_create');
  check(c.ftruncate(fd, size), 'ftruncate', `${size} bytes for guest RAM`);
  return fd;
}

export function eventfd(): number {
  return check(c.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), 'eventfd');
}

/** The calling thread's pthread handle, so another thread can signal it. */
export function pthreadSelf(): bigint {
  return BigInt(c.pthreadSelf());
}

export function pthreadKill(thread: bigint, signal: number): void {
  const r = c.pthreadKill(thread, signal) as number;
  if (r !== 0) throw new SystemError('pthread_kill', r);
}
