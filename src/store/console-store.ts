import type { AuditTrail } from './audit-trail.js';
import {
  StoreRefusal,
  type AttemptRowOut,
  type ConsoleQueries,
  type DeliveryRowOut,
  type InstanceRowOut,
  type JobImageRowOut,
  type JobRowOut,
  type StoreActor,
  type StoreDeliveryFilter,
  type StoreJobFilter,
  type StorePage,
  type StoreStudyFilter,
  type StudyRowOut,
  type StudyRowsOut,
} from './console-queries.js';
import type { JobState, StudyState } from './job-store.js';
import type { SqlDatabase } from './sql-database.js';
import {
  DELIVERY_STATES,
  HELD_BACK,
  PARKED_JOB,
  recordAttempt,
  settleJob,
  type DeliveryKind,
  type DeliveryState,
  type ImageState,
} from './pipeline-store.js';

const REASON_MAX = 500;

type SqlArg = string | number;

/** A WHERE clause built from optional filters, with its arguments in order. */
class Where {
  private readonly parts: string[] = [];
  readonly args: SqlArg[] = [];

  add(sql: string, ...args: Array<SqlArg | undefined>): void {
    if (args.some((a) => a === undefined)) return;
    this.parts.push(sql);
    this.args.push(...(args as SqlArg[]));
  }

  toString(): string {
    return this.parts.length === 0 ? '' : `WHERE ${this.parts.join(' AND ')}`;
  }
}

// The first instance's key attributes stand for the study (accession, modality, date are per study in DICOM).
const FIRST_ATTRIBUTES = `(SELECT i.attributes FROM instances i WHERE i.study_instance_uid = s.study_instance_uid
  ORDER BY i.received_at, i.sop_instance_uid LIMIT 1)`;
// The accession filter reads the attributes JSON as text, with SQL both engines run (no json_extract, no ->>): the
// column is always JSON.stringify's compact output, where a key and its value appear as `"key":"value"`, and where
// that text cannot appear inside a string value (a quote in a value is written \"). replace() is case-sensitive on
// both engines, as the equality it stands for is; LIKE is not (SQLite's ignores ASCII case) and would also need
// its % and _ escaped.
const HAS_ACCESSION = `EXISTS (SELECT 1 FROM instances i WHERE i.study_instance_uid = s.study_instance_uid
  AND replace(i.attributes, ?, '') != i.attributes)`;

/** The text HAS_ACCESSION looks for in the attributes JSON. */
function accessionNeedle(accession: string | undefined): string | undefined {
  return accession === undefined ? undefined : `"accessionNumber":${JSON.stringify(accession)}`;
}

interface StudySqlRow {
  study_instance_uid: string;
  state: StudyState;
  revision: number;
  instance_count: number;
  first_received_at: number;
  last_received_at: number;
  calling_ae: string;
  first_attributes: string | null;
}

interface JobSqlRow {
  id: number;
  study_instance_uid: string;
  revision: number;
  state: JobState;
  rule: string | null;
  action: string | null;
  priority: 'urgent' | 'normal';
  instance_count: number;
  attempts: number;
  last_error: string | null;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
  calling_ae: string;
  first_attributes: string | null;
}

interface DeliverySqlRow {
  id: number;
  job_id: number;
  study_instance_uid: string;
  revision: number;
  kind: DeliveryKind;
  destination: string;
  state: DeliveryState;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  updated_at: number;
  payload: string;
  first_attributes: string | null;
}

const DELIVERY_SELECT = `SELECT d.id, d.job_id, j.study_instance_uid, j.revision, d.kind, d.destination, d.state,
  d.attempts, d.next_attempt_at, d.last_error, d.updated_at, d.payload,
  (SELECT i.attributes FROM instances i WHERE i.study_instance_uid = j.study_instance_uid
    ORDER BY i.received_at, i.sop_instance_uid LIMIT 1) AS first_attributes
  FROM deliveries d JOIN jobs j ON j.id = d.job_id`;

const JOB_SELECT = `SELECT j.id, j.study_instance_uid, j.revision, j.state, j.rule, j.action, j.priority,
  j.instance_count, j.attempts, j.last_error, j.created_at, j.updated_at, j.finished_at, s.calling_ae,
  ${FIRST_ATTRIBUTES} AS first_attributes
  FROM jobs j JOIN studies s ON s.study_instance_uid = j.study_instance_uid`;

/** Key attributes read from the stored JSON; anything not a string reads as null (the column is ours, but old). */
function attribute(json: string | null, key: 'accessionNumber' | 'modality' | 'studyDate'): string | null {
  if (json === null) return null;
  try {
    const parsed: unknown = JSON.parse(json);
    if (typeof parsed !== 'object' || parsed === null) return null;
    const value = (parsed as Record<string, unknown>)[key];
    return typeof value === 'string' && value !== '' ? value : null;
  } catch {
    return null;
  }
}

function toDeliveryRow(r: DeliverySqlRow): DeliveryRowOut {
  return {
    id: r.id,
    jobId: r.job_id,
    studyInstanceUid: r.study_instance_uid,
    revision: r.revision,
    kind: r.kind,
    destination: r.destination,
    state: r.state,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    lastError: r.last_error,
    updatedAt: r.updated_at,
    payload: r.payload,
    accessionNumber: attribute(r.first_attributes, 'accessionNumber'),
  };
}

function deliverySummary(d: DeliveryRowOut): { state: DeliveryState; attempts: number; lastError: string | null } {
  return { state: d.state, attempts: d.attempts, lastError: d.lastError };
}

/**
 * The job store side of the operations console (ConsoleQueries): filtered, paged reads in SQL, and the admin
 * actions on parked deliveries and studies, each in one transaction with its audit entry. A refusal (StoreRefusal)
 * is thrown before anything is written, so a refused action changes nothing.
 */
export class ConsoleStore implements ConsoleQueries {
  constructor(
    private readonly db: SqlDatabase,
    private readonly audit: AuditTrail,
  ) {}

  studies(filter: StoreStudyFilter): StorePage<StudyRowOut> {
    const where = new Where();
    where.add('s.state = ?', filter.state);
    where.add('s.calling_ae = ?', filter.ae);
    where.add(HAS_ACCESSION, accessionNeedle(filter.accession));
    where.add('s.last_received_at >= ?', filter.since);
    where.add('s.last_received_at < ?', filter.until);
    const total = this.count(`SELECT COUNT(*) AS n FROM studies s ${where}`, where.args);
    const rows = this.db
      .prepare(
        `SELECT s.*, ${FIRST_ATTRIBUTES} AS first_attributes FROM studies s ${where}
         ORDER BY s.last_received_at DESC, s.study_instance_uid LIMIT ? OFFSET ?`,
      )
      .all(...where.args, filter.limit, filter.offset) as StudySqlRow[];
    return { items: rows.map((r) => this.toStudyRow(r)), total, offset: filter.offset, limit: filter.limit };
  }

  studyRows(studyInstanceUid: string): StudyRowsOut | undefined {
    const row = this.db
      .prepare(`SELECT s.*, ${FIRST_ATTRIBUTES} AS first_attributes FROM studies s WHERE s.study_instance_uid = ?`)
      .get(studyInstanceUid) as StudySqlRow | undefined;
    if (row === undefined) return undefined;
    const { latestJob: _latest, ...study } = this.toStudyRow(row);
    const jobs = (
      this.db
        .prepare(`${JOB_SELECT} WHERE j.study_instance_uid = ? ORDER BY j.revision DESC, j.id DESC`)
        .all(studyInstanceUid) as JobSqlRow[]
    ).map((j) => this.toJobRow(j));
    return {
      study,
      instances: this.instances(studyInstanceUid),
      jobs: jobs.map((job) => ({
        ...job,
        images: this.jobImages(job.id),
        deliveries: this.jobDeliveries(job.id).map((d) => ({ ...d, history: this.history(d.id) })),
      })),
    };
  }

  jobs(filter: StoreJobFilter): StorePage<JobRowOut> {
    const where = new Where();
    where.add('j.state = ?', filter.state);
    where.add('EXISTS (SELECT 1 FROM deliveries d WHERE d.job_id = j.id AND d.destination = ?)', filter.destination);
    where.add('s.calling_ae = ?', filter.ae);
    where.add(HAS_ACCESSION, accessionNeedle(filter.accession));
    where.add('j.study_instance_uid = ?', filter.studyInstanceUid);
    where.add('j.created_at >= ?', filter.since);
    where.add('j.created_at < ?', filter.until);
    const total = this.count(
      `SELECT COUNT(*) AS n FROM jobs j JOIN studies s ON s.study_instance_uid = j.study_instance_uid ${where}`,
      where.args,
    );
    const rows = this.db
      .prepare(`${JOB_SELECT} ${where} ORDER BY j.id DESC LIMIT ? OFFSET ?`)
      .all(...where.args, filter.limit, filter.offset) as JobSqlRow[];
    return { items: rows.map((r) => this.toJobRow(r)), total, offset: filter.offset, limit: filter.limit };
  }

  deliveries(filter: StoreDeliveryFilter): StorePage<DeliveryRowOut> {
    const where = new Where();
    where.add('d.state = ?', filter.state);
    where.add('d.destination = ?', filter.destination);
    where.add('d.kind = ?', filter.kind);
    where.add('j.study_instance_uid = ?', filter.studyInstanceUid);
    where.add('d.updated_at >= ?', filter.since);
    where.add('d.updated_at < ?', filter.until);
    const total = this.count(
      `SELECT COUNT(*) AS n FROM deliveries d JOIN jobs j ON j.id = d.job_id ${where}`,
      where.args,
    );
    const rows = this.db
      .prepare(`${DELIVERY_SELECT} ${where} ORDER BY d.id DESC LIMIT ? OFFSET ?`)
      .all(...where.args, filter.limit, filter.offset) as DeliverySqlRow[];
    return { items: rows.map(toDeliveryRow), total, offset: filter.offset, limit: filter.limit };
  }

  studyOfJob(jobId: number): string | undefined {
    const row = this.db.prepare('SELECT study_instance_uid FROM jobs WHERE id = ?').get(jobId) as
      { study_instance_uid: string } | undefined;
    return row?.study_instance_uid;
  }

  delivery(id: number): DeliveryRowOut | undefined {
    const row = this.db.prepare(`${DELIVERY_SELECT} WHERE d.id = ?`).get(id) as DeliverySqlRow | undefined;
    return row && toDeliveryRow(row);
  }

  recentStudies(last: number): Array<{ study: StudyRowOut; instances: InstanceRowOut[] }> {
    const rows = this.db
      .prepare(
        `SELECT s.*, ${FIRST_ATTRIBUTES} AS first_attributes FROM studies s WHERE s.state != 'purged'
         ORDER BY s.last_received_at DESC, s.study_instance_uid LIMIT ?`,
      )
      .all(last) as StudySqlRow[];
    return rows.map((r) => ({ study: this.toStudyRow(r), instances: this.instances(r.study_instance_uid) }));
  }

  throughput(since: number): { studiesReceived: number; instancesReceived: number; jobsFinished: number } {
    return {
      studiesReceived: this.count('SELECT COUNT(*) AS n FROM studies WHERE first_received_at >= ?', [since]),
      instancesReceived: this.count('SELECT COUNT(*) AS n FROM instances WHERE received_at >= ?', [since]),
      jobsFinished: this.count(
        `SELECT COUNT(*) AS n FROM jobs WHERE state IN ('done', 'ignored', 'failed') AND finished_at >= ?`,
        [since],
      ),
    };
  }

  destinationActivity(): Array<{
    destination: string;
    kind: DeliveryKind;
    lastSuccessAt: number | null;
    lastFailureAt: number | null;
    lastFailure: string | null;
    pending: number;
    parked: number;
  }> {
    const groups = this.db
      .prepare(
        `SELECT destination, kind, SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END) AS pending,
           SUM(CASE WHEN state = 'parked' THEN 1 ELSE 0 END) AS parked
         FROM deliveries GROUP BY kind, destination ORDER BY kind, destination`,
      )
      .all() as Array<{ destination: string; kind: DeliveryKind; pending: number; parked: number }>;
    const lastSuccess = this.db.prepare(
      `SELECT MAX(a.at) AS at FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
       WHERE d.destination = ? AND d.kind = ? AND a.outcome = 'delivered'`,
    );
    // A report held back by its PACS delivery is not a failure of the RIS: left out. Rows of one millisecond are
    // ordered by delivery and attempt (delivery_attempts has no id, and rowid is SQLite's alone).
    const lastFailure = this.db.prepare(
      `SELECT a.at, a.detail FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
       WHERE d.destination = ? AND d.kind = ? AND a.outcome IN ('retry', 'parked') AND COALESCE(a.detail, '') != ?
       ORDER BY a.at DESC, a.delivery_id DESC, a.attempt DESC LIMIT 1`,
    );
    return groups.map((g) => {
      const success = lastSuccess.get(g.destination, g.kind) as { at: number | null };
      const failure = lastFailure.get(g.destination, g.kind, HELD_BACK) as
        { at: number; detail: string | null } | undefined;
      return {
        destination: g.destination,
        kind: g.kind,
        lastSuccessAt: success.at,
        lastFailureAt: failure?.at ?? null,
        lastFailure: failure?.detail ?? null,
        pending: g.pending,
        parked: g.parked,
      };
    });
  }

  releaseDelivery(id: number, actor: StoreActor, now: number): DeliveryRowOut[] {
    return this.db.transaction(() => {
      const target = this.parked(id);
      if (target.kind === 'ris') {
        const pacs = this.heldBy(target);
        if (pacs !== undefined)
          throw new StoreRefusal(
            409,
            'DELIVERY_HELD_BACK',
            `delivery ${id} (RIS report to '${target.destination}') waits for the PACS delivery ${pacs} of the same job, which is parked: release delivery ${pacs} (its reports are released with it) or discard it first`,
          );
      }
      const released = this.release(target, actor, now);
      this.audit.record(
        {
          category: 'admin',
          action: 'delivery.release',
          user: actor.user,
          role: actor.role,
          address: actor.address,
          target: `delivery ${id}`,
          outcome: 'success',
          before: deliverySummary(target),
          after: { state: 'pending', released: released.map((d) => d.id) },
          detail: `${target.kind} delivery to '${target.destination}' of study ${target.studyInstanceUid} revision ${target.revision}`,
        },
        now,
      );
      return released;
    })();
  }

  releaseDestination(destination: string, actor: StoreActor, now: number): DeliveryRowOut[] {
    return this.db.transaction(() => {
      const parked = (
        this.db
          .prepare(`${DELIVERY_SELECT} WHERE d.destination = ? AND d.state = 'parked' ORDER BY d.id`)
          .all(destination) as DeliverySqlRow[]
      ).map(toDeliveryRow);
      const released: DeliveryRowOut[] = [];
      for (const d of parked) {
        // Already released with its PACS delivery earlier in this loop, or still held back by a parked PACS
        // delivery of another destination (it goes when that one is released: pending now, it would only wait).
        if (released.some((r) => r.id === d.id)) continue;
        if (d.kind === 'ris' && this.heldBy(d) !== undefined) continue;
        released.push(...this.release(d, actor, now));
      }
      if (released.length === 0) return [];
      this.audit.record(
        {
          category: 'admin',
          action: 'delivery.release-destination',
          user: actor.user,
          role: actor.role,
          address: actor.address,
          target: `destination ${destination}`,
          outcome: 'success',
          before: { parked: parked.map((d) => d.id) },
          after: { released: released.map((d) => d.id) },
          detail: `${released.length} delivery(ies) released`,
        },
        now,
      );
      return released;
    })();
  }

  discardDelivery(id: number, reason: string, actor: StoreActor, now: number): DeliveryRowOut {
    const why = reason.trim();
    if (why.length === 0 || why.length > REASON_MAX)
      throw new StoreRefusal(
        400,
        'REASON_REQUIRED',
        `a discard needs a reason of 1 to ${REASON_MAX} characters (given: ${why.length}): say why this result will never be sent`,
      );
    return this.db.transaction(() => {
      const target = this.parked(id);
      const note = `discarded by ${actor.user}: ${why}`;
      this.db
        .prepare(`UPDATE deliveries SET state = 'discarded', last_error = ?, updated_at = ? WHERE id = ?`)
        .run(note, now, id);
      recordAttempt(this.db, id, target.attempts, now, 'discarded', note);
      settleJob(this.db, target.jobId, now);
      const job = this.db.prepare('SELECT state FROM jobs WHERE id = ?').get(target.jobId) as { state: JobState };
      // The job says what was not sent and why (kept when it settles done); while another delivery of it is
      // parked, it says that instead, which is what an admin must act on.
      if (job.state !== 'parked')
        this.db
          .prepare('UPDATE jobs SET last_error = ? WHERE id = ?')
          .run(`delivery ${id} (${target.kind} to '${target.destination}') ${note}`, target.jobId);
      const after = this.mustDelivery(id);
      this.audit.record(
        {
          category: 'admin',
          action: 'delivery.discard',
          user: actor.user,
          role: actor.role,
          address: actor.address,
          target: `delivery ${id}`,
          outcome: 'success',
          before: deliverySummary(target),
          after: { ...deliverySummary(after), job: job.state },
          detail: why,
        },
        now,
      );
      return after;
    })();
  }

  reprocessStudy(studyInstanceUid: string, actor: StoreActor, now: number): { jobId: number; revision: number } {
    return this.db.transaction(() => {
      const study = this.db
        .prepare('SELECT state, revision, instance_count FROM studies WHERE study_instance_uid = ?')
        .get(studyInstanceUid) as { state: StudyState; revision: number; instance_count: number } | undefined;
      if (study === undefined)
        throw new StoreRefusal(404, 'STUDY_NOT_FOUND', `no study ${studyInstanceUid} in the job store`);
      if (study.state === 'purged')
        throw new StoreRefusal(
          409,
          'STUDY_PURGED',
          `study ${studyInstanceUid} was purged by retention: its images are gone; have the modality or PACS send it again`,
        );
      const busy = this.db
        .prepare(
          `SELECT id, state FROM jobs WHERE study_instance_uid = ? AND state IN ('ready', 'processing', 'delivering') ORDER BY id LIMIT 1`,
        )
        .get(studyInstanceUid) as { id: number; state: JobState } | undefined;
      if (study.state === 'receiving' || busy !== undefined)
        throw new StoreRefusal(
          409,
          'STUDY_BUSY',
          study.state === 'receiving'
            ? `study ${studyInstanceUid} is still receiving images: it is processed when it has been quiet; reprocess it after that`
            : `study ${studyInstanceUid} has job ${busy?.id} still ${busy?.state}: reprocess it when that job has finished`,
        );
      const newest = this.db
        .prepare('SELECT MAX(revision) AS r FROM jobs WHERE study_instance_uid = ?')
        .get(studyInstanceUid) as { r: number | null };
      const revision = Math.max(study.revision, newest.r ?? -1) + 1;
      this.db
        .prepare(`UPDATE studies SET revision = ?, state = 'ready' WHERE study_instance_uid = ?`)
        .run(revision, studyInstanceUid);
      const { id: jobId } = this.db
        .prepare(
          `INSERT INTO jobs (study_instance_uid, revision, state, instance_count, created_at, updated_at)
           VALUES (?, ?, 'ready', ?, ?, ?) RETURNING id`,
        )
        .get(studyInstanceUid, revision, study.instance_count, now, now) as { id: number };
      this.audit.record(
        {
          category: 'admin',
          action: 'study.reprocess',
          user: actor.user,
          role: actor.role,
          address: actor.address,
          target: `study ${studyInstanceUid}`,
          outcome: 'success',
          before: { revision: study.revision },
          after: { revision, jobId },
          detail: null,
        },
        now,
      );
      return { jobId, revision };
    })();
  }

  /** The delivery, parked; refuses (404/409) otherwise. */
  private parked(id: number): DeliveryRowOut {
    const target = this.delivery(id);
    if (target === undefined) throw new StoreRefusal(404, 'DELIVERY_NOT_FOUND', `no delivery ${id} in the job store`);
    if (target.state !== 'parked')
      throw new StoreRefusal(
        409,
        'DELIVERY_NOT_PARKED',
        `delivery ${id} is ${target.state}, not parked: only a parked delivery can be released or discarded`,
      );
    return target;
  }

  /** The id of the parked PACS delivery of the same job that holds this RIS delivery back, if any. */
  private heldBy(ris: DeliveryRowOut): number | undefined {
    const row = this.db
      .prepare(`SELECT id FROM deliveries WHERE job_id = ? AND kind = 'pacs' AND state = 'parked' ORDER BY id LIMIT 1`)
      .get(ris.jobId) as { id: number } | undefined;
    return row?.id;
  }

  /** parked -> pending due now (with the RIS deliveries a PACS delivery held back); the job delivers again. */
  private release(target: DeliveryRowOut, actor: StoreActor, now: number): DeliveryRowOut[] {
    const ids = [target.id];
    if (target.kind === 'pacs') {
      const held = this.db
        .prepare(`SELECT id FROM deliveries WHERE job_id = ? AND kind = 'ris' AND state = 'parked' AND last_error = ?`)
        .all(target.jobId, HELD_BACK) as Array<{ id: number }>;
      ids.push(...held.map((h) => h.id));
    }
    const update = this.db.prepare(
      `UPDATE deliveries SET state = 'pending', next_attempt_at = ?, attempts_at_release = attempts, updated_at = ?
         WHERE id = ? AND state = 'parked' RETURNING attempts`,
    );
    for (const id of ids) {
      const row = update.get(now, now, id) as { attempts: number };
      const detail =
        id === target.id
          ? `released by ${actor.user} (${actor.address})`
          : `released with PACS delivery ${target.id} by ${actor.user} (${actor.address})`;
      recordAttempt(this.db, id, row.attempts, now, 'released', detail);
    }
    this.db
      .prepare(
        `UPDATE jobs SET state = 'delivering', finished_at = NULL, updated_at = ?,
           last_error = CASE WHEN last_error = ? THEN NULL ELSE last_error END WHERE id = ?`,
      )
      .run(now, PARKED_JOB, target.jobId);
    return ids.map((id) => this.mustDelivery(id));
  }

  private mustDelivery(id: number): DeliveryRowOut {
    const row = this.delivery(id);
    if (row === undefined) throw new Error(`delivery ${id} vanished inside its own transaction`);
    return row;
  }

  private count(sql: string, args: readonly SqlArg[]): number {
    return (this.db.prepare(sql).get(...args) as { n: number }).n;
  }

  private toStudyRow(r: StudySqlRow): StudyRowOut {
    const job = this.db
      .prepare(
        `SELECT j.id, j.revision, j.state, j.rule,
           (SELECT i.result FROM job_images i WHERE i.job_id = j.id AND i.state = 'written' ORDER BY i.sop_instance_uid LIMIT 1) AS first_result
         FROM jobs j WHERE j.study_instance_uid = ? ORDER BY j.revision DESC, j.id DESC LIMIT 1`,
      )
      .get(r.study_instance_uid) as
      { id: number; revision: number; state: JobState; rule: string | null; first_result: string | null } | undefined;
    return {
      studyInstanceUid: r.study_instance_uid,
      state: r.state,
      revision: r.revision,
      instanceCount: r.instance_count,
      firstReceivedAt: r.first_received_at,
      lastReceivedAt: r.last_received_at,
      callingAe: r.calling_ae,
      accessionNumber: attribute(r.first_attributes, 'accessionNumber'),
      modality: attribute(r.first_attributes, 'modality'),
      studyDate: attribute(r.first_attributes, 'studyDate'),
      latestJob:
        job === undefined
          ? null
          : { id: job.id, revision: job.revision, state: job.state, rule: job.rule, firstResult: job.first_result },
    };
  }

  private toJobRow(r: JobSqlRow): JobRowOut {
    const deliveries = Object.fromEntries(DELIVERY_STATES.map((s) => [s, 0])) as Record<DeliveryState, number>;
    const counts = this.db
      .prepare('SELECT state, COUNT(*) AS n FROM deliveries WHERE job_id = ? GROUP BY state')
      .all(r.id) as Array<{ state: DeliveryState; n: number }>;
    for (const c of counts) deliveries[c.state] = c.n;
    return {
      id: r.id,
      studyInstanceUid: r.study_instance_uid,
      revision: r.revision,
      state: r.state,
      rule: r.rule,
      action: r.action,
      priority: r.priority,
      instanceCount: r.instance_count,
      attempts: r.attempts,
      lastError: r.last_error,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
      finishedAt: r.finished_at,
      callingAe: r.calling_ae,
      accessionNumber: attribute(r.first_attributes, 'accessionNumber'),
      deliveries,
    };
  }

  private instances(studyInstanceUid: string): InstanceRowOut[] {
    return (
      this.db
        .prepare(
          `SELECT sop_instance_uid, sop_class_uid, series_instance_uid, path, calling_ae, called_ae, source_ip,
             received_at, attributes FROM instances WHERE study_instance_uid = ? ORDER BY received_at, sop_instance_uid`,
        )
        .all(studyInstanceUid) as Array<{
        sop_instance_uid: string;
        sop_class_uid: string;
        series_instance_uid: string | null;
        path: string;
        calling_ae: string;
        called_ae: string;
        source_ip: string;
        received_at: number;
        attributes: string;
      }>
    ).map((r) => ({
      sopInstanceUid: r.sop_instance_uid,
      sopClassUid: r.sop_class_uid,
      seriesInstanceUid: r.series_instance_uid,
      path: r.path,
      callingAe: r.calling_ae,
      calledAe: r.called_ae,
      sourceIp: r.source_ip,
      receivedAt: r.received_at,
      attributes: r.attributes,
    }));
  }

  private jobImages(jobId: number): JobImageRowOut[] {
    return (
      this.db
        .prepare(
          'SELECT sop_instance_uid, path, state, reason, result FROM job_images WHERE job_id = ? ORDER BY sop_instance_uid',
        )
        .all(jobId) as Array<{
        sop_instance_uid: string;
        path: string;
        state: ImageState;
        reason: string | null;
        result: string | null;
      }>
    ).map((r) => ({
      sopInstanceUid: r.sop_instance_uid,
      path: r.path,
      state: r.state,
      reason: r.reason,
      result: r.result,
    }));
  }

  private jobDeliveries(jobId: number): DeliveryRowOut[] {
    return (
      this.db
        .prepare(`${DELIVERY_SELECT} WHERE d.job_id = ? ORDER BY d.kind = 'ris', d.id`)
        .all(jobId) as DeliverySqlRow[]
    ).map(toDeliveryRow);
  }

  /**
   * A delivery's story in the order it happened. delivery_attempts has no id (and rowid is SQLite's alone), so rows
   * of one millisecond are ordered by what they are: `attempt` counts tries, and an admin's release or discard
   * carries the count of the try it follows.
   */
  private history(deliveryId: number): AttemptRowOut[] {
    return (
      this.db
        .prepare(
          `SELECT delivery_id, attempt, at, outcome, detail FROM delivery_attempts WHERE delivery_id = ?
           ORDER BY at, attempt, CASE WHEN outcome IN ('released', 'discarded') THEN 1 ELSE 0 END`,
        )
        .all(deliveryId) as Array<{
        delivery_id: number;
        attempt: number;
        at: number;
        outcome: AttemptRowOut['outcome'];
        detail: string | null;
      }>
    ).map((r) => ({ deliveryId: r.delivery_id, attempt: r.attempt, at: r.at, outcome: r.outcome, detail: r.detail }));
  }
}
