import { rmdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { isValidUid } from '../dicom/uids.js';
import type { SqlDatabase } from '../store/sql-database.js';

export interface RetentionResult {
  studiesPurged: number;
}

/**
 * A study retention may purge: `s` its row, the cutoff the one parameter. Every job finished (done, ignored, failed)
 * before the cutoff, and nothing undelivered: parked results are exactly what an admin must still be able to resend.
 * A delivery an admin discarded is settled, like a delivered one.
 */
const FINISHED = `s.state = 'ready'
  AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.study_instance_uid = s.study_instance_uid
                  AND (j.state NOT IN ('done', 'ignored', 'failed') OR j.finished_at IS NULL OR j.finished_at >= ?))
  AND NOT EXISTS (SELECT 1 FROM deliveries d JOIN jobs j ON j.id = d.job_id
                  WHERE j.study_instance_uid = s.study_instance_uid AND d.state IN ('pending', 'parked'))`;

/**
 * Deletes the spooled inputs and outputs of finished studies (FINISHED) older than `cutoff`. The instances' rows go
 * too, so a later copy of the same image starts a fresh study.
 */
export function purgeFinishedStudies(db: SqlDatabase, spoolDir: string, cutoff: number): RetentionResult {
  const candidates = db
    .prepare(`SELECT s.study_instance_uid AS uid FROM studies s WHERE ${FINISHED}`)
    .all(cutoff) as Array<{ uid: string }>;
  let purged = 0;
  for (const { uid } of candidates) {
    if (isValidUid(uid) && purgeStudy(db, spoolDir, uid, cutoff)) purged += 1;
  }
  return { studiesPurged: purged };
}

/**
 * Purges one study if it is still finished; returns whether it did. Images of the study may arrive while retention
 * runs, on this node or on another one sharing the store and spool, so:
 * - the study is checked again inside the transaction, its row locked (FOR UPDATE on PostgreSQL; SQLite has one
 *   writer): an image recorded meanwhile has reopened it, and it is left alone;
 * - only the files of the rows this transaction deleted go, never the whole study folder: an image renamed into the
 *   folder whose row is not committed yet (it is being acknowledged right now) keeps its file; the folder goes only
 *   once empty (an ingest that finds it gone makes it again: Spool.commit);
 * - outputs go per revision of the purged jobs, not a later revision's being written.
 * Rows go first, in one transaction: if the process dies before the files go, the files are orphans (harmless, never
 * acknowledged twice); the other order could leave rows pointing at nothing.
 */
export function purgeStudy(db: SqlDatabase, spoolDir: string, uid: string, cutoff: number): boolean {
  const studiesDir = path.resolve(spoolDir, 'studies');
  const removed = db.transaction((): { paths: string[]; revisions: number[] } | undefined => {
    const lock = db.dialect === 'postgres' ? ' FOR UPDATE' : '';
    if (db.prepare(`SELECT state FROM studies WHERE study_instance_uid = ?${lock}`).get(uid) === undefined) return;
    const still = db
      .prepare(`SELECT 1 AS one FROM studies s WHERE s.study_instance_uid = ? AND ${FINISHED}`)
      .get(uid, cutoff);
    if (still === undefined) return undefined;
    const paths = (
      db.prepare('SELECT path FROM instances WHERE study_instance_uid = ?').all(uid) as Array<{ path: string }>
    ).map((r) => r.path);
    const revisions = (
      db.prepare('SELECT revision FROM jobs WHERE study_instance_uid = ?').all(uid) as Array<{ revision: number }>
    ).map((r) => Number(r.revision));
    db.prepare('DELETE FROM instances WHERE study_instance_uid = ?').run(uid);
    db.prepare(`UPDATE studies SET state = 'purged', instance_count = 0 WHERE study_instance_uid = ?`).run(uid);
    return { paths, revisions };
  })();
  if (removed === undefined) return false;
  for (const file of removed.paths) {
    // A row names its file under the spool's studies/ folder; anything else is not retention's to delete.
    const resolved = path.resolve(file);
    if (resolved.startsWith(`${studiesDir}${path.sep}`)) rmSync(resolved, { force: true });
  }
  const outputs = path.join(spoolDir, 'outputs', uid);
  for (const revision of removed.revisions) {
    rmSync(path.join(outputs, `r${revision}`), { recursive: true, force: true });
  }
  removeIfEmpty(path.join(studiesDir, uid));
  removeIfEmpty(outputs);
  return true;
}

/** Removes a folder that is empty; one that is not (an image arriving now) or that is gone already is left. */
function removeIfEmpty(dir: string): void {
  try {
    rmdirSync(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOENT') throw error;
  }
}
