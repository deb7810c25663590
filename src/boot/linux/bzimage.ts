/**
 * A bzImage: the real-mode setup sectors (boot sector with the setup header
 * at 0x1f1, then the setup code), followed by the protected-mode kernel,
 * which is the kernel's own decompressor with the compressed vmlinux (the
 * payload) inside it. See Documentation/arch/x86/boot.rst.
 *
 * The file comes from the user: every size and offset is checked, and
 * anything we cannot boot is refused with a LinuxImageError.
 */
import { LinuxImageError } from './errors.js';
import {
  BOOT_FLAG_MAGIC,
  DEFAULT_SETUP_SECTS,
  HEADER_MAGIC,
  protocolName,
  SECTOR_SIZE,
  SETUP_HEADER_OFFSET,
  setupHeader,
  XLF_KERNEL_64,
  type SetupHeader,
} from './setup-header.js';

export interface BzImage {
  header: SetupHeader;
  /**
   * The header as the file has it, from 0x1f1 to its end (0x202 plus the
   * byte at 0x201), to be copied into the zero page as boot.rst asks.
   */
  headerBytes: Uint8Array;
  /** Size of the real-mode part: the boot sector plus setup_sects sectors. */
  setupSize: number;
  /** The protected-mode kernel: everything after the setup sectors. */
  kernel: Uint8Array;
  /** The compressed vmlinux inside the protected-mode kernel. */
  payload: Uint8Array;
  /** The version string the header points at, e.g. "6.1.0-50-cloud-amd64 (debian-kernel@...) #1 SMP ...". */
  release?: string;
}

/** Protocol 2.06 (Linux 2.6.22) brought cmdline_size, and every field below it. */
const MIN_PROTOCOL = 0x0206;
/** Protocol 2.12 (Linux 3.8) brought xloadflags, and with it the 64-bit entry point. */
const XLOADFLAGS_PROTOCOL = 0x020c;
/** The header has to fit in the zero page before edd_mbr_sig_buffer at 0x290. */
const HEADER_AREA_END = 0x290;
/** The header's jump instruction is at 0x200; its second byte is the offset to the end of the header. */
const JUMP_OFFSET_BYTE = 0x201;
const HEADER_SIGNATURE_OFFSET = 0x202;
/** syssize counts 16-byte paragraphs. */
const PARAGRAPH = 16;
const MAX_RELEASE_LENGTH = 256;

const hex = (n: number): string => `0x${n.toString(16)}`;

export function parseBzImage(file: Uint8Array): BzImage {
  if (file.length < HEADER_SIGNATURE_OFFSET + 4) {
    throw new LinuxImageError(`the kernel file is ${file.length} bytes, too short for a Linux boot header`);
  }
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (view.getUint16(0x1fe, true) !== BOOT_FLAG_MAGIC) {
    throw new LinuxImageError('not a Linux kernel: no boot signature 0xAA55 at offset 0x1fe (and not an ELF vmlinux)');
  }
  if (view.getUint32(HEADER_SIGNATURE_OFFSET, true) !== HEADER_MAGIC) {
    throw new LinuxImageError('not a Linux bzImage: no "HdrS" at offset 0x202 (boot protocol older than 2.00?)');
  }

  const headerEnd = HEADER_SIGNATURE_OFFSET + file[JUMP_OFFSET_BYTE];
  if (headerEnd > HEADER_AREA_END) {
    throw new LinuxImageError(`the setup header claims to end at ${hex(headerEnd)}, past the zero page's header area (${hex(HEADER_AREA_END)})`);
  }
  if (headerEnd > file.length) {
    throw new LinuxImageError(`the kernel file is truncated: ${file.length} bytes, but its setup header ends at ${hex(headerEnd)}`);
  }
  const headerBytes = file.subarray(SETUP_HEADER_OFFSET, headerEnd);
  // Fields past the header's end belong to later protocols: they read as 0.
  const padded = setupHeader.alloc();
  padded.set(headerBytes.subarray(0, padded.length));
  const header = setupHeader.decode(padded);

  if (header.version < MIN_PROTOCOL) {
    throw new LinuxImageError(
      `boot protocol ${protocolName(header.version)} is too old: tsvmm needs ${protocolName(MIN_PROTOCOL)} or later`,
    );
  }
  if (header.version < XLOADFLAGS_PROTOCOL || !(header.xloadflags & XLF_KERNEL_64)) {
    throw new LinuxImageError(
      `the kernel is not 64-bit capable (boot protocol ${protocolName(header.version)}, XLF_KERNEL_64 not set): tsvmm boots x86-64 kernels only`,
    );
  }

  const setupSize = ((header.setup_sects || DEFAULT_SETUP_SECTS) + 1) * SECTOR_SIZE;
  const kernelSize = header.syssize * PARAGRAPH;
  if (file.length < setupSize + kernelSize) {
    throw new LinuxImageError(
      `the kernel file is truncated: ${file.length} bytes, but its header announces ${setupSize} bytes of setup code and ${kernelSize} of kernel`,
    );
  }
  const kernel = file.subarray(setupSize);
  if (header.payload_offset > kernel.length || header.payload_length > kernel.length - header.payload_offset) {
    throw new LinuxImageError(
      `the compressed kernel (${header.payload_length} bytes at ${hex(setupSize + header.payload_offset)}) lies outside the ${file.length}-byte file`,
    );
  }
  const payload = kernel.subarray(header.payload_offset, header.payload_offset + header.payload_length);
  return { header, headerBytes, setupSize, kernel, payload, release: releaseString(file, header) };
}

/** The NUL-terminated string kernel_version points at (an offset less 0x200). */
function releaseString(file: Uint8Array, header: SetupHeader): string | undefined {
  if (header.kernel_version === 0) return undefined;
  const start = header.kernel_version + SECTOR_SIZE;
  const end = file.indexOf(0, start);
  if (start >= file.length || end < 0 || end - start > MAX_RELEASE_LENGTH) return undefined;
  return Buffer.from(file.subarray(start, end)).toString('latin1');
}
