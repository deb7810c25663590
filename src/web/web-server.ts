/**
 * The web console's HTTP server: the page and its scripts (the page's own,
 * compiled at build time, and xterm.js from its npm package), and a
 * WebSocket at /ws that the dashboard talks over.
 *
 * With a token, every request and the WebSocket must carry it: `?token=`
 * on the first load, which sets a cookie for the rest. Without one (only
 * on loopback), a WebSocket from another site's page is refused by its
 * Origin, so a page elsewhere cannot type into the guest.
 */
import { timingSafeEqual } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, type WebSocket } from 'ws';
import type { WebAddress } from './web-address.js';

const TOKEN_COOKIE = 'tsvmm-token';
const xtermDir = dirname(dirname(createRequire(import.meta.url).resolve('@xterm/xterm')));
const pageDir = fileURLToPath(new URL('../../../web/', import.meta.url));
/** The page's modules, compiled from src/web/page at build time. */
const pageScripts = fileURLToPath(new URL('../../web/page/', import.meta.url));

/** Path to [file, content type]. */
const FILES: Record<string, [string, string]> = {
  '/': [join(pageDir, 'index.html'), 'text/html; charset=utf-8'],
  '/style.css': [join(pageDir, 'style.css'), 'text/css'],
  ...Object.fromEntries((existsSync(pageScripts) ? readdirSync(pageScripts) : []).filter((f) => f.endsWith('.js')).map((f) => [`/${f}`, [join(pageScripts, f), 'text/javascript']])),
  '/xterm.js': [join(xtermDir, 'lib', 'xterm.js'), 'text/javascript'],
  '/xterm.css': [join(xtermDir, 'css', 'xterm.css'), 'text/css'],
};

export class WebServer {
  private readonly sockets = new WebSocketServer({ noServer: true });

  private constructor(
    private readonly server: Server,
    private readonly token: string | undefined,
    /** The page's address, with the token when there is one. */
    readonly url: string,
  ) {}

  /** Listens at `address`; `connected` hears each WebSocket the page opens. */
  static async listen(address: WebAddress, connected: (socket: WebSocket) => void): Promise<WebServer> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(new Error(`--web ${address.host}:${address.port}: ${e.code === 'EADDRINUSE' ? 'the port is in use' : e.code === 'EACCES' ? 'not allowed to listen there' : e.message}`)),
      );
      server.listen(address.port, address.host, resolve);
    });
    const { port } = server.address() as { port: number };
    const host = address.host.includes(':') ? `[${address.host}]` : address.host;
    const url = `http://${host}:${port}/${address.token === undefined ? '' : `?token=${encodeURIComponent(address.token)}`}`;
    const web = new WebServer(server, address.token, url);
    server.on('request', (request, response) => web.serve(request, response));
    server.on('upgrade', (request, socket, head) => {
      if (new URL(request.url ?? '/', 'http://x').pathname !== '/ws' || !web.allowed(request) || !sameOrigin(request)) {
        socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
        return;
      }
      web.sockets.handleUpgrade(request, socket, head, connected);
    });
    return web;
  }

  async close(): Promise<void> {
    for (const client of this.sockets.clients) client.terminate();
    this.sockets.close();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private serve(request: IncomingMessage, response: ServerResponse): void {
    const url = new URL(request.url ?? '/', 'http://x');
    if (!this.allowed(request)) return plain(response, 403, 'tsvmm: this page needs its token (?token=...)\n');
    if (url.pathname === '/favicon.ico') return void response.writeHead(204).end();
    const file = FILES[url.pathname];
    if (file === undefined || request.method !== 'GET') return plain(response, 404, 'not found\n');
    const headers: Record<string, string> = { 'Content-Type': file[1], 'Cache-Control': 'no-store' };
    if (this.token !== undefined) headers['Set-Cookie'] = `${TOKEN_COOKIE}=${encodeURIComponent(this.token)}; HttpOnly; SameSite=Strict; Path=/`;
    response.writeHead(200, headers).end(readFileSync(file[0]));
  }

  /** The token, from the query or the cookie, when one is set. */
  private allowed(request: IncomingMessage): boolean {
    if (this.token === undefined) return true;
    const url = new URL(request.url ?? '/', 'http://x');
    const cookie = (request.headers.cookie ?? '').split(';').map((c) => c.trim().split('=')).find(([k]) => k === TOKEN_COOKIE)?.[1];
    const given = url.searchParams.get('token') ?? (cookie === undefined ? undefined : decodeURIComponent(cookie));
    if (given === undefined) return false;
    const [a, b] = [Buffer.from(given), Buffer.from(this.token)];
    return a.length === b.length && timingSafeEqual(a, b);
  }
}

/** A browser says which page opened a WebSocket: it must be this server's own. */
function sameOrigin(request: IncomingMessage): boolean {
  const origin = request.headers.origin;
  return origin === undefined || origin === `http://${request.headers.host}`;
}

function plain(response: ServerResponse, status: number, text: string): void {
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' }).end(text);
}
