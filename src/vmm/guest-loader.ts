/**
 * Puts a guest in memory and says how its boot vCPU starts: a raw image in
 * a chosen mode, a multiboot kernel (version 1 as `qemu -kernel`, or 2 as GRUB), or a Linux kernel
 * through the 64-bit boot protocol with ACPI tables.
 */
import { writeAcpiTables, acpiDevicesOf } from '../acpi/acpi-tables.js';
import type { StartState } from '../arch/x86/cpu-modes.js';
import { GDT_SIZE, TSS_SIZE, writeGdt } from '../arch/x86/gdt.js';
import { buildIdentityPageTables, identityPageTablesSize } from '../arch/x86/page-tables.js';
import { E820_ACPI } from '../boot/linux/e820.js';
import { loadLinux } from '../boot/linux/linux-loader.js';
import { loadMultiboot } from '../boot/multiboot.js';
import { isMultiboot2, loadMultiboot2 } from '../boot/multiboot2.js';
import { RSDP_SIZE } from '../acpi/rsdp.js';
import { loadRaw, type Reserved } from '../boot/raw.js';
import type { DeviceSpec } from '../devices/registry.js';
import { writeGenerationId } from '../devices/legacy/vmgenid.js';
import { GDT_BASE, MMIO_HOLE_END, PAGE_TABLES_BASE, RING0_STACK_TOP, TSS_BASE } from '../memory/layout.js';
import type { MappedGuestMemory } from '../memory/mapping.js';
import type { BootSource } from './config.js';

export interface LoadedGuest {
  state: StartState;
  /** Every vCPU starts at the entry (raw images); otherwise the others wait for INIT/SIPI. */
  allCpusStart: boolean;
  /** What was loaded, for the user. */
  description: string;
}

// Linux's 64-bit entry wants a stack; this one sits below the zero page's neighbours.
const LINUX_BOOT_STACK = 0x8ff0;

const descriptors = { gdtBase: GDT_BASE, gdtLimit: GDT_SIZE - 1, tssBase: TSS_BASE };

function writeDescriptors(memory: MappedGuestMemory): void {
  writeGdt(memory, GDT_BASE, TSS_BASE, RING0_STACK_TOP);
}

export function loadGuest(boot: BootSource, memory: MappedGuestMemory, cpus: number, devices: DeviceSpec[]): LoadedGuest {
  if (boot.kind !== 'linux' && devices.some((d) => d.kind === 'vmgenid')) {
    throw new Error(`the vmgenid device is announced by the ACPI tables of a Linux guest; a ${boot.kind} guest cannot have it`);
  }
  switch (boot.kind) {
    case 'raw': return loadRawGuest(boot, memory);
    case 'multiboot': return loadMultibootGuest(boot, memory, cpus, devices);
    case 'linux': return loadLinuxGuest(boot, memory, cpus, devices);
  }
}

function loadRawGuest(boot: Extract<BootSource, { kind: 'raw' }>, memory: MappedGuestMemory): LoadedGuest {
  const reserved: Reserved[] = [];
  let pageTables: number | undefined;
  if (boot.mode !== 'real') {
    writeDescriptors(memory);
    reserved.push({ start: GDT_BASE, end: TSS_BASE + TSS_SIZE, what: 'the GDT and TSS' });
    reserved.push({ start: TSS_BASE + TSS_SIZE, end: RING0_STACK_TOP, what: 'the ring-0 stack' });
  }
  if (boot.mode === 'long') {
    const top = Math.max(MMIO_HOLE_END, ...memory.regions.map((r) => r.gpa + r.bytes.length));
    pageTables = buildIdentityPageTables(memory, { base: PAGE_TABLES_BASE, mapUpTo: top, user: boot.user }).cr3;
    reserved.push({ start: PAGE_TABLES_BASE, end: PAGE_TABLES_BASE + identityPageTablesSize(top), what: 'the page tables' });
  }
  loadRaw(boot.image, memory, boot.loadAddr, reserved);
  return {
    state: {
      mode: boot.mode, entry: boot.entry ?? boot.loadAddr, ...descriptors, pageTables, user: boot.user,
      stack: boot.mode === 'real' ? undefined : boot.loadAddr,
    },
    allCpusStart: true,
    description: `raw image, ${boot.image.length} bytes at 0x${boot.loadAddr.toString(16)}, ${boot.mode} mode`,
  };
}

function loadMultibootGuest(
  boot: Extract<BootSource, { kind: 'multiboot' }>,
  memory: MappedGuestMemory,
  cpus: number,
  devices: DeviceSpec[],
): LoadedGuest {
  writeDescriptors(memory);
  // As under QEMU's firmware, the tables are there for a kernel that looks (at 0xe0000, which the
  // memory map leaves out of RAM); a machine built without the acpi-pm device has none.
  const acpi = devices.some((d) => d.kind === 'acpi-pm') ? writeAcpiTables(memory, { cpus, devices: acpiDevicesOf(devices) }) : undefined;
  const options = { cmdline: boot.cmdline ?? '', modules: boot.modules ?? [], ram: memory.ram };
  const version = boot.version ?? (isMultiboot2(boot.image) ? 2 : 1);
  const mb = version === 2
    ? loadMultiboot2(boot.image, memory, { ...options, rsdp: acpi && memory.read(acpi.rsdp, RSDP_SIZE) })
    : loadMultiboot(boot.image, memory, options);
  return {
    state: { mode: 'protected', entry: mb.entry, ...descriptors, regs: { rax: BigInt(mb.eax), rbx: BigInt(mb.ebx) } },
    allCpusStart: false,
    description: `multiboot${version === 2 ? '2' : ''} kernel, entry 0x${mb.entry.toString(16)}`,
  };
}

function loadLinuxGuest(
  boot: Extract<BootSource, { kind: 'linux' }>,
  memory: MappedGuestMemory,
  cpus: number,
  devices: DeviceSpec[],
): LoadedGuest {
  writeDescriptors(memory);
  const acpi = writeAcpiTables(memory, { cpus, devices: acpiDevicesOf(devices) });
  if (devices.some((d) => d.kind === 'vmgenid')) writeGenerationId(memory);
  // Linux needs the identity map only for what the loader puts below 4 GiB.
  const pageTables = buildIdentityPageTables(memory, { base: PAGE_TABLES_BASE, mapUpTo: MMIO_HOLE_END }).cr3;
  const linux = loadLinux(boot.kernel, memory, {
    ram: memory.ram,
    cmdline: boot.cmdline ?? '',
    initrd: boot.initrd,
    rsdpAddress: acpi.rsdp,
    reserved: [{ start: acpi.rsdp, end: acpi.end, type: E820_ACPI }],
  });
  return {
    state: {
      mode: 'long', entry: linux.entry, ...descriptors, pageTables, stack: LINUX_BOOT_STACK,
      regs: { rsi: BigInt(linux.bootParams) },
    },
    allCpusStart: false,
    description: `Linux ${linux.release ?? ''} (${linux.format}${linux.compression ? `, ${linux.compression} decompressed by tsvmm` : ''})`.replace('  ', ' '),
  };
}
