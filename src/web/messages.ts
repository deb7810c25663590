/**
 * What the web console's server and page say to each other over the
 * WebSocket, one JSON object a message. Shared by both sides (the page
 * imports only these types).
 */

/** A vCPU as the page shows it: cumulative counts, so a missed message loses nothing. */
export interface VcpuView {
  id: number;
  state: 'running' | 'halted' | 'waiting' | 'paused' | 'stopped' | 'busy';
  /** Hex, when the vCPU was asked and answered. */
  rip?: string;
  /** Exits so far by reason name (IO, MMIO, HLT, ...). */
  exits: Record<string, number>;
  /** Nanoseconds spent handling them, by reason (0 unless exits are timed: --stats). */
  handlingNs: Record<string, number>;
  /** The busiest ports and MMIO addresses so far: [address, exits]. */
  ports: [number, number][];
  mmio: [number, number][];
}

export interface MemoryMapView {
  space: 'memory' | 'port';
  start: number;
  end: number;
  what: string;
}

export type ServerMessage =
  /** A machine was built (the first, or after a reboot). */
  | { type: 'machine'; description: string; cpus: number; memoryMap: MemoryMapView[] }
  /** Serial output, base64. */
  | { type: 'console'; data: string }
  /** Taken every SAMPLE_MS while the page is open. */
  | { type: 'sample'; atMs: number; state: string; vcpus: VcpuView[]; assisted: Record<string, number> }
  /** The machine ended; `vcpus` hold its final counts (what --stats prints). */
  | { type: 'ended'; message: string; vcpus: VcpuView[] };

export type PageMessage =
  /** Keys typed in the page's terminal. */
  | { type: 'input'; data: string }
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'stop' };
