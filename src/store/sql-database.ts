// The one seam between the store's classes and a database engine (issue 20): the embedded SQLite file (the
// default) or a PostgreSQL server shared by several gateway nodes. The shape is better-sqlite3's own, synchronous
// API, which every store class already uses, so that the SQLite path stays exactly what it was and the store's
// logic (each transition one transaction, the ordering rules in SQL) is written once for both engines.
//
// SQL written against this seam is the common subset both engines run: `?` placeholders (the PostgreSQL side numbers
// them), `INSERT ... ON CONFLICT ... DO NOTHING / DO UPDATE`, `RETURNING`, no engine functions (json_each, strftime,
// IFNULL, GROUP_CONCAT), integers for times (epoch milliseconds). Where the engines must differ (DDL, locks), the
// caller asks `dialect`.

/** A parameter value both engines take and give back unchanged. */
export type SqlValue = string | number | bigint | null | Buffer;

export interface SqlRunResult {
  /** Rows the statement changed. */
  changes: number;
}

export interface SqlStatement {
  run(...params: SqlValue[]): SqlRunResult;
  /** The first row, or undefined. Integer columns come back as numbers on both engines. */
  get(...params: SqlValue[]): unknown;
  all(...params: SqlValue[]): unknown[];
}

export type SqlDialect = 'sqlite' | 'postgres';

export interface SqlDatabase {
  readonly dialect: SqlDialect;
  prepare(sql: string): SqlStatement;
  /**
   * `fn` wrapped in one transaction: committed when it returns, rolled back when it throws. Called inside another
   * transaction it runs as a savepoint of it, as better-sqlite3 does.
   */
  transaction<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R;
  /** Statements without parameters or results (DDL, several separated by `;`). */
  exec(sql: string): void;
  close(): void;
}
