import { readdirSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../logging/logger.js';
import type { JobStore } from './job-store.js';
import type { Spool } from './spool.js';

export interface SpoolSweepResult {
  /** Files under studies/ that no row points at: never acknowledged (their commit failed), now removed. */
  orphanFilesRemoved: number;
  /** Rows whose file is gone: acknowledged images we can no longer process. */
  missingFiles: Array<{ sopInstanceUid: string; studyInstanceUid: string; path: string }>;
}

/** How many missing files are named one by one in the log; the count covers the rest. */
const MISSING_LISTED = 20;

/**
 * Start-up reconciliation of spool/studies with the store, before the listener opens (nothing is being
 * written). A file is acknowledged only once its row is committed, so a file without a row was never
 * acknowledged (a commit that failed, e.g. SQLite out of space, and a process that died before it could
 * remove the file): it goes, or retention would never reach it. A row without a file is worse (an
 * acknowledged image lost, e.g. someone cleaned the disk by hand): it is logged with its ids for an admin,
 * and the daemon starts anyway; routing then reports that image with its reason (the file cannot be read).
 */
export interface SpoolSweepOptions {
  /**
   * Files without a row younger than this are kept. On a spool shared by several nodes another node may be
   * between renaming a file into studies/ and committing its row while this one starts: removing that file
   * would lose an image the other node is about to acknowledge. 0 (one node): nothing else writes meanwhile.
   */
  orphanMinAgeMs?: number;
  now?: number;
}

export function sweepSpool(
  spool: Spool,
  store: JobStore,
  logger: Logger,
  options: SpoolSweepOptions = {},
): SpoolSweepResult {
  const minAge = options.orphanMinAgeMs ?? 0;
  const now = options.now ?? Date.now();
  const rows = store.instanceLocations();
  const known = new Set(rows.map((r) => path.resolve(r.path)));
  let orphanFilesRemoved = 0;
  for (const study of readdirSync(spool.studiesDir)) {
    const dir = path.join(spool.studiesDir, study);
    if (!isDirectory(dir)) continue;
    let left = 0;
    for (const name of readdirSync(dir)) {
      const file = path.join(dir, name);
      if (!name.endsWith('.dcm') || known.has(path.resolve(file)) || (minAge > 0 && !olderThan(file, now - minAge))) {
        left += 1;
        continue;
      }
      try {
        unlinkSync(file);
        orphanFilesRemoved += 1;
      } catch (error) {
        left += 1;
        logger.warn('could not remove a spool file that no row points at', {
          event: 'STORE-2003',
          studyInstanceUid: study,
          file,
          error: String(error),
        });
      }
    }
    if (left === 0) {
      try {
        rmdirSync(dir);
      } catch {
        // not empty after all, or already gone: harmless
      }
    }
  }
  const missingFiles = rows.filter((r) => !exists(r.path));
  if (orphanFilesRemoved > 0) {
    logger.warn('start-up sweep: removed spool files that were never acknowledged (their store commit had failed)', {
      event: 'STORE-2004',
      count: orphanFilesRemoved,
    });
  }
  if (missingFiles.length > 0) {
    logger.error('start-up sweep: received instances whose spool file is missing; their images cannot be processed', {
      event: 'STORE-2005',
      count: missingFiles.length,
      instances: missingFiles
        .slice(0, MISSING_LISTED)
        .map((m) => ({ sopInstanceUid: m.sopInstanceUid, studyInstanceUid: m.studyInstanceUid, path: m.path })),
    });
  }
  return { orphanFilesRemoved, missingFiles };
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Whether the file was last written before `time` (a file that vanished meanwhile is not: leave it alone). */
function olderThan(file: string, time: number): boolean {
  try {
    return statSync(file).mtimeMs < time;
  } catch {
    return false;
  }
}

function exists(p: string): boolean {
  try {
    statSync(p);
    return true;
  } catch {
    return false;
  }
}
