/**
 * How a VM ended, and the process exit status that reports it.
 */
export type VmStopKind =
  | 'debug-exit' // the guest wrote the debug-exit port
  | 'shutdown' // the guest powered off
  | 'reset' // the guest asked for a reset
  | 'triple-fault' // the CPU shut down (a fault it could not deliver)
  | 'internal-error' // KVM could not run the guest (e.g. an instruction its emulator lacks)
  | 'fail-entry' // the hardware refused the guest state
  | 'guest-error' // the guest did something the VMM cannot serve
  | 'stopped'; // the host stopped the VM (API call, signal)

export interface VmStop {
  kind: VmStopKind;
  /** The status the tsvmm process should exit with. */
  exitCode: number;
  /** One line for the user. */
  message: string;
  /** Details worth printing: register dump, instruction bytes. */
  report?: string;
  vcpu?: number;
}

/** Exit statuses for outcomes that are not the guest's own choice. */
export const ExitStatus = {
  OK: 0,
  ERROR: 2,
  TRIPLE_FAULT: 3,
  INTERNAL_ERROR: 4,
  FAIL_ENTRY: 5,
  GUEST_ERROR: 6,
  GUEST_PANIC: 7,
  SIGNAL_INT: 130,
  SIGNAL_TERM: 143,
} as const;
