/**
 * Console keys, as QEMU's: Ctrl-A starts a command. Ctrl-A x quits,
 * Ctrl-A h prints help, Ctrl-A Ctrl-A sends one Ctrl-A to the guest, and
 * tsvmm's own Ctrl-A p pauses or resumes the VM; any other key after
 * Ctrl-A is dropped. Everything else goes to the guest.
 */
export const ESCAPE = 0x01; // Ctrl-A

export const ESCAPE_HELP = [
  'Ctrl-A h        print this help',
  'Ctrl-A x        quit tsvmm (the guest is stopped)',
  'Ctrl-A p        pause the VM, or resume it',
  'Ctrl-A Ctrl-A   send Ctrl-A to the guest',
].join('\n');

export interface EscapeHandlers {
  guest(bytes: Uint8Array): void;
  quit(): void;
  help(): void;
  pauseOrResume(): void;
}

export class EscapeKeys {
  private escaped = false;

  constructor(private readonly on: EscapeHandlers) {}

  /** Splits typed bytes into runs for the guest and console commands, in the order they were typed. */
  feed(bytes: Uint8Array): void {
    let run = 0; // start of the bytes not yet passed on
    for (let i = 0; i < bytes.length; i++) {
      if (this.escaped) {
        this.escaped = false;
        run = i + 1;
        this.command(bytes[i]);
      } else if (bytes[i] === ESCAPE) {
        if (i > run) this.on.guest(bytes.subarray(run, i));
        this.escaped = true;
        run = i + 1;
      }
    }
    if (run < bytes.length) this.on.guest(bytes.subarray(run));
  }

  private command(key: number): void {
    switch (String.fromCharCode(key).toLowerCase()) {
      case '\x01': return this.on.guest(Uint8Array.of(ESCAPE));
      case 'x': return this.on.quit();
      case 'p': return this.on.pauseOrResume();
      case 'h':
      case '?':
        return this.on.help();
      default: // dropped, as QEMU does
    }
  }
}
