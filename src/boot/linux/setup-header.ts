/**
 * The x86 Linux setup header (struct setup_header in
 * arch/x86/include/uapi/asm/bootparam.h, described in
 * Documentation/arch/x86/boot.rst). It sits at offset 0x1f1 both in a
 * bzImage file and in the zero page (struct boot_params).
 */
import { struct } from '../../kvm/struct.js';

export const setupHeader = struct('setup_header', {
  setup_sects: 'u8',
  root_flags: 'u16',
  syssize: 'u32',
  ram_size: 'u16',
  vid_mode: 'u16',
  root_dev: 'u16',
  boot_flag: 'u16',
  jump: 'u16',
  header: 'u32',
  version: 'u16',
  realmode_swtch: 'u32',
  start_sys_seg: 'u16',
  kernel_version: 'u16',
  type_of_loader: 'u8',
  loadflags: 'u8',
  setup_move_size: 'u16',
  code32_start: 'u32',
  ramdisk_image: 'u32',
  ramdisk_size: 'u32',
  bootsect_kludge: 'u32',
  heap_end_ptr: 'u16',
  ext_loader_ver: 'u8',
  ext_loader_type: 'u8',
  cmd_line_ptr: 'u32',
  initrd_addr_max: 'u32',
  kernel_alignment: 'u32',
  relocatable_kernel: 'u8',
  min_alignment: 'u8',
  xloadflags: 'u16',
  cmdline_size: 'u32',
  hardware_subarch: 'u32',
  hardware_subarch_data: 'u64',
  payload_offset: 'u32',
  payload_length: 'u32',
  setup_data: 'u64',
  pref_address: 'u64',
  init_size: 'u32',
  handover_offset: 'u32',
  kernel_info_offset: 'u32',
}, { packed: true });
export type SetupHeader = ReturnType<typeof setupHeader.decode>;

/** Where the header starts, in the file and in the zero page. */
export const SETUP_HEADER_OFFSET = 0x1f1;

export const BOOT_FLAG_MAGIC = 0xaa55;
/** "HdrS" read as a little-endian u32. */
export const HEADER_MAGIC = 0x53726448;
/** Bootloader id for "undefined": we have no id assigned by the kernel's registry. */
export const LOADER_TYPE_UNDEFINED = 0xff;

// loadflags
/** heap_end_ptr is valid. */
export const CAN_USE_HEAP = 1 << 7;

// xloadflags (protocol 2.12+)
/** The kernel has the 64-bit entry point at load address + 0x200. */
export const XLF_KERNEL_64 = 1 << 0;

/** Sectors of real-mode setup code when setup_sects is 0 (ancient images). */
export const DEFAULT_SETUP_SECTS = 4;
export const SECTOR_SIZE = 512;
/** The 64-bit entry point's offset into the protected-mode kernel (boot.rst, "64-bit boot protocol"). */
export const KERNEL_64_ENTRY_OFFSET = 0x200;
/**
 * heap_end_ptr's usual value: the setup heap ends at 0xfe00 past the
 * real-mode code's 0x200 start, as QEMU and GRUB set it. Only the real-mode
 * setup code uses it, which the 64-bit entry skips.
 */
export const HEAP_END = 0xfe00;
/** Longest command line (without its NUL) of kernels whose header does not say (COMMAND_LINE_SIZE - 1). */
export const DEFAULT_CMDLINE_SIZE = 2047;

/** "2.15" from 0x020f. */
export function protocolName(version: number): string {
  return `${version >> 8}.${(version & 0xff).toString().padStart(2, '0')}`;
}
