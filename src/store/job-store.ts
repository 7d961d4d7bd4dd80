import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { KeyAttributes } from '../dicom/dataset-walker.js';

export interface ReceivedInstance {
  sopInstanceUid: string;
  sopClassUid: string;
  studyInstanceUid: string;
  seriesInstanceUid: string | undefined;
  transferSyntaxUid: string;
  path: string;
  sizeBytes: number;
  callingAe: string;
  calledAe: string;
  sourceIp: string;
  associationId: string;
  attributes: KeyAttributes;
  receivedAt: number;
}

export type RecordOutcome =
  { kind: 'stored'; studyReopened: boolean } | { kind: 'duplicate'; storedUnderStudy: string; path: string };

/** Every state, for filters and their validation (CLI, API): the types below are read from these lists. */
export const STUDY_STATES = ['receiving', 'ready', 'purged'] as const;
export type StudyState = (typeof STUDY_STATES)[number];
/**
 * ready: assembled, waiting for routing; processing: routed, images being classified/explained/written;
 * delivering: outputs written, deliveries pending; done / ignored (a rule said so, or nothing eligible) /
 * failed (every image failed) / parked (a delivery gave up: an admin must look; it stays parked until an admin
 * releases or discards every parked delivery of it).
 */
export const JOB_STATES = ['ready', 'processing', 'delivering', 'done', 'ignored', 'failed', 'parked'] as const;
export type JobState = (typeof JOB_STATES)[number];

export interface StudySummary {
  studyInstanceUid: string;
  state: StudyState;
  revision: number;
  instanceCount: number;
  firstReceivedAt: number;
  lastReceivedAt: number;
  callingAe: string;
}

export interface JobSummary {
  id: number;
  studyInstanceUid: string;
  revision: number;
  state: JobState;
  rule: string | null;
  priority: 'urgent' | 'normal';
  finishedAt: number | null;
  instanceCount: number;
  /** Processing passes that sent the job's images to the inference workers (or wrote its report). */
  attempts: number;
  lastError: string | null;
  /** While processing waits (e.g. for disk space): when it is tried again. */
  nextAttemptAt: number | null;
  createdAt: number;
  updatedAt: number;
}

export interface ReadyStudy {
  jobId: number;
  studyInstanceUid: string;
  revision: number;
  instanceCount: number;
}

// Each entry moves the schema one version forward; `PRAGMA user_version` says how far a file is.
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE instances (
     sop_instance_uid    TEXT PRIMARY KEY,
     sop_class_uid       TEXT NOT NULL,
     study_instance_uid  TEXT NOT NULL,
     series_instance_uid TEXT,
     transfer_syntax_uid TEXT NOT NULL,
     path                TEXT NOT NULL,
     size_bytes          INTEGER NOT NULL,
     calling_ae          TEXT NOT NULL,
     called_ae           TEXT NOT NULL,
     source_ip           TEXT NOT NULL,
     association_id      TEXT NOT NULL,
     attributes          TEXT NOT NULL,
     received_at         INTEGER NOT NULL
   );
   CREATE INDEX instances_by_study ON instances (study_instance_uid);
   CREATE TABLE studies (
     study_instance_uid TEXT PRIMARY KEY,
     state              TEXT NOT NULL,
     revision           INTEGER NOT NULL DEFAULT 0,
     instance_count     INTEGER NOT NULL DEFAULT 0,
     first_received_at  INTEGER NOT NULL,
     last_received_at   INTEGER NOT NULL,
     calling_ae         TEXT NOT NULL
   );
   CREATE INDEX studies_by_state ON studies (state, last_received_at);
   CREATE TABLE jobs (
     id                 INTEGER PRIMARY KEY AUTOINCREMENT,
     study_instance_uid TEXT NOT NULL REFERENCES studies (study_instance_uid),
     revision           INTEGER NOT NULL,
     state              TEXT NOT NULL,
     instance_count     INTEGER NOT NULL,
     attempts           INTEGER NOT NULL DEFAULT 0,
     next_attempt_at    INTEGER,
     last_error         TEXT,
     created_at         INTEGER NOT NULL,
     updated_at         INTEGER NOT NULL,
     UNIQUE (study_instance_uid, revision)
   );
   CREATE INDEX jobs_by_state ON jobs (state, next_attempt_at);`,
  // The pipeline: what routing decided for a job, each image's outcome, each delivery's progress.
  `ALTER TABLE jobs ADD COLUMN priority TEXT NOT NULL DEFAULT 'normal';
   ALTER TABLE jobs ADD COLUMN rule TEXT;
   ALTER TABLE jobs ADD COLUMN action TEXT;
   ALTER TABLE jobs ADD COLUMN finished_at INTEGER;
   CREATE TABLE job_images (
     job_id           INTEGER NOT NULL REFERENCES jobs (id),
     sop_instance_uid TEXT NOT NULL,
     path             TEXT NOT NULL,
     state            TEXT NOT NULL,
     reason           TEXT,
     result           TEXT,
     updated_at       INTEGER NOT NULL,
     PRIMARY KEY (job_id, sop_instance_uid)
   );
   CREATE TABLE deliveries (
     id              INTEGER PRIMARY KEY AUTOINCREMENT,
     job_id          INTEGER NOT NULL REFERENCES jobs (id),
     kind            TEXT NOT NULL,
     destination     TEXT NOT NULL,
     payload         TEXT NOT NULL,
     state           TEXT NOT NULL,
     attempts        INTEGER NOT NULL DEFAULT 0,
     next_attempt_at INTEGER NOT NULL,
     last_error      TEXT,
     updated_at      INTEGER NOT NULL,
     UNIQUE (job_id, kind, destination)
   );
   CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);`,
  // How many times an inference worker died while holding each image: a poison image is failed after a few.
  // And jobs that earlier versions failed because their outputs hit a full disk (ENOSPC: now a wait, not a
  // failure) go back to processing, so that their results are written and delivered after all. Only failed
  // jobs (nothing of them was delivered) of studies retention has not purged (their inputs are still there).
  `ALTER TABLE job_images ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0;
   UPDATE jobs SET state = 'processing', finished_at = NULL, next_attempt_at = NULL,
       last_error = 'processed again after an upgrade: its outputs had failed for lack of disk space'
     WHERE state = 'failed' AND action IS NOT NULL
       AND study_instance_uid IN (SELECT study_instance_uid FROM studies WHERE state != 'purged')
       AND EXISTS (SELECT 1 FROM job_images i WHERE i.job_id = jobs.id AND i.state = 'failed' AND i.reason LIKE '%ENOSPC%');
   UPDATE job_images SET state = 'pending', reason = NULL
     WHERE state = 'failed' AND reason LIKE '%ENOSPC%' AND job_id IN (SELECT id FROM jobs WHERE state = 'processing');`,
  // The operations console: every delivery try and admin action on a delivery (its story), the audit trail of
  // admin actions (issue 17 adds DICOM/HL7/security categories to the same table), local users and their
  // sessions (tokens stored as SHA-256 only, so a copy of the file opens no session). attempts_at_release: the
  // attempts made before an admin's latest release, so that a released delivery gets a fresh retry budget while
  // `attempts` keeps counting every try.
  `CREATE TABLE delivery_attempts (
     delivery_id INTEGER NOT NULL REFERENCES deliveries (id),
     attempt     INTEGER NOT NULL,
     at          INTEGER NOT NULL,
     outcome     TEXT NOT NULL,
     detail      TEXT
   );
   CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts (delivery_id, at);
   CREATE TABLE audit_events (
     id       INTEGER PRIMARY KEY AUTOINCREMENT,
     at       INTEGER NOT NULL,
     category TEXT NOT NULL,
     action   TEXT NOT NULL,
     user     TEXT,
     role     TEXT,
     address  TEXT,
     target   TEXT,
     outcome  TEXT NOT NULL,
     before   TEXT,
     after    TEXT,
     detail   TEXT
   );
   CREATE INDEX audit_events_by_time ON audit_events (at);
   CREATE INDEX audit_events_by_category ON audit_events (category, at);
   CREATE TABLE users (
     name          TEXT PRIMARY KEY,
     password_hash TEXT NOT NULL,
     role          TEXT NOT NULL,
     created_at    INTEGER NOT NULL,
     updated_at    INTEGER NOT NULL,
     disabled      INTEGER NOT NULL DEFAULT 0
   );
   CREATE TABLE sessions (
     token_hash   TEXT PRIMARY KEY,
     user         TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
     role         TEXT NOT NULL,
     address      TEXT NOT NULL,
     created_at   INTEGER NOT NULL,
     last_seen_at INTEGER NOT NULL,
     expires_at   INTEGER NOT NULL
   );
   CREATE INDEX sessions_by_user ON sessions (user);
   ALTER TABLE deliveries ADD COLUMN attempts_at_release INTEGER NOT NULL DEFAULT 0;`,
  // v5 (issue 17): the audit forwarder's cursor. audit_events ids only grow and SQLite serialises writers, so
  // "every row with id > last_id, in id order" is exactly the rows not yet sent, in the order they were recorded.
  // One row per forwarding channel ('syslog'); it is created when the channel is first configured.
  `CREATE TABLE audit_forwarding (
     channel     TEXT PRIMARY KEY,
     last_id     INTEGER NOT NULL,
     started_at  INTEGER NOT NULL,
     updated_at  INTEGER NOT NULL
   );`,
];

interface StudyRow {
  study_instance_uid: string;
  state: StudyState;
  revision: number;
  instance_count: number;
  first_received_at: number;
  last_received_at: number;
  calling_ae: string;
}

interface JobRow {
  id: number;
  study_instance_uid: string;
  revision: number;
  state: JobState;
  rule: string | null;
  priority: 'urgent' | 'normal';
  finished_at: number | null;
  instance_count: number;
  attempts: number;
  last_error: string | null;
  next_attempt_at: number | null;
  created_at: number;
  updated_at: number;
}

/**
 * The durable record of everything received and every job, in one SQLite file (WAL, synchronous=FULL:
 * a committed row survives power loss, which is the promise behind every C-STORE Success we send).
 * Job state is data here, not memory: any process that opens the file sees and can resume it.
 */
export class JobStore {
  private constructor(private readonly db: Database.Database) {}

  static open(file: string): JobStore {
    mkdirSync(path.dirname(file), { recursive: true });
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    const store = new JobStore(db);
    store.migrate();
    return store;
  }

  /** For `cxr-gateway jobs` while the daemon runs: a reader that never writes or migrates. */
  static openReadOnly(file: string): JobStore {
    const db = new Database(file, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 5000');
    return new JobStore(db);
  }

  private migrate(): void {
    const current = Number(this.db.pragma('user_version', { simple: true }));
    for (let version = current; version < MIGRATIONS.length; version += 1) {
      const sql = MIGRATIONS[version];
      if (sql === undefined) break;
      this.db.transaction(() => {
        this.db.exec(sql);
        this.db.pragma(`user_version = ${version + 1}`);
      })();
    }
  }

  findInstance(sopInstanceUid: string): { studyInstanceUid: string; path: string } | undefined {
    const row = this.db
      .prepare('SELECT study_instance_uid, path FROM instances WHERE sop_instance_uid = ?')
      .get(sopInstanceUid) as { study_instance_uid: string; path: string } | undefined;
    return row && { studyInstanceUid: row.study_instance_uid, path: row.path };
  }

  /**
   * Records a received instance and brings its study back to `receiving`, in one transaction.
   * An instance that is already recorded changes nothing: a re-sent image never makes a second job.
   * An instance for a study that already has a job reopens the study under a new revision, so the
   * late image is assembled into a fresh job after the quiet period.
   */
  recordInstance(instance: ReceivedInstance): RecordOutcome {
    return this.db.transaction((): RecordOutcome => {
      const inserted = this.db
        .prepare(
          `INSERT OR IGNORE INTO instances (sop_instance_uid, sop_class_uid, study_instance_uid,
             series_instance_uid, transfer_syntax_uid, path, size_bytes, calling_ae, called_ae, source_ip,
             association_id, attributes, received_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          instance.sopInstanceUid,
          instance.sopClassUid,
          instance.studyInstanceUid,
          instance.seriesInstanceUid ?? null,
          instance.transferSyntaxUid,
          instance.path,
          instance.sizeBytes,
          instance.callingAe,
          instance.calledAe,
          instance.sourceIp,
          instance.associationId,
          JSON.stringify(instance.attributes),
          instance.receivedAt,
        );
      if (inserted.changes === 0) {
        const existing = this.findInstance(instance.sopInstanceUid);
        return {
          kind: 'duplicate',
          storedUnderStudy: existing?.studyInstanceUid ?? instance.studyInstanceUid,
          path: existing?.path ?? instance.path,
        };
      }
      const study = this.db
        .prepare('SELECT state FROM studies WHERE study_instance_uid = ?')
        .get(instance.studyInstanceUid) as { state: StudyState } | undefined;
      if (study === undefined) {
        this.db
          .prepare(
            `INSERT INTO studies (study_instance_uid, state, revision, instance_count, first_received_at,
               last_received_at, calling_ae) VALUES (?, 'receiving', 0, 1, ?, ?, ?)`,
          )
          .run(instance.studyInstanceUid, instance.receivedAt, instance.receivedAt, instance.callingAe);
        return { kind: 'stored', studyReopened: false };
      }
      const reopened = study.state !== 'receiving';
      this.db
        .prepare(
          `UPDATE studies SET instance_count = instance_count + 1, last_received_at = ?, state = 'receiving',
             revision = revision + ? WHERE study_instance_uid = ?`,
        )
        .run(instance.receivedAt, reopened ? 1 : 0, instance.studyInstanceUid);
      return { kind: 'stored', studyReopened: reopened };
    })();
  }

  /** Turns every study quiet since `quietSince` into a ready job, in one transaction. */
  promoteQuietStudies(quietSince: number, now: number): ReadyStudy[] {
    return this.db.transaction((): ReadyStudy[] => {
      const studies = this.db
        .prepare(
          `SELECT study_instance_uid, revision, instance_count FROM studies
           WHERE state = 'receiving' AND last_received_at <= ? ORDER BY last_received_at`,
        )
        .all(quietSince) as Array<Pick<StudyRow, 'study_instance_uid' | 'revision' | 'instance_count'>>;
      const ready: ReadyStudy[] = [];
      for (const study of studies) {
        const job = this.db
          .prepare(
            `INSERT INTO jobs (study_instance_uid, revision, state, instance_count, created_at, updated_at)
             VALUES (?, ?, 'ready', ?, ?, ?)`,
          )
          .run(study.study_instance_uid, study.revision, study.instance_count, now, now);
        this.db
          .prepare(`UPDATE studies SET state = 'ready' WHERE study_instance_uid = ?`)
          .run(study.study_instance_uid);
        ready.push({
          jobId: Number(job.lastInsertRowid),
          studyInstanceUid: study.study_instance_uid,
          revision: study.revision,
          instanceCount: study.instance_count,
        });
      }
      return ready;
    })();
  }

  countStudies(state: StudyState): number {
    const row = this.db.prepare('SELECT COUNT(*) AS n FROM studies WHERE state = ?').get(state) as { n: number };
    return row.n;
  }

  listStudies(): StudySummary[] {
    const rows = this.db
      .prepare('SELECT * FROM studies ORDER BY first_received_at, study_instance_uid')
      .all() as StudyRow[];
    return rows.map((r) => ({
      studyInstanceUid: r.study_instance_uid,
      state: r.state,
      revision: r.revision,
      instanceCount: r.instance_count,
      firstReceivedAt: r.first_received_at,
      lastReceivedAt: r.last_received_at,
      callingAe: r.calling_ae,
    }));
  }

  listJobs(): JobSummary[] {
    const rows = this.db.prepare('SELECT * FROM jobs ORDER BY id').all() as JobRow[];
    return rows.map((r) => ({
      id: r.id,
      studyInstanceUid: r.study_instance_uid,
      revision: r.revision,
      state: r.state,
      rule: r.rule,
      priority: r.priority,
      finishedAt: r.finished_at,
      instanceCount: r.instance_count,
      attempts: r.attempts,
      lastError: r.last_error,
      nextAttemptAt: r.next_attempt_at,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    }));
  }

  listInstances(studyInstanceUid: string): Array<{ sopInstanceUid: string; path: string; sizeBytes: number }> {
    const rows = this.db
      .prepare(
        'SELECT sop_instance_uid, path, size_bytes FROM instances WHERE study_instance_uid = ? ORDER BY received_at',
      )
      .all(studyInstanceUid) as Array<{ sop_instance_uid: string; path: string; size_bytes: number }>;
    return rows.map((r) => ({ sopInstanceUid: r.sop_instance_uid, path: r.path, sizeBytes: r.size_bytes }));
  }

  /** Every received instance's spool file, for the start-up sweep. */
  instanceLocations(): Array<{ sopInstanceUid: string; studyInstanceUid: string; path: string }> {
    const rows = this.db.prepare('SELECT sop_instance_uid, study_instance_uid, path FROM instances').all() as Array<{
      sop_instance_uid: string;
      study_instance_uid: string;
      path: string;
    }>;
    return rows.map((r) => ({
      sopInstanceUid: r.sop_instance_uid,
      studyInstanceUid: r.study_instance_uid,
      path: r.path,
    }));
  }

  jobCreatedAt(jobId: number): number | undefined {
    const row = this.db.prepare('SELECT created_at FROM jobs WHERE id = ?').get(jobId) as
      { created_at: number } | undefined;
    return row?.created_at;
  }

  /** The open database, for the pipeline's own store (same file, same transactions discipline). */
  get connection(): Database.Database {
    return this.db;
  }

  close(): void {
    this.db.close();
  }
}
