import { GatewayError } from '../errors.js';
import type { JobState } from './job-store.js';
import type { SqlDatabase, SqlValue } from './sql-database.js';

export type ImageState = 'pending' | 'written' | 'skipped' | 'failed';
export type DeliveryKind = 'pacs' | 'ris';
/**
 * pending: due at next_attempt_at; delivered; parked: gave up, an admin must release (back to pending) or discard
 * it; discarded: an admin decided it will never be sent (settled, like delivered, but the job says why).
 */
/** Every delivery state, for filters and their validation (CLI, API). */
export const DELIVERY_STATES = ['pending', 'delivered', 'parked', 'discarded'] as const;
export type DeliveryState = (typeof DELIVERY_STATES)[number];
/** One row of delivery_attempts: a try's outcome, or an admin's action on the delivery. */
export type AttemptOutcome = 'delivered' | 'retry' | 'parked' | 'released' | 'discarded';

export interface JobToRoute {
  jobId: number;
  studyInstanceUid: string;
  revision: number;
}

/** A job claimed by this node; `takenOverFrom`: the node whose lease on it had run out (it died or hung). */
export type ClaimedJob<J> = J & { takenOverFrom?: string };

export interface JobImage {
  jobId: number;
  sopInstanceUid: string;
  path: string;
  state: ImageState;
  reason: string | null;
  /** JSON written by the pipeline when the image was processed; read back through pipeline/stored-columns.ts. */
  result: string | null;
  /** Inference workers that died while holding this image. */
  crashes: number;
}

export interface ActiveJob {
  jobId: number;
  studyInstanceUid: string;
  revision: number;
  priority: 'urgent' | 'normal';
  rule: string;
  /** The routing action, as JSON; read back through pipeline/stored-columns.ts. */
  action: string;
  /** Set while the job waits (for disk space): not to be processed before then. */
  nextAttemptAt: number | null;
}

export interface Delivery {
  id: number;
  jobId: number;
  studyInstanceUid: string;
  revision: number;
  kind: DeliveryKind;
  destination: string;
  payload: string;
  state: DeliveryState;
  attempts: number;
  /** Attempts made before the latest release by an admin (0 if never released): the retry policy counts from there. */
  attemptsAtRelease: number;
  nextAttemptAt: number;
  lastError: string | null;
  /** The node working on it now (a lease it renews), or null. */
  leaseOwner: string | null;
}

export type DeliveryResult =
  { kind: 'delivered' } | { kind: 'retry'; reason: string; nextAttemptAt: number } | { kind: 'parked'; reason: string };

interface DeliveryRow {
  id: number;
  job_id: number;
  study_instance_uid: string;
  revision: number;
  kind: DeliveryKind;
  destination: string;
  payload: string;
  state: DeliveryState;
  attempts: number;
  attempts_at_release: number;
  next_attempt_at: number;
  last_error: string | null;
  lease_owner: string | null;
}

/** pg_advisory_xact_lock key of delivery claims ('cxrdlvr'): one claim at a time decides each destination's lane. */
export const DELIVERY_CLAIM_LOCK_KEY = 0x637872646c767200n;

/**
 * The pipeline's job states, in the same SQLite file as the received instances. Every transition is one
 * transaction, so a process killed at any line leaves each job in a state it can be resumed from.
 */
export class PipelineStore {
  /**
   * `holder`: the node this store works for. With one, work is taken only by claiming it (a lease in the row) and
   * every transition of a job or delivery first checks that this node still holds its lease (LEASE_LOST if another
   * node took it over). Without one (the CLI, the console), transitions are not checked and nothing is claimed.
   */
  constructor(
    private readonly db: SqlDatabase,
    private readonly holder?: string,
  ) {}

  /** The node this store works for. */
  get node(): string | undefined {
    return this.holder;
  }

  /** The same database, worked on by node `holder`. */
  as(holder: string): PipelineStore {
    return new PipelineStore(this.db, holder);
  }

  /**
   * Claims the oldest ready job that no node holds (or whose holder's lease ran out), for routing: one
   * transaction; on PostgreSQL the row is taken with FOR UPDATE SKIP LOCKED, so nodes claiming at once never take
   * the same job. `except`: jobs this node already had in this pass.
   */
  claimReadyJob(now: number, leaseMs: number, except: readonly number[] = []): ClaimedJob<JobToRoute> | undefined {
    const row = this.claim<{ id: number; study_instance_uid: string; revision: number; lease_owner: string | null }>(
      `SELECT j.id, j.study_instance_uid, j.revision, j.lease_owner FROM jobs j
       WHERE j.state = 'ready' AND (j.lease_owner IS NULL OR j.lease_expires_at <= ?) ${exceptIds('j.id', except)}
       ORDER BY j.id LIMIT 1`,
      [now, ...except],
      now + leaseMs,
    );
    return (
      row && {
        jobId: row.id,
        studyInstanceUid: row.study_instance_uid,
        revision: row.revision,
        ...takenOver(row.lease_owner),
      }
    );
  }

  /**
   * Claims the next job to process, urgent ones first: a processing job no node holds (or whose holder's lease ran
   * out) and whose study has no earlier revision still ready or processing (a revision must see what the one before
   * it sent, to supersede it).
   */
  claimActiveJob(now: number, leaseMs: number, except: readonly number[] = []): ClaimedJob<ActiveJob> | undefined {
    const row = this.claim<ActiveJobRow & { lease_owner: string | null }>(
      `SELECT j.id, j.study_instance_uid, j.revision, j.priority, j.rule, j.action, j.next_attempt_at, j.lease_owner
       FROM jobs j
       WHERE j.state = 'processing' AND (j.lease_owner IS NULL OR j.lease_expires_at <= ?) ${exceptIds('j.id', except)}
         AND NOT EXISTS (SELECT 1 FROM jobs e WHERE e.study_instance_uid = j.study_instance_uid
           AND e.revision < j.revision AND e.state IN ('ready', 'processing'))
       ORDER BY j.priority = 'urgent' DESC, j.id LIMIT 1`,
      [now, ...except],
      now + leaseMs,
    );
    return row && { ...toActiveJob(row), ...takenOver(row.lease_owner) };
  }

  /** Gives a job's lease back (the node stops working on it for now: another node, or this one later, takes it). */
  releaseJob(jobId: number): void {
    this.db
      .prepare('UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL WHERE id = ? AND lease_owner = ?')
      .run(jobId, this.claimer());
  }

  /**
   * Claims the next due delivery under the ordering rules of dueDeliveries, and one lane per destination across the
   * cluster: no delivery whose destination has another pending delivery under a live lease. On PostgreSQL one
   * advisory lock serialises delivery claims (two nodes could otherwise each lease a different delivery of one
   * destination at once), and the row is taken with FOR UPDATE SKIP LOCKED.
   */
  claimDelivery(now: number, leaseMs: number, except: readonly string[] = []): Delivery | undefined {
    const until = now + leaseMs;
    const holder = this.claimer();
    return this.db.transaction((): Delivery | undefined => {
      if (this.draining(holder)) return undefined;
      if (this.db.dialect === 'postgres')
        this.db.prepare('SELECT pg_advisory_xact_lock(?)').get(DELIVERY_CLAIM_LOCK_KEY);
      const lock = this.db.dialect === 'postgres' ? 'FOR UPDATE OF d SKIP LOCKED' : '';
      const row = this.db.prepare(`${claimableDeliveries(except)} LIMIT 1 ${lock}`).get(now, ...except, now, now) as
        DeliveryRow | undefined;
      if (row === undefined) return undefined;
      this.db
        .prepare('UPDATE deliveries SET lease_owner = ?, lease_expires_at = ? WHERE id = ?')
        .run(holder, until, row.id);
      return toDelivery({ ...row, lease_owner: holder });
    })();
  }

  /**
   * Whether a delivery could be claimed now (due, its turn, its lane free across the cluster): the delivery timer
   * goes again at once then, and otherwise looks again later (one held back, leased by another node, or this node
   * draining).
   */
  hasClaimableDelivery(now: number): boolean {
    // A draining node could claim none of them: it looks again later rather than at once, again and again.
    if (this.holder !== undefined && this.draining(this.holder)) return false;
    return this.db.prepare(`${claimableDeliveries([])} LIMIT 1`).get(now, now, now) !== undefined;
  }

  /** Gives a delivery's lease back without an outcome (e.g. the node stops before sending it). */
  releaseDelivery(id: number): void {
    this.db
      .prepare('UPDATE deliveries SET lease_owner = NULL, lease_expires_at = NULL WHERE id = ? AND lease_owner = ?')
      .run(id, this.claimer());
  }

  /** One claim of a job: the row chosen by `select` (one row at most), leased to this node, in one transaction. */
  private claim<R extends { id: number }>(select: string, params: SqlValue[], until: number): R | undefined {
    const holder = this.claimer();
    return this.db.transaction((): R | undefined => {
      if (this.draining(holder)) return undefined;
      const lock = this.db.dialect === 'postgres' ? ' FOR UPDATE OF j SKIP LOCKED' : '';
      const row = this.db.prepare(select + lock).get(...params) as R | undefined;
      if (row === undefined) return undefined;
      this.db.prepare('UPDATE jobs SET lease_owner = ?, lease_expires_at = ? WHERE id = ?').run(holder, until, row.id);
      return row;
    })();
  }

  /**
   * Whether `node` is draining (`cxr-gateway drain`): read inside the claim's transaction, one primary-key lookup,
   * so a drain takes effect at the next claim without the node having to be told. A node with no row (a store used
   * without registering) is not draining.
   */
  private draining(node: string): boolean {
    const row = this.db.prepare('SELECT draining FROM nodes WHERE name = ?').get(node) as
      { draining: number | boolean } | undefined;
    return row !== undefined && Number(row.draining) === 1;
  }

  private claimer(): string {
    if (this.holder === undefined)
      throw new GatewayError('LEASE_NO_HOLDER', 'work was claimed through a pipeline store without a node name');
    return this.holder;
  }

  /**
   * `fn` in one transaction that first checks this node still holds the lease on the row (`table` jobs or
   * deliveries); on PostgreSQL the row stays locked until the transaction ends, so no takeover lands in between.
   * A store without a holder runs `fn` unchecked.
   */
  private leased<R>(table: 'jobs' | 'deliveries', id: number, fn: () => R): R {
    if (this.holder === undefined) return this.db.transaction(fn)();
    const holder = this.holder;
    return this.db.transaction((): R => {
      const lock = this.db.dialect === 'postgres' ? ' FOR UPDATE' : '';
      const row = this.db.prepare(`SELECT lease_owner FROM ${table} WHERE id = ?${lock}`).get(id) as
        { lease_owner: string | null } | undefined;
      if (row !== undefined && row.lease_owner !== holder) {
        throw new GatewayError(
          'LEASE_LOST',
          `node '${holder}' no longer holds the lease on ${table === 'jobs' ? 'job' : 'delivery'} ${id}${row.lease_owner === null ? '' : ` (node '${row.lease_owner}' does)`}`,
        );
      }
      return fn();
    })();
  }

  /** Jobs assembled and not yet routed, urgent ones cannot be known yet: oldest first. */
  jobsToRoute(): JobToRoute[] {
    return (
      this.db
        .prepare(`SELECT id, study_instance_uid, revision FROM jobs WHERE state = 'ready' ORDER BY id`)
        .all() as Array<{
        id: number;
        study_instance_uid: string;
        revision: number;
      }>
    ).map((r) => ({ jobId: r.id, studyInstanceUid: r.study_instance_uid, revision: r.revision }));
  }

  /** The study's instances (every one received so far: a re-run covers the whole study). */
  studyInstances(studyInstanceUid: string): Array<{
    sopInstanceUid: string;
    path: string;
    attributes: string;
    callingAe: string;
    calledAe: string;
    sourceIp: string;
  }> {
    return (
      this.db
        .prepare(
          `SELECT sop_instance_uid, path, attributes, calling_ae, called_ae, source_ip FROM instances
           WHERE study_instance_uid = ? ORDER BY received_at, sop_instance_uid`,
        )
        .all(studyInstanceUid) as Array<{
        sop_instance_uid: string;
        path: string;
        attributes: string;
        calling_ae: string;
        called_ae: string;
        source_ip: string;
      }>
    ).map((r) => ({
      sopInstanceUid: r.sop_instance_uid,
      path: r.path,
      attributes: r.attributes,
      callingAe: r.calling_ae,
      calledAe: r.called_ae,
      sourceIp: r.source_ip,
    }));
  }

  /** ready -> processing with the routing decision and one pending row per image; or ready -> ignored. */
  routeJob(
    jobId: number,
    decision:
      | {
          rule: string;
          action: string;
          priority: 'urgent' | 'normal';
          images: Array<{ sopInstanceUid: string; path: string }>;
        }
      | { ignored: string },
    now: number,
  ): void {
    // Routing is a whole step: the job goes back unleased, and is claimed again to be processed.
    this.leased('jobs', jobId, () => {
      this.db.prepare('UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL WHERE id = ?').run(jobId);
      if ('ignored' in decision) {
        this.setJob(jobId, 'ignored', now, decision.ignored, true);
        return;
      }
      this.db
        .prepare(
          `UPDATE jobs SET state = 'processing', rule = ?, action = ?, priority = ?, updated_at = ? WHERE id = ? AND state = 'ready'`,
        )
        .run(decision.rule, decision.action, decision.priority, now, jobId);
      const insert = this.db.prepare(
        `INSERT INTO job_images (job_id, sop_instance_uid, path, state, updated_at) VALUES (?, ?, ?, 'pending', ?)
         ON CONFLICT (job_id, sop_instance_uid) DO NOTHING`,
      );
      for (const image of decision.images) insert.run(jobId, image.sopInstanceUid, image.path, now);
    });
  }

  /** Jobs being processed: at start-up these are resumed from their pending images. */
  activeJobs(): ActiveJob[] {
    return (
      this.db
        .prepare(
          `SELECT id, study_instance_uid, revision, priority, rule, action, next_attempt_at FROM jobs WHERE state = 'processing' ORDER BY priority = 'urgent' DESC, id`,
        )
        .all() as ActiveJobRow[]
    ).map(toActiveJob);
  }

  /** The jobs of a study's earlier revisions, the latest first (what a corrected revision may supersede). */
  earlierJobs(studyInstanceUid: string, revision: number): Array<{ jobId: number; revision: number }> {
    return (
      this.db
        .prepare('SELECT id, revision FROM jobs WHERE study_instance_uid = ? AND revision < ? ORDER BY revision DESC')
        .all(studyInstanceUid, revision) as Array<{ id: number; revision: number }>
    ).map((r) => ({ jobId: r.id, revision: r.revision }));
  }

  jobImages(jobId: number): JobImage[] {
    return (
      this.db.prepare('SELECT * FROM job_images WHERE job_id = ? ORDER BY sop_instance_uid').all(jobId) as Array<{
        job_id: number;
        sop_instance_uid: string;
        path: string;
        state: ImageState;
        reason: string | null;
        result: string | null;
        crashes: number;
      }>
    ).map((r) => ({
      jobId: r.job_id,
      sopInstanceUid: r.sop_instance_uid,
      path: r.path,
      state: r.state,
      reason: r.reason,
      result: r.result,
      crashes: r.crashes,
    }));
  }

  /** One more processing pass of the job (jobs.attempts). */
  beginAttempt(jobId: number, now: number): void {
    this.leased('jobs', jobId, () =>
      this.db.prepare('UPDATE jobs SET attempts = attempts + 1, updated_at = ? WHERE id = ?').run(now, jobId),
    );
  }

  /** An inference worker died holding these images: one more crash each; returns the new counts. */
  recordCrash(jobId: number, sopInstanceUids: readonly string[], now: number): Map<string, number> {
    return this.leased('jobs', jobId, () => {
      const counts = new Map<string, number>();
      const bump = this.db.prepare(
        'UPDATE job_images SET crashes = crashes + 1, updated_at = ? WHERE job_id = ? AND sop_instance_uid = ? RETURNING crashes',
      );
      for (const uid of sopInstanceUids) {
        const row = bump.get(now, jobId, uid) as { crashes: number } | undefined;
        if (row) counts.set(uid, row.crashes);
      }
      return counts;
    });
  }

  /** The job stays processing but waits until `at` (e.g. for disk space); `reason` is what `jobs` shows meanwhile. */
  deferJob(jobId: number, at: number, reason: string, now: number): void {
    // The lease goes back too: when the wait is over, any analysis node may take the job.
    this.leased('jobs', jobId, () =>
      this.db
        .prepare(
          `UPDATE jobs SET next_attempt_at = ?, last_error = ?, updated_at = ?, lease_owner = NULL, lease_expires_at = NULL
           WHERE id = ? AND state = 'processing'`,
        )
        .run(at, reason, now, jobId),
    );
  }

  recordImage(
    jobId: number,
    sopInstanceUid: string,
    outcome: { state: 'written'; result: string } | { state: 'skipped' | 'failed'; reason: string },
    now: number,
  ): void {
    this.leased('jobs', jobId, () =>
      this.db
        .prepare(
          `UPDATE job_images SET state = ?, reason = ?, result = ?, updated_at = ? WHERE job_id = ? AND sop_instance_uid = ?`,
        )
        .run(
          outcome.state,
          'reason' in outcome ? outcome.reason : null,
          'result' in outcome ? outcome.result : null,
          now,
          jobId,
          sopInstanceUid,
        ),
    );
  }

  /**
   * processing -> delivering with its deliveries, or -> ignored/failed when nothing was written. Deliveries
   * are inserted at most once per (job, kind, destination), so a resumed job does not queue them twice.
   */
  finishProcessing(
    jobId: number,
    outcome:
      | {
          deliveries: Array<{ kind: DeliveryKind; destination: string; payload: string }>;
          /** Why some images produced nothing (failed ones), kept as the job's last error once it is done. */
          imageProblems?: string | null;
        }
      | { state: 'ignored' | 'failed'; reason: string },
    now: number,
  ): void {
    this.leased('jobs', jobId, () => {
      this.db
        .prepare('UPDATE jobs SET next_attempt_at = NULL, lease_owner = NULL, lease_expires_at = NULL WHERE id = ?')
        .run(jobId);
      if ('state' in outcome) {
        this.setJob(jobId, outcome.state, now, outcome.reason, true);
        return;
      }
      // Set outright: a reason left from a wait (no disk space) no longer applies; failed images' reasons do.
      this.db.prepare('UPDATE jobs SET last_error = ? WHERE id = ?').run(outcome.imageProblems ?? null, jobId);
      const insert = this.db.prepare(
        `INSERT INTO deliveries (job_id, kind, destination, payload, state, next_attempt_at, updated_at)
         VALUES (?, ?, ?, ?, 'pending', ?, ?)
         ON CONFLICT (job_id, kind, destination) DO NOTHING`,
      );
      for (const d of outcome.deliveries) insert.run(jobId, d.kind, d.destination, d.payload, now, now);
      if (outcome.deliveries.length === 0) this.setJob(jobId, 'done', now, null, true);
      else this.setJob(jobId, 'delivering', now, null, false);
    });
  }

  /**
   * Deliveries due now, in an order that keeps a study's story straight: a RIS report only after the
   * PACS has the images it points to (or an admin discarded that PACS delivery and released the report), and a
   * revision only after the previous revision's delivery to the same destination is settled. Destinations in
   * `except` (those with a delivery in flight) are left out: one placeholder per destination, none when empty.
   */
  dueDeliveries(now: number, limit = 32, except: readonly string[] = []): Delivery[] {
    const excepted = except.length === 0 ? '' : `AND d.destination NOT IN (${except.map(() => '?').join(', ')})`;
    const rows = this.db
      .prepare(
        `SELECT d.*, j.study_instance_uid, j.revision FROM deliveries d JOIN jobs j ON j.id = d.job_id
         WHERE d.state = 'pending' AND d.next_attempt_at <= ?
           ${excepted}
           ${DELIVERY_ORDER_RULES}
         ORDER BY j.priority = 'urgent' DESC, d.job_id, d.kind = 'ris', d.id
         LIMIT ?`,
      )
      .all(now, ...except, limit) as DeliveryRow[];
    return rows.map(toDelivery);
  }

  /** When the next pending delivery falls due (for the delivery timer), or undefined when none is pending. */
  nextDeliveryAt(): number | undefined {
    const row = this.db.prepare(`SELECT MIN(next_attempt_at) AS t FROM deliveries WHERE state = 'pending'`).get() as {
      t: number | null;
    };
    return row.t ?? undefined;
  }

  /**
   * One delivery attempt's outcome, with its row in delivery_attempts (the story the console shows); settles the
   * job when its last delivery settles.
   */
  recordDelivery(id: number, result: DeliveryResult, now: number): void {
    this.leased('deliveries', id, () => {
      // The attempt is over whatever its outcome: the next one (a retry) may be any deliver node's.
      this.db.prepare('UPDATE deliveries SET lease_owner = NULL, lease_expires_at = NULL WHERE id = ?').run(id);
      const before = this.db.prepare('SELECT attempts FROM deliveries WHERE id = ?').get(id) as
        { attempts: number } | undefined;
      if (before === undefined) return;
      recordAttempt(
        this.db,
        id,
        before.attempts + 1,
        now,
        result.kind,
        result.kind === 'delivered' ? null : result.reason,
      );
      if (result.kind === 'delivered') {
        this.db
          .prepare(
            `UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, last_error = NULL, updated_at = ? WHERE id = ?`,
          )
          .run(now, id);
      } else if (result.kind === 'retry') {
        this.db
          .prepare(
            `UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?, updated_at = ? WHERE id = ?`,
          )
          .run(result.nextAttemptAt, result.reason, now, id);
      } else {
        this.db
          .prepare(
            `UPDATE deliveries SET state = 'parked', attempts = attempts + 1, last_error = ?, updated_at = ? WHERE id = ?`,
          )
          .run(result.reason, now, id);
        // A report must not point at images the PACS never got: its RIS deliveries park with it.
        const held = this.db
          .prepare(
            `UPDATE deliveries SET state = 'parked', last_error = ?, updated_at = ?
             WHERE job_id = (SELECT job_id FROM deliveries WHERE id = ? AND kind = 'pacs') AND kind = 'ris' AND state = 'pending'
             RETURNING id, attempts`,
          )
          .all(HELD_BACK, now, id) as Array<{ id: number; attempts: number }>;
        for (const h of held) recordAttempt(this.db, h.id, h.attempts, now, 'parked', HELD_BACK);
      }
      const job = this.db.prepare('SELECT job_id FROM deliveries WHERE id = ?').get(id) as { job_id: number };
      settleJob(this.db, job.job_id, now);
    });
  }

  deliveries(jobId?: number): Delivery[] {
    const rows = this.db
      .prepare(
        `SELECT d.*, j.study_instance_uid, j.revision FROM deliveries d JOIN jobs j ON j.id = d.job_id
         ${jobId === undefined ? '' : 'WHERE d.job_id = ?'} ORDER BY d.id`,
      )
      .all(...(jobId === undefined ? [] : [jobId])) as DeliveryRow[];
    return rows.map(toDelivery);
  }

  private setJob(jobId: number, state: JobState, now: number, reason: string | null, finished: boolean): void {
    this.db
      .prepare(
        `UPDATE jobs SET state = ?, last_error = COALESCE(?, last_error), updated_at = ?, finished_at = ? WHERE id = ?`,
      )
      .run(state, reason, now, finished ? now : null, jobId);
  }
}

/**
 * The ordering rules of due deliveries (dueDeliveries, claimDelivery; `d` the delivery, `j` its job): a RIS report
 * only after the PACS has the images it points to (or an admin discarded that PACS delivery and released the
 * report), and a revision only after the previous revision's delivery to the same destination is settled.
 */
const DELIVERY_ORDER_RULES = `
  AND (d.kind = 'pacs' OR NOT EXISTS (
    SELECT 1 FROM deliveries p WHERE p.job_id = d.job_id AND p.kind = 'pacs' AND p.state IN ('pending', 'parked')))
  AND NOT EXISTS (
    SELECT 1 FROM deliveries e JOIN jobs k ON k.id = e.job_id
    WHERE k.study_instance_uid = j.study_instance_uid AND k.revision < j.revision
      AND e.kind = d.kind AND e.destination = d.destination AND e.state = 'pending')`;

/**
 * The deliveries a node may claim, best first: due, under the ordering rules, not leased (or their lease ran out),
 * and of a destination with no other pending delivery under a live lease. Parameters: now, `except`, now, now.
 */
function claimableDeliveries(except: readonly string[]): string {
  const excepted = except.length === 0 ? '' : `AND d.destination NOT IN (${except.map(() => '?').join(', ')})`;
  return `SELECT d.*, j.study_instance_uid, j.revision FROM deliveries d JOIN jobs j ON j.id = d.job_id
    WHERE d.state = 'pending' AND d.next_attempt_at <= ? ${excepted}
      AND (d.lease_owner IS NULL OR d.lease_expires_at <= ?)
      AND NOT EXISTS (
        SELECT 1 FROM deliveries o WHERE o.destination = d.destination AND o.id <> d.id AND o.state = 'pending'
          AND o.lease_owner IS NOT NULL AND o.lease_expires_at > ?)
      ${DELIVERY_ORDER_RULES}
    ORDER BY j.priority = 'urgent' DESC, d.job_id, d.kind = 'ris', d.id`;
}

/**
 * A claimed row that still names a holder had a lease that ran out (a lease given back is NULL): that node died
 * or hung, and the takeover is worth a log line of its own.
 */
function takenOver(previousOwner: string | null): { takenOverFrom?: string } {
  return previousOwner === null ? {} : { takenOverFrom: previousOwner };
}

interface ActiveJobRow {
  id: number;
  study_instance_uid: string;
  revision: number;
  priority: 'urgent' | 'normal';
  rule: string;
  action: string;
  next_attempt_at: number | null;
}

function toActiveJob(r: ActiveJobRow): ActiveJob {
  return {
    jobId: r.id,
    studyInstanceUid: r.study_instance_uid,
    revision: r.revision,
    priority: r.priority,
    rule: r.rule,
    action: r.action,
    nextAttemptAt: r.next_attempt_at,
  };
}

/** `AND column NOT IN (?, ...)` for a non-empty list, else nothing. */
function exceptIds(column: string, ids: readonly number[]): string {
  return ids.length === 0 ? '' : `AND ${column} NOT IN (${ids.map(() => '?').join(', ')})`;
}

/** The reason a parked job carries (cleared when an admin releases its deliveries). */
export const PARKED_JOB = 'a delivery was parked: see cxr-gateway deliveries --state parked';

/** The reason a RIS delivery carries while the PACS delivery of its job is parked (release that one first). */
export const HELD_BACK = 'held back: the PACS delivery of this job was parked';

/** One row of a delivery's story (delivery_attempts); `attempt` is the delivery's attempts count after it. */
export function recordAttempt(
  db: SqlDatabase,
  deliveryId: number,
  attempt: number,
  at: number,
  outcome: AttemptOutcome,
  detail: string | null,
): void {
  db.prepare('INSERT INTO delivery_attempts (delivery_id, attempt, at, outcome, detail) VALUES (?, ?, ?, ?, ?)').run(
    deliveryId,
    attempt,
    at,
    outcome,
    detail,
  );
}

/**
 * Settles a delivering or parked job from its deliveries (inside the caller's transaction): nothing to do while any
 * is pending; parked while any is parked; else done (delivered and discarded both count as settled; the job's
 * last_error keeps what was discarded and why, written by the discard itself).
 */
export function settleJob(db: SqlDatabase, jobId: number, now: number): void {
  const counts = db
    .prepare(
      `SELECT SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END) AS pending,
         SUM(CASE WHEN state = 'parked' THEN 1 ELSE 0 END) AS parked
       FROM deliveries WHERE job_id = ?`,
    )
    .get(jobId) as { pending: number | null; parked: number | null };
  if ((counts.pending ?? 0) > 0) return;
  const [state, reason] = (counts.parked ?? 0) > 0 ? (['parked', PARKED_JOB] as const) : (['done', null] as const);
  db.prepare(
    `UPDATE jobs SET state = ?, last_error = COALESCE(?, last_error), updated_at = ?, finished_at = ? WHERE id = ?`,
  ).run(state, reason, now, now, jobId);
}

function toDelivery(r: DeliveryRow): Delivery {
  return {
    id: r.id,
    jobId: r.job_id,
    studyInstanceUid: r.study_instance_uid,
    revision: r.revision,
    kind: r.kind,
    destination: r.destination,
    payload: r.payload,
    state: r.state,
    attempts: r.attempts,
    attemptsAtRelease: r.attempts_at_release,
    nextAttemptAt: r.next_attempt_at,
    lastError: r.last_error,
    leaseOwner: r.lease_owner ?? null,
  };
}
