/**
 * The zero page (struct boot_params, arch/x86/include/uapi/asm/bootparam.h):
 * the one page a boot loader fills in for the kernel, with the setup header
 * at 0x1f1 and the E820 map at 0x2d0. Fields tsvmm never sets are kept as
 * byte arrays so every offset stays as in the kernel's header.
 */
import { array, struct } from '../../kvm/struct.js';
import { MiB } from '../../memory/layout.js';
import { e820Entry, E820_MAX_ENTRIES, type E820Entry } from './e820.js';
import {
  BOOT_FLAG_MAGIC,
  CAN_USE_HEAP,
  HEADER_MAGIC,
  HEAP_END,
  LOADER_TYPE_UNDEFINED,
  SETUP_HEADER_OFFSET,
  setupHeader,
} from './setup-header.js';

export const bootParams = struct('boot_params', {
  screen_info: array('u8', 0x40),
  apm_bios_info: array('u8', 0x14),
  _pad2: array('u8', 4),
  tboot_addr: 'u64',
  ist_info: array('u8', 0x10),
  acpi_rsdp_addr: 'u64',
  _pad3: array('u8', 8),
  hd0_info: array('u8', 16),
  hd1_info: array('u8', 16),
  sys_desc_table: array('u8', 16),
  olpc_ofw_header: array('u8', 16),
  ext_ramdisk_image: 'u32',
  ext_ramdisk_size: 'u32',
  ext_cmd_line_ptr: 'u32',
  _pad4: array('u8', 112),
  cc_blob_address: 'u32',
  edid_info: array('u8', 0x80),
  efi_info: array('u8', 0x20),
  alt_mem_k: 'u32',
  scratch: 'u32',
  e820_entries: 'u8',
  eddbuf_entries: 'u8',
  edd_mbr_sig_buf_entries: 'u8',
  kbd_status: 'u8',
  secure_boot: 'u8',
  _pad5: array('u8', 2),
  /** Must stay 0: a boot loader that leaves it set is taken to have left garbage in the page. */
  sentinel: 'u8',
  _pad6: array('u8', 1),
  hdr: setupHeader,
  _pad7: array('u8', 0x290 - SETUP_HEADER_OFFSET - setupHeader.size),
  edd_mbr_sig_buffer: array('u32', 16),
  e820_table: array(e820Entry, E820_MAX_ENTRIES),
  _pad8: array('u8', 48),
  eddbuf: array('u8', 0x1ec),
  _pad9: array('u8', 276),
}, { packed: true });

const VMLINUX_KERNEL_ALIGNMENT = 16 * MiB;

/** Kernel memory above 4 GiB goes in two 32-bit halves. */
const low32 = (n: number): number => n % 2 ** 32;
const high32 = (n: number): number => Math.floor(n / 2 ** 32);

export interface BootParamsInput {
  /**
   * The setup header bytes of a bzImage, from 0x1f1 up to its end
   * (0x202 + the byte at 0x201). Absent for a bare vmlinux, for which a
   * minimal header is made, as Firecracker and Cloud Hypervisor do.
   */
  header?: Uint8Array;
  cmdlineAddress: number;
  initrd?: { address: number; size: number };
  e820: E820Entry[];
  /** Guest-physical address of the ACPI RSDP, if there are ACPI tables. */
  rsdpAddress?: number;
}

/** The zero page's bytes. */
export function buildBootParams(input: BootParamsInput): Uint8Array {
  const page = bootParams.alloc();
  if (input.header) {
    page.set(input.header, SETUP_HEADER_OFFSET);
  } else {
    // The fields Firecracker and Cloud Hypervisor fill in for a vmlinux (kernel_alignment "must be non-zero").
    setupHeader.encode(
      { boot_flag: BOOT_FLAG_MAGIC, header: HEADER_MAGIC, kernel_alignment: VMLINUX_KERNEL_ALIGNMENT },
      page,
      SETUP_HEADER_OFFSET,
    );
  }
  const hdr = setupHeader.decode(page, SETUP_HEADER_OFFSET);
  const initrd = input.initrd ?? { address: 0, size: 0 };
  bootParams.encode({
    hdr: {
      ...hdr,
      type_of_loader: LOADER_TYPE_UNDEFINED,
      loadflags: hdr.loadflags | CAN_USE_HEAP,
      heap_end_ptr: HEAP_END,
      cmd_line_ptr: low32(input.cmdlineAddress),
      ramdisk_image: low32(initrd.address),
      ramdisk_size: low32(initrd.size),
    },
    ext_cmd_line_ptr: high32(input.cmdlineAddress),
    ext_ramdisk_image: high32(initrd.address),
    ext_ramdisk_size: high32(initrd.size),
    acpi_rsdp_addr: BigInt(input.rsdpAddress ?? 0),
    e820_entries: input.e820.length,
    e820_table: input.e820.map((e) => ({ addr: BigInt(e.addr), size: BigInt(e.size), type: e.type })),
  }, page);
  return page;
}
