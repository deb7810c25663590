/**
 * Multiboot2 kernels through the command line, as GRUB's multiboot2 and
 * module2 commands load them (QEMU cannot): what the kernel finds in EAX
 * and in the boot information tags (command line, loader name, modules,
 * basic memory, memory map, its own ELF sections, the ACPI RSDP), for an
 * ELF kernel and a flat binary placed by its address tag; and a kernel
 * whose required header tag tsvmm cannot honour, refused in one line.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { guestFile } from '../helpers/guests.js';
import { kvmTest } from '../helpers/kvm.js';
import {
  assertMemory, assertModules, emptyReport, moduleFlags, parseCommonLine, REPORT_DONE_STATUS, testModules, type CommonReport,
} from '../helpers/multiboot-report.js';
import { GiB, MiB } from '../../src/memory/layout.js';

const KERNEL_ADDRESS = 0x100000;
const CMDLINE = 'console=ttyS0 tsvmm.marker=cd34';
const EXIT_USAGE = 2;
const modules = testModules();

interface Rsdp {
  signature: string;
  revision: number;
  checksum: string;
  length?: number;
  extendedChecksum?: string;
}

interface Section {
  name: string;
  addr: 'set' | 'zero';
}

/** What mb2-report.s printed. */
interface Report extends CommonReport {
  magicOk: boolean;
  mmapFormat?: { entrySize: number; version: number };
  elfSections?: { num: number; entsize: number; shndx: number };
  sections: Section[];
  acpiOld?: Rsdp;
  acpiNew?: Rsdp;
  otherTags: number[];
}

function parseReport(stdout: string): Report {
  const report: Report = { ...emptyReport(), magicOk: false, sections: [], otherTags: [] };
  for (const line of stdout.split('\n')) {
    let m: RegExpExecArray | null;
    if (parseCommonLine(line, report)) continue;
    if (line === 'multiboot2 magic ok') report.magicOk = true;
    else if ((m = /^mmap entry_size=(\d+) entry_version=(\d+)$/.exec(line))) report.mmapFormat = { entrySize: Number(m[1]), version: Number(m[2]) };
    else if ((m = /^elf_sections num=(\d+) entsize=(\d+) shndx=(\d+)$/.exec(line))) {
      report.elfSections = { num: Number(m[1]), entsize: Number(m[2]), shndx: Number(m[3]) };
    } else if ((m = /^section name=(.*) addr=(set|zero)$/.exec(line))) report.sections.push({ name: m[1], addr: m[2] as Section['addr'] });
    else if ((m = /^acpi_(old|new) signature=(.{8}) revision=(\d+) checksum=(ok|bad)(?: length=(\d+) extended_checksum=(ok|bad))?$/.exec(line))) {
      const [, which, signature, revision, checksum, length, extendedChecksum] = m;
      report[which === 'old' ? 'acpiOld' : 'acpiNew'] = {
        signature, revision: Number(revision), checksum, ...(length !== undefined && { length: Number(length), extendedChecksum }),
      };
    } else if ((m = /^tag type=(\d+)$/.exec(line))) report.otherTags.push(Number(m[1]));
  }
  return report;
}

async function bootReport(kernel: string, mem: number): Promise<Report> {
  const r = await runCli(['run', '--kernel', kernel, '--append', CMDLINE, '--mem', `${mem / MiB}M`, ...moduleFlags(modules)]);
  assert.equal(r.status, REPORT_DONE_STATUS, `status ${r.status}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  assert.equal(r.stderr, '');
  return parseReport(r.stdout);
}

/** The section names and count binutils reads from the kernel file. */
function readelfSections(kernel: string): string[] {
  const out = execFileSync('readelf', ['-SW', kernel], { encoding: 'utf8' });
  return [...out.matchAll(/^\s*\[\s*(\d+)\]\s(?:\s*)(\S*)\s/gm)].map((m) => (m[2] === 'NULL' ? '' : m[2]));
}

function assertBootInfo(report: Report, mem: number): void {
  assert.ok(report.magicOk, 'EAX held the boot loader magic 0x36D76289');
  assert.equal(report.cmdline, CMDLINE, 'the --append text only, as GRUB 2 gives it');
  assert.equal(report.loaderName, 'tsvmm');
  assert.deepEqual(report.mmapFormat, { entrySize: 24, version: 0 });
  assertMemory(report, mem);
  // As GRUB 2's module2 gives them: the arguments, without the path.
  assertModules(report, modules, (m) => m.args.join(' '));
  // One RSDP, revision 2: its first 20 bytes (with their own checksum) are the old tag's copy.
  assert.deepEqual(report.acpiOld, { signature: 'RSD PTR ', revision: 2, checksum: 'ok' });
  assert.deepEqual(report.acpiNew, { signature: 'RSD PTR ', revision: 2, checksum: 'ok', length: 36, extendedChecksum: 'ok' });
  assert.deepEqual(report.otherTags, [], 'no tag the report does not know');
  assert.ok(report.done, 'the kernel finished its report');
}

kvmTest('an ELF multiboot2 kernel gets the magic and its boot information tags, its section headers among them', async () => {
  const kernel = guestFile('mb2-elf.s', { address: KERNEL_ADDRESS, format: 'elf32' });
  const report = await bootReport(kernel, 64 * MiB);
  assertBootInfo(report, 64 * MiB);

  const names = readelfSections(kernel);
  assert.ok(names.includes('.symtab') && names.includes('.shstrtab'), `readelf lists the tables: ${names.join(' ')}`);
  assert.deepEqual(report.elfSections, { num: names.length, entsize: 40, shndx: names.indexOf('.shstrtab') });
  // Every name was read from the section-name table where tsvmm loaded it; every section but
  // the null one has an address, the tables the image does not load too.
  assert.deepEqual(report.sections, names.map((name, i) => ({ name, addr: i === 0 ? 'zero' : 'set' })));
});

kvmTest('a flat multiboot2 kernel placed by its address tag boots the same way, without section headers', async () => {
  const report = await bootReport(guestFile('mb2-addr.s', { address: KERNEL_ADDRESS }), 64 * MiB);
  assertBootInfo(report, 64 * MiB);
  assert.equal(report.elfSections, undefined);
});

kvmTest('with 4 GiB of RAM the multiboot2 memory map shows the MMIO hole and the RAM above 4 GiB', async () => {
  const report = await bootReport(guestFile('mb2-addr.s', { address: KERNEL_ADDRESS }), 4 * GiB);
  assertBootInfo(report, 4 * GiB);
});

kvmTest('a kernel whose framebuffer tag is required is refused in one line, before it runs', async () => {
  // mb2-elf.s's framebuffer tag (type 5, flags 1 = optional, size 20) with the optional flag cleared.
  const image = readFileSync(guestFile('mb2-elf.s', { address: KERNEL_ADDRESS, format: 'elf32' }));
  const tag = Buffer.from([5, 0, 1, 0, 20, 0, 0, 0]);
  const at = image.indexOf(tag);
  assert.ok(at > 0, 'the framebuffer tag is in the kernel');
  image[at + 2] = 0;
  const dir = mkdtempSync(join(tmpdir(), 'tsvmm-mb2-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const kernel = join(dir, 'framebuffer-required.elf');
  writeFileSync(kernel, image);

  const r = await runCli(['run', '--kernel', kernel]);
  assert.equal(r.status, EXIT_USAGE);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^tsvmm: .*multiboot2 kernel requires a framebuffer, which tsvmm has not \(header tag 5; mark it optional to boot without\)\n$/);
});
