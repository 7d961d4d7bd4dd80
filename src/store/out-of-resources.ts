/**
 * Errors that mean "the machine ran out of room", not "this data is bad": a full or over-quota disk, memory
 * the kernel would not give, a SQLite file that cannot grow. A store that fails for one of these is answered
 * A700 (out of resources: the sender keeps the image and tries again later), and an output write that fails
 * for one of these waits for space instead of failing the image.
 */
const OUT_OF_SPACE_CODES = new Set(['ENOSPC', 'EDQUOT']);
const OUT_OF_RESOURCES_CODES = new Set([...OUT_OF_SPACE_CODES, 'ENOMEM', 'EFBIG']);

function codeOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  const code = (error as { code: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** The disk (or the user's quota) is full: writing again once space is back will work. */
export function isOutOfSpace(error: unknown): boolean {
  const code = codeOf(error);
  return code !== undefined && OUT_OF_SPACE_CODES.has(code);
}

/**
 * A write, fsync or SQLite commit could not be made durable for lack of resources. SQLITE_IOERR (and its
 * extended codes, e.g. SQLITE_IOERR_WRITE) counts too: it is how SQLite reports a write() or fsync() the
 * kernel refused, which on a full disk is often what comes instead of SQLITE_FULL.
 */
export function isOutOfResources(error: unknown): boolean {
  const code = codeOf(error);
  if (code === undefined) return false;
  return (
    OUT_OF_RESOURCES_CODES.has(code) ||
    code === 'SQLITE_FULL' ||
    code === 'SQLITE_IOERR' ||
    code.startsWith('SQLITE_IOERR_')
  );
}
