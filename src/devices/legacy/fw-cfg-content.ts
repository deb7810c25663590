/**
 * What QEMU's firmware configuration device (fw_cfg, QEMU docs/specs/fw_cfg)
 * holds for a machine: the standard items (signature, feature bits, RAM
 * size, CPU counts, command line, kernel and initrd), the file directory,
 * the `etc/e820` memory map, and the user's files (`opt/...`). Built once on
 * the main thread into one SharedArrayBuffer, so every vCPU thread reads the
 * same bytes without a copy.
 */

/** Selector keys (QEMU's include/standard-headers/linux/qemu_fw_cfg.h). */
export const FwCfgKey = {
  SIGNATURE: 0x00,
  ID: 0x01,
  UUID: 0x02,
  RAM_SIZE: 0x03,
  NOGRAPHIC: 0x04,
  NB_CPUS: 0x05,
  KERNEL_SIZE: 0x08,
  INITRD_SIZE: 0x0b,
  MAX_CPUS: 0x0f,
  KERNEL_DATA: 0x11,
  INITRD_DATA: 0x12,
  CMDLINE_SIZE: 0x14,
  CMDLINE_DATA: 0x15,
  FILE_DIR: 0x19,
  FILE_FIRST: 0x20,
} as const;

/** FW_CFG_ID: the traditional interface (always) and the DMA interface. */
export const FW_CFG_FEATURES = 0b11;
/** A file name, NUL included, fits 56 bytes. */
export const MAX_FILE_NAME = 55;
const FILE_ENTRY_SIZE = 64;
const E820_ENTRY_SIZE = 20;
export const E820_FILE = 'etc/e820';

export interface FwCfgFile {
  name: string;
  data: Uint8Array;
}

export interface FwCfgInput {
  cpus: number;
  ramBytes: number;
  /** RAM ranges for etc/e820 (type 1). */
  ram: readonly { gpa: number; size: number }[];
  cmdline?: string;
  kernel?: Uint8Array;
  initrd?: Uint8Array;
  /** The user's files, as `--fw-cfg name=...` gives them. */
  files?: readonly FwCfgFile[];
}

/** The items as plain data that crosses to every thread: one shared buffer and where each item lies in it. */
export interface FwCfgContent {
  bytes: SharedArrayBuffer;
  items: { key: number; offset: number; length: number }[];
}

/** Checks a user file's name: a file the guest can find, not one of ours. */
export function checkFwCfgName(name: string): void {
  if (name.length === 0 || name.length > MAX_FILE_NAME || !/^[\x21-\x7e]+$/.test(name)) {
    throw new Error(`fw_cfg name '${name}': 1 to ${MAX_FILE_NAME} printable ASCII characters, no spaces (e.g. opt/org.example/config)`);
  }
  if (name === E820_FILE) throw new Error(`fw_cfg name '${name}': tsvmm provides that file itself`);
}

const u16 = (n: number) => Uint8Array.from([n & 0xff, (n >> 8) & 0xff]);
const u32 = (n: number) => new Uint8Array(new Uint32Array([n >>> 0]).buffer);
const u64 = (n: number) => new Uint8Array(new BigUint64Array([BigInt(n)]).buffer);

export function buildFwCfgContent(input: FwCfgInput): FwCfgContent {
  const items = new Map<number, Uint8Array>([
    [FwCfgKey.SIGNATURE, Buffer.from('QEMU', 'latin1')],
    [FwCfgKey.ID, u32(FW_CFG_FEATURES)],
    [FwCfgKey.UUID, new Uint8Array(16)],
    [FwCfgKey.RAM_SIZE, u64(input.ramBytes)],
    [FwCfgKey.NOGRAPHIC, u16(1)],
    [FwCfgKey.NB_CPUS, u16(input.cpus)],
    [FwCfgKey.MAX_CPUS, u16(input.cpus)],
  ]);
  if (input.cmdline !== undefined) {
    const cmdline = Buffer.from(`${input.cmdline}\0`, 'latin1');
    items.set(FwCfgKey.CMDLINE_SIZE, u32(cmdline.length)).set(FwCfgKey.CMDLINE_DATA, cmdline);
  }
  if (input.kernel !== undefined) items.set(FwCfgKey.KERNEL_SIZE, u32(input.kernel.length)).set(FwCfgKey.KERNEL_DATA, input.kernel);
  if (input.initrd !== undefined) items.set(FwCfgKey.INITRD_SIZE, u32(input.initrd.length)).set(FwCfgKey.INITRD_DATA, input.initrd);

  // Files get keys from FILE_FIRST in name order, as QEMU gives them.
  const files = [{ name: E820_FILE, data: e820Table(input.ram) }, ...(input.files ?? [])].sort((a, b) => (a.name < b.name ? -1 : 1));
  for (let i = 1; i < files.length; i++) if (files[i].name === files[i - 1].name) throw new Error(`fw_cfg name '${files[i].name}' given twice`);
  const directory = new Uint8Array(4 + FILE_ENTRY_SIZE * files.length);
  const dir = new DataView(directory.buffer);
  dir.setUint32(0, files.length, false);
  files.forEach((f, i) => {
    const at = 4 + FILE_ENTRY_SIZE * i;
    dir.setUint32(at, f.data.length, false);
    dir.setUint16(at + 4, FwCfgKey.FILE_FIRST + i, false);
    directory.set(Buffer.from(f.name, 'latin1'), at + 8);
    items.set(FwCfgKey.FILE_FIRST + i, f.data);
  });
  items.set(FwCfgKey.FILE_DIR, directory);

  const total = [...items.values()].reduce((n, d) => n + d.length, 0);
  const bytes = new SharedArrayBuffer(total);
  const view = new Uint8Array(bytes);
  const placed: FwCfgContent['items'] = [];
  let offset = 0;
  for (const [key, data] of items) {
    view.set(data, offset);
    placed.push({ key, offset, length: data.length });
    offset += data.length;
  }
  return { bytes, items: placed };
}

/** struct e820_entry { u64 address; u64 length; u32 type; } packed, little-endian. */
function e820Table(ram: readonly { gpa: number; size: number }[]): Uint8Array {
  const table = new Uint8Array(E820_ENTRY_SIZE * ram.length);
  const v = new DataView(table.buffer);
  ram.forEach((r, i) => {
    v.setBigUint64(i * E820_ENTRY_SIZE, BigInt(r.gpa), true);
    v.setBigUint64(i * E820_ENTRY_SIZE + 8, BigInt(r.size), true);
    v.setUint32(i * E820_ENTRY_SIZE + 16, 1, true);
  });
  return table;
}
