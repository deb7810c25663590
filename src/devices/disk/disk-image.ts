/**
 * What a block device needs of its backing store: bytes at offsets, read
 * and written synchronously (the device's I/O thread is its own, so
 * blocking it holds up no vCPU). A failure throws; the device turns it
 * into an I/O error for the guest.
 */
export interface DiskImage {
  /** Size in bytes, a whole number of 512-byte sectors. */
  readonly size: number;
  /** Fills the buffers `into`, one after the other, from `offset`: all of them or throws. */
  read(into: readonly Uint8Array[], offset: number): void;
  /** Writes the buffers `from`, one after the other, at `offset`: all of them or throws. */
  write(from: readonly Uint8Array[], offset: number): void;
  /** Makes what was written durable (fdatasync). */
  flush(): void;
  /** Zeroes [offset, offset + length); with `deallocate` the host may free the space. */
  zero(offset: number, length: number, deallocate: boolean): void;
}
