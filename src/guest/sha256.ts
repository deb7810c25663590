/** The SHA-256 of some bytes as lowercase hex, the form apt and the manifest use. */
import { createHash } from 'node:crypto';

export const sha256Hex = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');
