/**
 * How a block request lies in a descriptor chain (virtio 1.2, 5.2.6): a
 * 16-byte header the device reads (type, reserved, sector), the data, and
 * a status byte the device writes, last of all. Descriptor boundaries mean
 * nothing (2.6.4): the header may span buffers, and the status byte may
 * share its buffer with data, so the chain is taken as two runs of bytes.
 */
import type { GuestMemory } from '../../memory/guest-memory.js';
import { byteLength, gather, sliceBuffers } from './buffers.js';
import { QueueError, type DescriptorChain, type GuestBuffer } from './queue.js';

export const BLK_HEADER_SIZE = 16;

export interface BlkRequest {
  type: number;
  sector: bigint;
  /** Device-readable data, after the header. */
  readable: GuestBuffer[];
  /** Device-writable data, before the status byte. */
  writable: GuestBuffer[];
  /** Guest-physical address of the status byte. */
  status: number;
}

/**
 * The request in `chain`. A chain with no room for the header among its
 * readable bytes or for the status among its writable ones cannot be
 * answered at all: a driver error, which makes the device need a reset.
 */
export function parseBlkRequest(chain: DescriptorChain, memory: GuestMemory): BlkRequest {
  const readable = byteLength(chain.readable);
  if (readable < BLK_HEADER_SIZE) throw new QueueError(`a block request with ${readable} device-readable bytes, less than its ${BLK_HEADER_SIZE}-byte header`);
  const writable = byteLength(chain.writable);
  if (writable === 0) throw new QueueError('a block request with no device-writable byte for its status');
  const header = new DataView(gather(memory, chain.readable, BLK_HEADER_SIZE).buffer);
  const last = chain.writable[chain.writable.length - 1];
  return {
    type: header.getUint32(0, true),
    sector: header.getBigUint64(8, true),
    readable: sliceBuffers(chain.readable, BLK_HEADER_SIZE, readable),
    writable: sliceBuffers(chain.writable, 0, writable - 1),
    status: last.addr + last.len - 1,
  };
}
