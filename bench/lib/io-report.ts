/**
 * bench:io's figures as one JSON line or a table: tsvmm, QEMU and the host
 * for each measurement, with tsvmm's ratio to each.
 */
import type { HostInfo } from './host.js';
import type { IoFigures, IoSizes } from './io-workload.js';

export interface IoResults {
  host: HostInfo;
  /** Where the VMMs ran: on this host, or in the test rig (ratios only). */
  place: 'host' | 'rig';
  qemuVersion: string;
  sizes: IoSizes;
  tsvmm: IoFigures;
  qemu: IoFigures;
  hostFigures: IoFigures & { vsock_loopback: boolean };
}

const MEASURES: { key: keyof IoFigures; label: string; unit: string }[] = [
  { key: 'blk_seq_read_mbs', label: 'virtio-blk sequential read', unit: 'MB/s' },
  { key: 'blk_seq_write_mbs', label: 'virtio-blk sequential write', unit: 'MB/s' },
  { key: 'blk_rand_read_iops', label: 'virtio-blk 4 KiB random read', unit: 'IOPS' },
  { key: 'tcp_guest_to_host_mbs', label: 'TCP guest to host (tap)', unit: 'MB/s' },
  { key: 'tcp_host_to_guest_mbs', label: 'TCP host to guest (tap)', unit: 'MB/s' },
  { key: 'vsock_guest_to_host_mbs', label: 'vsock guest to host', unit: 'MB/s' },
];

const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? Number((a / b).toFixed(3)) : null);

export function ioBenchJson(r: IoResults): string {
  const figures = Object.fromEntries(
    MEASURES.map(({ key }) => [key, { tsvmm: r.tsvmm[key], qemu: r.qemu[key], host: r.hostFigures[key], ratio_vs_qemu: ratio(r.tsvmm[key], r.qemu[key]), ratio_vs_host: ratio(r.tsvmm[key], r.hostFigures[key]) }]),
  );
  return JSON.stringify({ bench: 'io', place: r.place, host: r.host, qemu: r.qemuVersion, sizes: r.sizes, vsock_loopback: r.hostFigures.vsock_loopback, figures });
}

export function ioBenchTable(r: IoResults): string {
  const rows = MEASURES.map(({ key, label, unit }) => {
    const q = ratio(r.tsvmm[key], r.qemu[key]);
    const h = ratio(r.tsvmm[key], r.hostFigures[key]);
    return [label, unit, r.tsvmm[key].toFixed(1), r.qemu[key].toFixed(1), r.hostFigures[key].toFixed(1), q === null ? '-' : `${q}x`, h === null ? '-' : `${h}x`];
  });
  const head = ['measure', 'unit', 'tsvmm', 'QEMU', 'host', 'tsvmm/QEMU', 'tsvmm/host'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const where = r.place === 'rig' ? 'in the test rig (QEMU TCG, emulated AMD-V): the ratios mean something, the figures do not' : `on this host (${r.host.backend})`;
  return [
    `bench:io ${where}; ${r.sizes.mib} MiB per pass, ${r.sizes.randomSeconds} s of random reads; ${r.qemuVersion}`,
    line(head),
    ...rows.map(line),
    r.hostFigures.vsock_loopback ? '' : 'host vsock: no loopback transport (modprobe vsock_loopback) to measure the limit',
  ].join('\n');
}
