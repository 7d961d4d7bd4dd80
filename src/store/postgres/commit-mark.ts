// PostgreSQL's side of the store's change mark (store/change-mark.ts says why this number): the xmax of a fresh
// snapshot, the id after the newest finished transaction of the server. xid8 travels as text (it may pass 2^53 in
// theory; in practice a server wraps long before), read as a number.
import type { SqlDatabase } from '../sql-database.js';

export function postgresCommitMark(db: SqlDatabase): number {
  const row = db.prepare('SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS mark').get() as { mark: string };
  return Number(row.mark);
}
