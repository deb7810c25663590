/**
 * Picks members out of a tar stream (ustar, GNU long names and pax are
 * handled by modern-tar). Only the members asked for are kept in memory;
 * the rest are skipped as the stream goes by.
 *
 * modern-tar's unpackTar is used rather than its entry-by-entry decoder:
 * with the decoder, cancelling a skipped entry's body (as its docs advise)
 * was seen to stall the stream on the next large entry (modern-tar 0.8.6);
 * unpackTar drains skipped entries instead.
 */
import { unpackTar } from 'modern-tar';

export interface TarMember {
  /** Relative, without a leading "./" or "/" and without a trailing "/". */
  path: string;
  type: 'file' | 'directory' | 'symlink' | 'link' | 'other';
  mode: number;
  /** Target of a symlink or hard link. */
  linkTarget?: string;
  /** Contents of a regular file. */
  data?: Uint8Array;
}

export const normalizeTarPath = (name: string): string => name.replace(/^(\.?\/)+/, '').replace(/\/+$/, '');

function memberType(type: string | undefined): TarMember['type'] {
  switch (type) {
    case undefined:
      return 'file';
    case 'file':
    case 'directory':
    case 'symlink':
    case 'link':
      return type;
    default:
      return 'other';
  }
}

/** The members whose path `want` accepts, in archive order. */
export async function readTarMembers(tar: ReadableStream<Uint8Array>, want: (path: string) => boolean): Promise<TarMember[]> {
  const entries = await unpackTar(tar, { strict: true, filter: (header) => want(normalizeTarPath(header.name)) });
  return entries.map(({ header, data }) => {
    const type = memberType(header.type);
    const member: TarMember = { path: normalizeTarPath(header.name), type, mode: header.mode ?? 0 };
    if (header.linkname) member.linkTarget = header.linkname;
    if (type === 'file') member.data = data ?? new Uint8Array(0);
    return member;
  });
}
