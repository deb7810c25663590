/**
 * Where the guest's serial console goes: the terminal (output to stdout,
 * keys from stdin), a file (output only), or nowhere.
 */
export type ConsoleMode = { kind: 'stdio' } | { kind: 'file'; path: string } | { kind: 'none' };

/** Parses the `--console` value: `stdio`, `file:PATH` or `none`. */
export function parseConsoleMode(text: string): ConsoleMode {
  if (text === 'stdio' || text === 'none') return { kind: text };
  if (text.startsWith('file:') && text.length > 'file:'.length) return { kind: 'file', path: text.slice('file:'.length) };
  throw new Error(`--console takes stdio, file:PATH or none, not '${text}'`);
}
