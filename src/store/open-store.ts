// Opening the job store, in one place for the daemon and the CLI (issue 20): the embedded SQLite file (the
// default) or a PostgreSQL database that several nodes share. Each engine is brought to the newest schema by its
// own migrations here, and PostgreSQL is refused unless it sorts text the way the store's SQL assumes.
import { readFileSync } from 'node:fs';
import { GatewayError, describeError } from '../errors.js';
import { JobStore } from './job-store.js';
import { migratePostgres } from './migrations/postgres.js';
import { PostgresDatabase } from './postgres/postgres-database.js';
import { requireByteOrder } from './postgres/collation.js';

export type StoreLocation =
  | { engine: 'sqlite'; file: string }
  | {
      engine: 'postgres';
      /** postgres://user@host:port/database, without a password (the config refuses one). */
      url: string;
      statementTimeoutMs: number;
      connectTimeoutMs: number;
      /** A file holding the password; absent: the server needs none (trust, peer, a client certificate). */
      passwordFile?: string;
    };

export interface OpenedStore {
  store: JobStore;
  engine: 'sqlite' | 'postgres';
  /** Where the store is, fit for logs and errors: the file, or the URL without any password. */
  where: string;
}

/** The URL as it may be logged: never a password, even one the config check did not see. */
export function redactUrl(url: string): string {
  if (!URL.canParse(url)) return '(an unparsable PostgreSQL URL)';
  const parsed = new URL(url);
  parsed.password = '';
  return parsed.toString();
}

function readPassword(file: string): string {
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    throw new GatewayError(
      'STORE_UNAVAILABLE',
      `cannot read storage.postgres.passwordFile ${file}: ${describeError(error)}`,
    );
  }
}

/**
 * Opens the store. 'write' brings the schema up to date (SQLite: migrateSqlite; PostgreSQL: migratePostgres under
 * its advisory lock, so nodes starting together apply each version once); 'read' never writes: a SQLite file opens
 * read-only, a PostgreSQL connection is the same as for writing and its caller just never writes.
 */
export function openStore(location: StoreLocation, mode: 'read' | 'write'): OpenedStore {
  if (location.engine === 'sqlite') {
    const store = mode === 'read' ? JobStore.openReadOnly(location.file) : JobStore.open(location.file);
    return { store, engine: 'sqlite', where: location.file };
  }
  const where = redactUrl(location.url);
  const parsed = new URL(location.url);
  if (location.passwordFile !== undefined) {
    parsed.password = encodeURIComponent(readPassword(location.passwordFile));
  }
  if (mode === 'read') {
    // The server holds a reader to its word: every transaction of this session is read-only, on each reconnect
    // too (a connection parameter, not a SET that a new connection would lack).
    const options = parsed.searchParams.get('options');
    parsed.searchParams.set('options', `${options === null ? '' : `${options} `}-c default_transaction_read_only=on`);
  }
  const url = parsed.toString();
  let db: PostgresDatabase;
  try {
    db = PostgresDatabase.open({
      url,
      statementTimeoutMs: location.statementTimeoutMs,
      connectTimeoutMs: location.connectTimeoutMs,
      applicationName: 'cxr-gateway',
    });
  } catch (error) {
    if (error instanceof GatewayError) throw error;
    throw new GatewayError(
      'STORE_UNAVAILABLE',
      `cannot connect to the PostgreSQL job store ${where}: ${describeError(error)}`,
    );
  }
  try {
    requireByteOrder(db);
    if (mode === 'write') migratePostgres(db);
  } catch (error) {
    db.close();
    throw error;
  }
  return { store: JobStore.fromDatabase(db), engine: 'postgres', where };
}
