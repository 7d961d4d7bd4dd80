import type { KeyAttributes } from '../dicom/dataset-walker.js';
import { migrateSqlite } from './migrations/sqlite.js';
import type { SqlDatabase } from './sql-database.js';
import { SqliteDatabase } from './sqlite-database.js';

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
  /** The node working on the job now (a lease it renews), or null. */
  leaseOwner: string | null;
}

export interface ReadyStudy {
  jobId: number;
  studyInstanceUid: string;
  revision: number;
  instanceCount: number;
}

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
  lease_owner: string | null;
}

/**
 * The durable record of everything received and every job, in the job store: one SQLite file by default (see
 * sqlite-database.ts for why a committed row survives power loss, the promise behind every C-STORE Success we send),
 * or a PostgreSQL database shared by several nodes, both behind the SqlDatabase seam.
 * Job state is data here, not memory: any process that opens the store sees and can resume it.
 */
export class JobStore {
  private constructor(private readonly db: SqlDatabase) {}

  /** The SQLite file, created or migrated to the newest schema. */
  static open(file: string): JobStore {
    const db = SqliteDatabase.open(file);
    try {
      migrateSqlite(db);
    } catch (error) {
      db.close();
      throw error;
    }
    return new JobStore(db);
  }

  /** For `cxr-gateway jobs` while the daemon runs: a reader that never writes or migrates. */
  static openReadOnly(file: string): JobStore {
    return new JobStore(SqliteDatabase.openReadOnly(file));
  }

  /**
   * A store over a database its opener has already brought to the newest schema. Migrating is the opener's part,
   * not this one's: only the opener knows the engine and how its schema is versioned (a SQLite file's user_version,
   * migrateSqlite; PostgreSQL's schema_migrations under an advisory lock, which several nodes starting together
   * must share), so a store handed a PostgreSQL connection can never run SQLite's migrations on it.
   */
  static fromDatabase(db: SqlDatabase): JobStore {
    return new JobStore(db);
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
          `INSERT INTO instances (sop_instance_uid, sop_class_uid, study_instance_uid,
             series_instance_uid, transfer_syntax_uid, path, size_bytes, calling_ae, called_ae, source_ip,
             association_id, attributes, received_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (sop_instance_uid) DO NOTHING`,
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

  /**
   * Turns every study quiet since `quietSince` into a ready job, in one transaction. Safe when several receive nodes
   * run it at once on PostgreSQL: the studies are taken FOR UPDATE SKIP LOCKED (one node promotes a study, the
   * others pass over it; once it commits the study is no longer 'receiving'), and the job's insert gives way to
   * one already there (UNIQUE study and revision), so a study revision is promoted once.
   */
  promoteQuietStudies(quietSince: number, now: number): ReadyStudy[] {
    return this.db.transaction((): ReadyStudy[] => {
      const lock = this.db.dialect === 'postgres' ? ' FOR UPDATE SKIP LOCKED' : '';
      const studies = this.db
        .prepare(
          `SELECT study_instance_uid, revision, instance_count FROM studies
           WHERE state = 'receiving' AND last_received_at <= ? ORDER BY last_received_at${lock}`,
        )
        .all(quietSince) as Array<Pick<StudyRow, 'study_instance_uid' | 'revision' | 'instance_count'>>;
      const ready: ReadyStudy[] = [];
      for (const study of studies) {
        const job = this.db
          .prepare(
            `INSERT INTO jobs (study_instance_uid, revision, state, instance_count, created_at, updated_at)
             VALUES (?, ?, 'ready', ?, ?, ?) ON CONFLICT (study_instance_uid, revision) DO NOTHING RETURNING id`,
          )
          .get(study.study_instance_uid, study.revision, study.instance_count, now, now) as { id: number } | undefined;
        this.db
          .prepare(`UPDATE studies SET state = 'ready' WHERE study_instance_uid = ?`)
          .run(study.study_instance_uid);
        // That revision's job was made already (by another node): the study is ready, and no second job.
        if (job === undefined) continue;
        ready.push({
          jobId: job.id,
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
      leaseOwner: r.lease_owner ?? null,
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

  /** The open database, for the pipeline's own store (same database, same transactions discipline). */
  get connection(): SqlDatabase {
    return this.db;
  }

  /**
   * A number that moves when another process (the CLI) commits to the store, for the daemon's store watch; undefined
   * where the engine has no such counter (PostgreSQL: its nodes learn of changes another way).
   */
  dataVersion(): number | undefined {
    return this.db instanceof SqliteDatabase ? this.db.dataVersion() : undefined;
  }

  close(): void {
    this.db.close();
  }
}
