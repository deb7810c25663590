/**
 * The type-0 PCI configuration header (PCI Local Bus 3.0, 6.1): register
 * offsets and bits, and the sizes of the two config spaces: 256 bytes
 * through ports 0xCF8/0xCFC, 4 KiB through ECAM (the rest reads 0 here, so
 * there are no PCI Express extended capabilities).
 */

export const PCI_CONFIG_SIZE = 256;

export const Reg = {
  VENDOR_ID: 0x00,
  DEVICE_ID: 0x02,
  COMMAND: 0x04,
  STATUS: 0x06,
  REVISION_ID: 0x08,
  /** Programming interface, subclass and class: three bytes from here. */
  CLASS_CODE: 0x09,
  CACHE_LINE_SIZE: 0x0c,
  LATENCY_TIMER: 0x0d,
  HEADER_TYPE: 0x0e,
  BAR0: 0x10,
  SUBSYSTEM_VENDOR_ID: 0x2c,
  SUBSYSTEM_ID: 0x2e,
  CAPABILITIES: 0x34,
  INTERRUPT_LINE: 0x3c,
  INTERRUPT_PIN: 0x3d,
} as const;

export const BAR_COUNT = 6;

export const Command = {
  IO: 1 << 0,
  MEMORY: 1 << 1,
  BUS_MASTER: 1 << 2,
  PARITY: 1 << 6,
  SERR: 1 << 8,
  INTX_DISABLE: 1 << 10,
} as const;
/** The command bits a guest may set on every function; IO too on one with an I/O BAR (pci-device.ts). */
export const COMMAND_WRITABLE = Command.MEMORY | Command.BUS_MASTER | Command.PARITY | Command.SERR | Command.INTX_DISABLE;

export const Status = {
  /** The function's INTx is asserted (whether or not INTX_DISABLE lets it out). */
  INTERRUPT: 1 << 3,
  CAPABILITIES_LIST: 1 << 4,
} as const;

/** Where the first capability goes: right after the header. */
export const FIRST_CAPABILITY = 0x40;

export const CapabilityId = { VENDOR_SPECIFIC: 0x09, MSIX: 0x11 } as const;

/** INTA# in the interrupt pin register; 0 means none. */
export const INTA = 1;

/** What reads of an absent function return. */
export const NO_DEVICE = 0xffff_ffff;
