/**
 * One-line errors for the command line: a person gets a sentence and a
 * non-zero status, never a stack trace (unless TSVMM_DEBUG is set).
 */
export class UsageError extends Error {}

export const EXIT_USAGE = 2;

export function reportError(e: unknown): number {
  const message = e instanceof Error ? e.message : String(e);
  process.stderr.write(`tsvmm: ${message.split('\n')[0]}\n`);
  if (process.env.TSVMM_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
  return EXIT_USAGE;
}
