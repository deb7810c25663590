/**
 * Where the web console listens: `[HOST:]PORT` (loopback unless a host is
 * given; port 0 picks a free one), and the token any other address needs,
 * since whoever reaches the page types into the guest's console.
 */
import { isIP } from 'node:net';

export interface WebAddress {
  host: string;
  port: number;
  token?: string;
}

const LOOPBACK = '127.0.0.1';

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** Throws a one-line Error (the caller's flag name first) for an address that is not [HOST:]PORT, or open without a token. */
export function parseWebAddress(text: string, token: string | undefined, flag = '--web'): WebAddress {
  const m = /^(?:(\[[0-9a-fA-F:]+\]|[^:]+):)?(\d{1,5})$/.exec(text);
  const port = m === null ? NaN : Number(m[2]);
  if (m === null || port > 65535) throw new Error(`${flag} '${text}': give [HOST:]PORT, e.g. 8080 or 0.0.0.0:8080`);
  const host = m[1] === undefined ? LOOPBACK : m[1].replace(/^\[(.*)\]$/, '$1');
  if (host !== 'localhost' && isIP(host) === 0) throw new Error(`${flag} '${text}': ${host} is not an IP address`);
  if (token !== undefined && !/^[\x21-\x7e]{8,}$/.test(token)) throw new Error('--web-token: at least 8 printable characters, no spaces');
  if (token === undefined && !isLoopback(host)) {
    throw new Error(`${flag} ${text}: a page on ${host} lets anyone who reaches it type into the guest; give --web-token too`);
  }
  return { host, port, token };
}
