import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { SqlDatabase, SqlDialect, SqlRunResult, SqlStatement, SqlValue } from './sql-database.js';

/**
 * The embedded engine behind the SqlDatabase seam: one SQLite file through better-sqlite3, which the seam is
 * shaped after, so every call passes straight through. This is the only module (with the SQLite migration runner,
 * through `pragma`) that knows the file is SQLite: PRAGMAs stay here.
 */
export class SqliteDatabase implements SqlDatabase {
  readonly dialect: SqlDialect = 'sqlite';

  private constructor(private readonly db: Database.Database) {}

  /**
   * A read-write file, created with its folder when missing. WAL and synchronous=FULL: a committed row survives
   * power loss, which is the promise behind every C-STORE Success we send; foreign keys enforced; a writer waits
   * up to 5 s for another process's transaction (the CLI next to the daemon) instead of failing at once.
   */
  static open(file: string): SqliteDatabase {
    mkdirSync(path.dirname(file), { recursive: true });
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    return new SqliteDatabase(db);
  }

  /** An existing file opened for reading only (`cxr-gateway jobs` while the daemon runs): it never writes. */
  static openReadOnly(file: string): SqliteDatabase {
    const db = new Database(file, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 5000');
    return new SqliteDatabase(db);
  }

  prepare(sql: string): SqlStatement {
    const statement = this.db.prepare<SqlValue[]>(sql);
    return {
      run: (...params: SqlValue[]): SqlRunResult => ({ changes: statement.run(...params).changes }),
      get: (...params: SqlValue[]): unknown => statement.get(...params),
      all: (...params: SqlValue[]): unknown[] => statement.all(...params),
    };
  }

  transaction<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
    return this.db.transaction(fn);
  }

  exec(sql: string): void {
    this.db.exec(sql);
  }

  close(): void {
    this.db.close();
  }

  /**
   * One PRAGMA's single value (`user_version`, `page_count`), or a setting (`user_version = 3`), for the SQLite
   * migration runner, the store watch and tests. Not part of the seam: PostgreSQL has no PRAGMA.
   */
  pragma(source: string): unknown {
    return this.db.pragma(source, { simple: true });
  }

  /**
   * PRAGMA data_version: it changes only when another connection (the CLI) commits to the file, so the daemon can
   * notice changes made behind its back without reading any table.
   */
  dataVersion(): number {
    return Number(this.pragma('data_version'));
  }
}
