// PostgreSQL's collation, checked when the store opens (store/open-store.ts). PostgreSQL-only SQL, hence here.
import { GatewayError } from '../../errors.js';
import type { SqlDatabase } from '../sql-database.js';

/**
 * The store's SQL sorts and compares UIDs and version strings as bytes (SQLite's BINARY collation), which
 * PostgreSQL does only under the C collation: under a language's collation `1.2.10` sorts after `1.21`, so "the
 * newest revision" and keyset pages would differ between the engines. Asked of the server by behaviour, so that any
 * collation that orders by code point (C, POSIX, C.UTF-8) passes and every other one is refused.
 */
export function requireByteOrder(db: SqlDatabase): void {
  const row = db
    .prepare(
      // The ICU locale's column is datlocale from PostgreSQL 17, daticulocale before: read through to_jsonb so
      // that either works. An ICU database reports datcollate 'C' yet sorts by language: hence the behaviour test.
      `SELECT COALESCE(to_jsonb(d) ->> 'datlocale', to_jsonb(d) ->> 'daticulocale', d.datcollate) AS collation,
              ('1.2.10' < '1.21' AND 'B' < 'a') AS bytewise
       FROM pg_database d WHERE d.datname = current_database()`,
    )
    .get() as { collation: string; bytewise: boolean } | undefined;
  if (row === undefined || !row.bytewise) {
    throw new GatewayError(
      'STORE_COLLATION_UNSUPPORTED',
      `the PostgreSQL database sorts text by the collation ${row?.collation ?? '(unknown)'}, not byte by byte: ` +
        "create it with CREATE DATABASE ... TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C' (and LOCALE_PROVIDER libc " +
        'where the server defaults to ICU)',
    );
  }
}
