/**
 * fallocate(2), for the two things a disk image wants of it: freeing a
 * range (punch a hole) and zeroing one without writing zeros. Node has no
 * binding, so it goes through koffi, like the VMM's other libc calls.
 */
import koffi from 'koffi';
import { SystemError } from '../../kvm/errors.js';

const fallocate = koffi.load('libc.so.6').func('int fallocate(int fd, int mode, int64_t offset, int64_t len)');

const FALLOC_FL_KEEP_SIZE = 0x01;
const FALLOC_FL_PUNCH_HOLE = 0x02;
const FALLOC_FL_ZERO_RANGE = 0x10;
const EOPNOTSUPP = 95;
const ENODEV = 19;

/**
 * Zeroes [offset, offset + length) of `fd` in place, freeing the blocks
 * when `deallocate`; false when the file system (or file type) cannot, so
 * the caller writes zeros instead.
 */
export function fallocateZero(fd: number, offset: number, length: number, deallocate: boolean): boolean {
  const mode = FALLOC_FL_KEEP_SIZE | (deallocate ? FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE);
  if ((fallocate(fd, mode, offset, length) as number) === 0) return true;
  const errno = koffi.errno();
  if (errno === EOPNOTSUPP || errno === ENODEV) return false;
  throw new SystemError('fallocate', errno);
}
