import type { JobStore } from '../../src/store/job-store.js';
import { SqliteDatabase } from '../../src/store/sqlite-database.js';

/** The SQLite file behind a store opened by JobStore.open, for tests that need its PRAGMAs (schema version, size). */
export function sqliteOf(store: JobStore): SqliteDatabase {
  const db = store.connection;
  if (!(db instanceof SqliteDatabase)) throw new Error(`the store is on ${db.dialect}, not on a SQLite file`);
  return db;
}
