// The shared spool check (issue 20): the spool's root holds a marker file with the id of the store it belongs to
// (the `cluster` row both engines make once). Several nodes mount one spool over NFS; a node that mounts the wrong
// export, or points at another cluster's database, would otherwise receive into one place and record in another,
// and its retention would delete files that another database still points at. It refuses to start instead.
import { open, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { GatewayError } from '../errors.js';
import type { SqlDatabase } from './sql-database.js';
import { writeFileAtomic } from './atomic-file.js';

export const SPOOL_MARKER = 'cxr-gateway-cluster-id';

/**
 * written: a new, empty spool now carries the id; matched: it already did; adopted: a SQLite install from before
 * the marker existed (its files are this store's: there was only ever one) now carries the id.
 */
export type SpoolMarkerOutcome = 'written' | 'matched' | 'adopted';

/** The store's id: the one row of `cluster` (SQLite migration 6, PostgreSQL version 1). */
export function storeClusterId(db: SqlDatabase): string {
  const row = db.prepare('SELECT id FROM cluster').get() as { id: string } | undefined;
  if (row === undefined) {
    throw new GatewayError('STORE_UNAVAILABLE', 'the job store has no cluster id: its schema was not migrated');
  }
  return row.id;
}

/** True when the folder holds at least one file (not only folders), looking no further than the first. */
async function holdsAFile(dir: string): Promise<boolean> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  for (const entry of entries) {
    if (!entry.isDirectory()) return true;
    if (await holdsAFile(path.join(dir, entry.name))) return true;
  }
  return false;
}

/**
 * Checks (and when missing, writes) the marker before anything else touches the spool: even removing the partial
 * transfers of an earlier stop must not happen in another cluster's spool. A spool without a marker that already
 * holds files is adopted on SQLite (an install from before this check: one node, one store, they belong together)
 * but refused on PostgreSQL: a database is shared by nodes that all write markers, so an unmarked spool with files
 * is one no node of this cluster ever started on (another install's, or a copy), and adopting it would let
 * retention and the start-up sweep treat its files as this cluster's.
 */
export async function checkSpoolMarker(
  spoolRoot: string,
  clusterId: string,
  engine: 'sqlite' | 'postgres',
): Promise<SpoolMarkerOutcome> {
  const marker = path.join(spoolRoot, SPOOL_MARKER);
  let found: string | undefined;
  try {
    found = (await readFile(marker, 'utf8')).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (found !== undefined) {
    if (found === clusterId) return 'matched';
    throw new GatewayError(
      'SPOOL_CLUSTER_MISMATCH',
      `the spool ${spoolRoot} belongs to cluster ${found || '(empty marker)'}, but the job store is cluster ${clusterId}: ` +
        'this node mounted another spool, or its storage.database names another cluster',
    );
  }
  const outcome = (await holdsAFile(spoolRoot)) ? 'adopted' : 'written';
  if (outcome === 'adopted' && engine === 'postgres') {
    throw new GatewayError(
      'SPOOL_CLUSTER_MISMATCH',
      `the spool ${spoolRoot} holds files but no ${SPOOL_MARKER} marker, and the PostgreSQL job store is cluster ${clusterId}: ` +
        'no node of this cluster made this spool; point storage.dataDir at the cluster spool (or an empty folder)',
    );
  }
  await writeFileAtomic(spoolRoot, SPOOL_MARKER, Buffer.from(`${clusterId}\n`));
  return outcome;
}

/** Reads the marker, for tests and diagnostics; undefined when there is none. */
export async function readSpoolMarker(spoolRoot: string): Promise<string | undefined> {
  const handle = await open(path.join(spoolRoot, SPOOL_MARKER), 'r').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (handle === undefined) return undefined;
  try {
    return (await handle.readFile('utf8')).trim();
  } finally {
    await handle.close();
  }
}
