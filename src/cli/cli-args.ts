import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A command line the command cannot run: printed with the command's usage, exit status 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** parseArgs, strict, with its own errors turned into UsageError (exit 2 with the reason). */
export function parseStrict<T extends Options>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

export function oneOf<T extends string>(flag: string, value: string | undefined, valid: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(valid as readonly string[]).includes(value))
    throw new UsageError(`--${flag} '${value}' is not one of: ${valid.join(', ')}`);
  return value as T;
}

export function integer(flag: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max)
    throw new UsageError(`--${flag} '${value}' is not a whole number from ${min} to ${max}`);
  return n;
}

/** An ISO 8601 date or date-time (e.g. 2026-12-06 or 2026-12-06T08:00Z) as epoch ms. */
export function isoTime(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms))
    throw new UsageError(`--${flag} '${value}' is not an ISO date or time (e.g. 2026-12-06T08:00Z)`);
  return ms;
}

/** A shortened text for one table cell: the start and the end of a long UID, the start of a long sentence. */
export function shortUid(uid: string, max = 24): string {
  return uid.length <= max ? uid : `${uid.slice(0, 10)}…${uid.slice(-(max - 11))}`;
}

export function shortText(text: string, max: number): string {
  const line = text.replace(/\s+/g, ' ');
  return line.length <= max ? line : `${line.slice(0, max - 1)}…`;
}
