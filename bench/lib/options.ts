/**
 * Command-line options for the benchmarks: node:util's parseArgs with its
 * errors turned into UsageError, and the number checks both benches need.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>;
export type OptionValues<O extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: O }>>['values'];

export function parseBenchOptions<O extends Options>(argv: string[], options: O): OptionValues<O> {
  try {
    return parseArgs({ args: argv, options }).values;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** A positive number (an integer when `integer`) given as --name. */
export function positiveNumber(text: string, name: string, integer: boolean): number {
  const n = Number(text);
  if (!(n > 0) || (integer && !Number.isSafeInteger(n))) {
    throw new UsageError(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got '${text}'`);
  }
  return n;
}
