// A number that moves when someone else commits to the store, for the daemon's store watch (it wakes the pipeline
// for work the CLI, and on PostgreSQL other nodes, committed behind its back).
//
// SQLite: PRAGMA data_version, which moves only when another connection commits to the file.
// PostgreSQL: the xmax of a fresh snapshot (pg_current_snapshot), the id after the newest finished transaction. It
// moves at every commit that wrote anything, in any table, by any node or CLI, and reading it touches no table and
// takes no lock, so polling it every second costs one round trip. Chosen over a counter row that each transition
// bumps (every writer would then contend for that one row, and a transition that forgot it would go unseen) and
// over MAX(updated_at) of some tables (a change elsewhere, or two changes in one millisecond, would go unseen). It
// also moves for this node's own commits and for other databases of the same server: those wakes are spurious
// but harmless (a wake re-reads the due work), and at most one per poll.
import { SqliteDatabase } from './sqlite-database.js';
import type { SqlDatabase } from './sql-database.js';
import { postgresCommitMark } from './postgres/commit-mark.js';

export function changeMark(db: SqlDatabase): number {
  if (db instanceof SqliteDatabase) return db.dataVersion();
  return postgresCommitMark(db);
}
