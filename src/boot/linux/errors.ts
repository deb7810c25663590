/** Errors of the Linux loader, each meant to be shown to the user as one line. */

/** The kernel file is not something we can boot (bad magic, truncated, too old, unsupported compression). */
export class LinuxImageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LinuxImageError';
  }
}

/** The kernel is fine but the guest cannot hold it as asked (RAM too small, initrd too big, command line too long). */
export class LinuxLoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LinuxLoadError';
  }
}
