/**
 * tsvmm's version (package.json's), and the version of Firecracker's API
 * that tsvmm's API server follows.
 */
import { readFileSync } from 'node:fs';

export const TSVMM_VERSION: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;
export const FIRECRACKER_API_VERSION = '1.12.0';
