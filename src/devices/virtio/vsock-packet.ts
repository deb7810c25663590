/**
 * The header of every virtio-vsock packet (virtio 1.2, 5.10.6), 44 bytes,
 * little-endian; a RW packet's payload follows it. Each packet also carries
 * its sender's credit: the buffer space it has for the connection
 * (buf_alloc) and how many bytes it has consumed from it (fwd_cnt).
 */

export const VSOCK_HEADER_SIZE = 44;
export const HOST_CID = 2;
export const VSOCK_TYPE_STREAM = 1;

export const VsockOp = {
  REQUEST: 1,
  RESPONSE: 2,
  RST: 3,
  SHUTDOWN: 4,
  RW: 5,
  CREDIT_UPDATE: 6,
  CREDIT_REQUEST: 7,
} as const;

/** SHUTDOWN flags: the sender will receive no more (RCV), send no more (SEND). */
export const Shutdown = { RCV: 1, SEND: 2, BOTH: 3 } as const;

export interface VsockHeader {
  srcCid: bigint;
  dstCid: bigint;
  srcPort: number;
  dstPort: number;
  /** Payload bytes after the header. */
  len: number;
  type: number;
  op: number;
  flags: number;
  bufAlloc: number;
  fwdCnt: number;
}

const At = { SRC_CID: 0, DST_CID: 8, SRC_PORT: 16, DST_PORT: 20, LEN: 24, TYPE: 28, OP: 30, FLAGS: 32, BUF_ALLOC: 36, FWD_CNT: 40 } as const;

/** The header in the first VSOCK_HEADER_SIZE bytes of `bytes`. */
export function readHeader(bytes: Uint8Array): VsockHeader {
  const v = new DataView(bytes.buffer, bytes.byteOffset, VSOCK_HEADER_SIZE);
  return {
    srcCid: v.getBigUint64(At.SRC_CID, true),
    dstCid: v.getBigUint64(At.DST_CID, true),
    srcPort: v.getUint32(At.SRC_PORT, true),
    dstPort: v.getUint32(At.DST_PORT, true),
    len: v.getUint32(At.LEN, true),
    type: v.getUint16(At.TYPE, true),
    op: v.getUint16(At.OP, true),
    flags: v.getUint32(At.FLAGS, true),
    bufAlloc: v.getUint32(At.BUF_ALLOC, true),
    fwdCnt: v.getUint32(At.FWD_CNT, true),
  };
}

/** Writes `h` into the first VSOCK_HEADER_SIZE bytes of `bytes`. */
export function writeHeader(bytes: Uint8Array, h: VsockHeader): void {
  const v = new DataView(bytes.buffer, bytes.byteOffset, VSOCK_HEADER_SIZE);
  v.setBigUint64(At.SRC_CID, h.srcCid, true);
  v.setBigUint64(At.DST_CID, h.dstCid, true);
  v.setUint32(At.SRC_PORT, h.srcPort, true);
  v.setUint32(At.DST_PORT, h.dstPort, true);
  v.setUint32(At.LEN, h.len, true);
  v.setUint16(At.TYPE, h.type, true);
  v.setUint16(At.OP, h.op, true);
  v.setUint32(At.FLAGS, h.flags, true);
  v.setUint32(At.BUF_ALLOC, h.bufAlloc >>> 0, true);
  v.setUint32(At.FWD_CNT, h.fwdCnt >>> 0, true);
}

/** A header from the host to the guest; credit fields 0 unless given (a reset for a connection that does not exist). */
export function hostHeader(
  guestCid: bigint,
  hostPort: number,
  guestPort: number,
  op: number,
  more: { len?: number; flags?: number; bufAlloc?: number; fwdCnt?: number } = {},
): VsockHeader {
  return {
    srcCid: BigInt(HOST_CID), dstCid: guestCid, srcPort: hostPort, dstPort: guestPort, type: VSOCK_TYPE_STREAM, op,
    len: more.len ?? 0, flags: more.flags ?? 0, bufAlloc: more.bufAlloc ?? 0, fwdCnt: more.fwdCnt ?? 0,
  };
}
