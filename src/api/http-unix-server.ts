/**
 * JSON over HTTP/1.1 on a Unix socket, as Firecracker's API server speaks
 * it: one handler per request, the body parsed as JSON (at most
 * `maxBodyBytes`, Firecracker's 51200 by default), errors answered as
 * `{"fault_message": "..."}`. The socket file is created here and removed
 * on close; an existing socket file is refused, as Firecracker refuses it.
 */
import { existsSync, unlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export const DEFAULT_MAX_BODY_BYTES = 51200;

export interface ApiRequest {
  method: string;
  path: string;
  /** The parsed JSON body; undefined when there is none. */
  body: unknown;
}

export interface ApiResponse {
  status: number;
  json?: unknown;
}

/** A request refused: status (400 unless said) and the fault message. */
export class ApiError extends Error {
  constructor(message: string, readonly status = 400) {
    super(message);
    this.name = 'ApiError';
  }
}

export type ApiHandler = (request: ApiRequest) => Promise<ApiResponse> | ApiResponse;

export class HttpUnixServer {
  private readonly server: Server;

  private constructor(readonly path: string, handler: ApiHandler, maxBodyBytes: number) {
    this.server = createServer((req, res) => void serve(req, res, handler, maxBodyBytes));
  }

  static async listen(path: string, handler: ApiHandler, maxBodyBytes = DEFAULT_MAX_BODY_BYTES): Promise<HttpUnixServer> {
    if (existsSync(path)) throw new ApiError(`the API socket '${path}' already exists: remove it, or choose another path`);
    const s = new HttpUnixServer(path, handler, maxBodyBytes);
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', (e: NodeJS.ErrnoException) => reject(new ApiError(`cannot listen on the API socket '${path}': ${e.code ?? e.message}`)));
      s.server.listen(path, resolve);
    });
    return s;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    try {
      unlinkSync(this.path);
    } catch {
      // already gone
    }
  }
}

function reply(res: ServerResponse, { status, json }: ApiResponse): void {
  const body = json === undefined ? '' : JSON.stringify(json);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

async function serve(req: IncomingMessage, res: ServerResponse, handler: ApiHandler, maxBodyBytes: number): Promise<void> {
  try {
    const body = await readBody(req, maxBodyBytes);
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    reply(res, await handler({ method: req.method ?? 'GET', path, body }));
  } catch (e) {
    const status = e instanceof ApiError ? e.status : 500;
    reply(res, { status, json: { fault_message: e instanceof Error ? e.message : String(e) } });
  }
}

async function readBody(req: IncomingMessage, limit: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) {
    req.resume();
    throw new ApiError(`Request payload with size ${declared} is larger than the limit of ${limit} allowed by server.`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new ApiError(`Request payload with size ${size} is larger than the limit of ${limit} allowed by server.`);
    chunks.push(chunk);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (e) {
    throw new ApiError(`An error occurred when deserializing the json body of a request: ${(e as Error).message}.`);
  }
}
