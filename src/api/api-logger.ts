/**
 * The log Firecracker's PUT /logger sets up: levelled lines (pino's JSON)
 * to the named file or pipe. Until then, and with level Off, nothing is
 * written.
 */
import pino, { type Logger } from 'pino';
import { ApiError } from './http-unix-server.js';
import type { LoggerBody } from '../config/firecracker-schema.js';

const PINO_LEVELS = { Error: 'error', Warning: 'warn', Info: 'info', Debug: 'debug', Trace: 'trace', Off: 'silent' } as const;

export class ApiLogger {
  private logger?: Logger;

  configure(body: LoggerBody): void {
    if (this.logger) throw new ApiError('Reinitialization of the logger is not allowed.');
    if (body.log_path === undefined) throw new ApiError('logger: log_path is required: tsvmm writes its log to a file or named pipe');
    const destination = pino.destination({ dest: body.log_path, sync: true, append: true });
    this.logger = pino({ level: PINO_LEVELS[body.level ?? 'Info'], base: body.module ? { module: body.module } : undefined }, destination);
  }

  info(message: string): void {
    this.logger?.info(message);
  }

  warn(message: string): void {
    this.logger?.warn(message);
  }

  debug(message: string): void {
    this.logger?.debug(message);
  }
}
