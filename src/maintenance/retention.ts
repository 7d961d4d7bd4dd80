import { rmSync } from 'node:fs';
import path from 'node:path';
import { isValidUid } from '../dicom/uids.js';
import type { SqlDatabase } from '../store/sql-database.js';

export interface RetentionResult {
  studiesPurged: number;
}

/**
 * Deletes the spooled inputs and outputs of studies whose every job is finished (done, ignored, failed)
 * since before `cutoff`. A study with anything undelivered (a pending or parked delivery, a job still
 * processing) is never touched: parked results are exactly what an admin must still be able to resend. A delivery
 * an admin discarded is settled, like a delivered one.
 * The instances' rows go too, so a later copy of the same image starts a fresh study.
 */
export function purgeFinishedStudies(db: SqlDatabase, spoolDir: string, cutoff: number): RetentionResult {
  const candidates = db
    .prepare(
      `SELECT s.study_instance_uid AS uid FROM studies s
       WHERE s.state = 'ready'
         AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.study_instance_uid = s.study_instance_uid
                         AND (j.state NOT IN ('done', 'ignored', 'failed') OR j.finished_at IS NULL OR j.finished_at >= ?))
         AND NOT EXISTS (SELECT 1 FROM deliveries d JOIN jobs j ON j.id = d.job_id
                         WHERE j.study_instance_uid = s.study_instance_uid AND d.state IN ('pending', 'parked'))`,
    )
    .all(cutoff) as Array<{ uid: string }>;
  let purged = 0;
  for (const { uid } of candidates) {
    if (!isValidUid(uid)) continue;
    // Rows first, in one transaction: if the process dies before the files go, the files are orphans
    // (harmless, never acknowledged twice); the other order could leave rows pointing at nothing.
    db.transaction(() => {
      db.prepare('DELETE FROM instances WHERE study_instance_uid = ?').run(uid);
      db.prepare(`UPDATE studies SET state = 'purged', instance_count = 0 WHERE study_instance_uid = ?`).run(uid);
    })();
    rmSync(path.join(spoolDir, 'studies', uid), { recursive: true, force: true });
    rmSync(path.join(spoolDir, 'outputs', uid), { recursive: true, force: true });
    purged += 1;
  }
  return { studiesPurged: purged };
}
