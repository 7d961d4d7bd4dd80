import type { z } from 'zod';
import { GatewayError } from '../errors.js';

/** The code of a JSON column of the job store whose text is not what this version of the gateway writes there. */
export const STORED_JSON_INVALID = 'STORED_JSON_INVALID';

/** Which column of which row: named in the error so that an admin can find the row (`jobs --json`, sqlite3). */
export interface StoredColumn {
  /** `table.column`, e.g. `jobs.action`. */
  column: string;
  /** The row's key, e.g. `job 12` or `delivery 7`. */
  row: string;
}

/**
 * Reads a JSON column back through the schema of the type it holds, rather than casting whatever is there:
 * a row damaged on disk, edited by hand or written by another version fails here, with a code and the row,
 * instead of as a TypeError deep inside a stage. The sentence never quotes the stored text (it may hold an
 * accession number), only where the shape differs.
 */
export function parseStored<S extends z.ZodType>(schema: S, text: string | null, where: StoredColumn): z.output<S> {
  const what = `${where.column} of ${where.row}`;
  if (text === null) throw invalid(what, 'it is empty (NULL)');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    // V8's SyntaxError quotes the text: say only that it is not JSON.
    throw invalid(what, 'it is not valid JSON');
  }
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues
    .slice(0, 3)
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : '(top)'}: ${i.message}`)
    .join('; ');
  throw invalid(what, `its shape is wrong (${issues})`);
}

function invalid(what: string, detail: string): GatewayError {
  return new GatewayError(
    STORED_JSON_INVALID,
    `the job store's ${what} cannot be read: ${detail}; the row was damaged or written by another version of the gateway (send the study again to process it anew)`,
  );
}
