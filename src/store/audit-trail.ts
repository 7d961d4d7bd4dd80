import type { StorePage } from './console-queries.js';
import type { SqlDatabase } from './sql-database.js';

/**
 * One audited event. Categories stay open strings: 'admin' for console and CLI actions today; issue 17 adds
 * 'dicom', 'hl7' and 'security' events to the same table through this same module. Never put a patient's name or
 * ID in any field: targets name rows by their ids and UIDs.
 */
export interface AuditRecord {
  category: string;
  /** e.g. 'delivery.release', 'delivery.discard', 'study.reprocess', 'user.add', 'user.login' */
  action: string;
  user: string | null;
  role: string | null;
  /** Client address as the console saw it; 'local' for the CLI. */
  address: string | null;
  /** What it acted on, e.g. 'delivery 12', 'study 1.2.3', 'destination ris-main'. */
  target: string | null;
  outcome: 'success' | 'failure';
  /** State before and after; stored as JSON text. */
  before?: unknown;
  after?: unknown;
  detail?: string | null;
}

/** An audit row as stored: before/after stay JSON text (the console service parses them). */
export interface AuditRowOut {
  id: number;
  at: number;
  category: string;
  action: string;
  user: string | null;
  role: string | null;
  address: string | null;
  target: string | null;
  outcome: 'success' | 'failure';
  before: string | null;
  after: string | null;
  detail: string | null;
}

export interface AuditListFilter {
  category?: string;
  action?: string;
  user?: string;
  /** Epoch ms; a row matches when since <= at < until. */
  since?: number;
  until?: number;
  offset: number;
  limit: number;
}

interface AuditRow {
  id: number;
  at: number;
  category: string;
  action: string;
  user: string | null;
  role: string | null;
  address: string | null;
  target: string | null;
  outcome: 'success' | 'failure';
  before: string | null;
  after: string | null;
  detail: string | null;
}

/** PostgreSQL advisory lock: audit entries are numbered in commit order across nodes (AuditTrail.record). */
export const AUDIT_ORDER_LOCK_KEY = 0x6378726175646974n;
/**
 * PostgreSQL advisory lock (session, two 32-bit keys: this and the channel's hash): one node at a time forwards a
 * channel's rows (AuditForwarding.lead).
 */
const AUDIT_FORWARD_LOCK_CLASS = 0x63787277;

/** The longest detail kept: a trail entry is a line an admin reads, not a dump. */
const DETAIL_MAX = 2000;

/**
 * The audit trail: who did what, when, from where, with the state before and after. Append-only (no update or
 * delete here). `record` is a plain INSERT, so it joins the caller's transaction when called inside one (the
 * action and its audit entry commit or roll back together).
 */
export class AuditTrail {
  constructor(private readonly db: SqlDatabase) {}

  /**
   * Appends one entry; returns its id. `"user"` is quoted: a reserved word in PostgreSQL (CURRENT_USER).
   * On PostgreSQL the entries of concurrent transactions (several nodes) take their ids in the order they commit:
   * each takes AUDIT_ORDER_LOCK_KEY until its transaction ends, so no entry commits with an id below one already
   * visible, and the forwarder's cursor ("every id above the last sent") never passes over one that commits late.
   */
  record(e: AuditRecord, now: number): number {
    return this.db.transaction(() => {
      if (this.db.dialect === 'postgres') this.db.prepare('SELECT pg_advisory_xact_lock(?)').get(AUDIT_ORDER_LOCK_KEY);
      return this.insert(e, now);
    })();
  }

  private insert(e: AuditRecord, now: number): number {
    const result = this.db
      .prepare(
        `INSERT INTO audit_events (at, category, action, "user", role, address, target, outcome, before, after, detail)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
      )
      .get(
        now,
        e.category,
        e.action,
        e.user,
        e.role,
        e.address,
        e.target,
        e.outcome,
        e.before === undefined ? null : JSON.stringify(e.before),
        e.after === undefined ? null : JSON.stringify(e.after),
        e.detail === undefined || e.detail === null ? null : e.detail.slice(0, DETAIL_MAX),
      );
    return (result as { id: number }).id;
  }

  /** Newest first. */
  list(filter: AuditListFilter): StorePage<AuditRowOut> {
    const where: string[] = [];
    const args: Array<string | number> = [];
    if (filter.category !== undefined) {
      where.push('category = ?');
      args.push(filter.category);
    }
    if (filter.action !== undefined) {
      where.push('action = ?');
      args.push(filter.action);
    }
    if (filter.user !== undefined) {
      where.push('"user" = ?');
      args.push(filter.user);
    }
    if (filter.since !== undefined) {
      where.push('at >= ?');
      args.push(filter.since);
    }
    if (filter.until !== undefined) {
      where.push('at < ?');
      args.push(filter.until);
    }
    const clause = where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`;
    const total = (this.db.prepare(`SELECT COUNT(*) AS n FROM audit_events ${clause}`).get(...args) as { n: number }).n;
    const items = this.db
      .prepare(`SELECT * FROM audit_events ${clause} ORDER BY at DESC, id DESC LIMIT ? OFFSET ?`)
      .all(...args, filter.limit, filter.offset) as AuditRow[];
    return { items: items.map((r) => ({ ...r })), total, offset: filter.offset, limit: filter.limit };
  }
}

/**
 * What a stage that reports audited events needs of the trail (issue 17: associations, received studies, results
 * sent, security events). Stages take this, not the class, so their tests can record into a list.
 */
export type AuditRecorder = Pick<AuditTrail, 'record'>;

/** Where a forwarding channel stands: rows with an id above `lastId` wait; the oldest of them since `oldestAt`. */
export interface AuditBacklog {
  lastId: number;
  waiting: number;
  /** Epoch ms of the oldest waiting row; null when none waits. */
  oldestAt: number | null;
}

/**
 * The forwarding cursor of one channel (issue 17: 'syslog', the hospital's audit repository), kept in the job store
 * (table audit_forwarding, schema v5) so a restart never resends a row nor skips one. audit_events ids only grow and
 * SQLite has one writer at a time, so "id > last_id in id order" is the rows not yet sent, in recording order.
 *
 * Which rows a channel sends: every row recorded from the moment the channel is first configured (its cursor is
 * created at the newest id then), including rows recorded while it is later unconfigured or unreachable. Rows older
 * than the first configuration stay in the store only: a repository connected today does not get years of history.
 * Delivery is at least once: a crash between the transport accepting a message and `advance` sends it again, with
 * the same row id in the message (the receiver can drop the duplicate).
 */
export class AuditForwarding {
  constructor(
    private readonly db: SqlDatabase,
    readonly channel: string,
  ) {}

  /**
   * Whether this node may forward now. Several nodes share the cursor: on PostgreSQL one forwards at a time, under a
   * session advisory lock per channel taken for one pass (`unlead` after it), so that two nodes never both read the
   * same rows before either advances. A node that dies mid-pass loses the lock with its connection. SQLite: one node.
   */
  lead(): boolean {
    if (this.db.dialect !== 'postgres') return true;
    const row = this.db
      .prepare('SELECT pg_try_advisory_lock(?, ?) AS ok')
      .get(AUDIT_FORWARD_LOCK_CLASS, this.channelKey()) as {
      ok: boolean;
    };
    return row.ok;
  }

  /** Ends a pass that lead() allowed. */
  unlead(): void {
    if (this.db.dialect !== 'postgres') return;
    this.db.prepare('SELECT pg_advisory_unlock(?, ?)').get(AUDIT_FORWARD_LOCK_CLASS, this.channelKey());
  }

  /** The channel as the lock's second key (a 32-bit hash of its name). */
  private channelKey(): number {
    let hash = 0;
    for (const c of this.channel) hash = (Math.imul(hash, 31) + c.charCodeAt(0)) | 0;
    return hash;
  }

  /** Creates the cursor at the newest row when the channel has none; returns its position. */
  open(now: number): number {
    const row = this.db.prepare('SELECT last_id FROM audit_forwarding WHERE channel = ?').get(this.channel) as
      { last_id: number } | undefined;
    if (row !== undefined) return row.last_id;
    const newest = (this.db.prepare('SELECT COALESCE(MAX(id), 0) AS id FROM audit_events').get() as { id: number }).id;
    this.db
      .prepare('INSERT INTO audit_forwarding (channel, last_id, started_at, updated_at) VALUES (?, ?, ?, ?)')
      .run(this.channel, newest, now, now);
    return newest;
  }

  /** The next rows to send, oldest first. */
  next(limit: number): AuditRowOut[] {
    const rows = this.db
      .prepare(
        `SELECT e.* FROM audit_events e, audit_forwarding f
         WHERE f.channel = ? AND e.id > f.last_id ORDER BY e.id LIMIT ?`,
      )
      .all(this.channel, limit) as AuditRow[];
    return rows.map((r) => ({ ...r }));
  }

  /** Marks every row up to `id` sent; never moves the cursor back (CASE: SQLite has no GREATEST). */
  advance(id: number, now: number): void {
    this.db
      .prepare(
        'UPDATE audit_forwarding SET last_id = CASE WHEN last_id > ? THEN last_id ELSE ? END, updated_at = ? WHERE channel = ?',
      )
      .run(id, id, now, this.channel);
  }

  backlog(): AuditBacklog {
    const row = this.db
      .prepare(
        `SELECT f.last_id AS "lastId", COUNT(e.id) AS waiting, MIN(e.at) AS "oldestAt"
         FROM audit_forwarding f LEFT JOIN audit_events e ON e.id > f.last_id
         WHERE f.channel = ? GROUP BY f.channel, f.last_id`,
      )
      .get(this.channel) as AuditBacklog | undefined;
    return row ?? { lastId: 0, waiting: 0, oldestAt: null };
  }
}

/**
 * Repeats of one event from one source (a port scanner, a modality retrying with a bad certificate) are recorded
 * as one row per window, so they cannot flood the audit trail or the log; how many were left out is counted into the
 * next row that is recorded for the same key. Keys are bounded: the oldest is forgotten past `maxKeys`.
 */
export class RepeatLimiter {
  private readonly windows = new Map<string, { start: number; leftOut: number }>();

  constructor(
    private readonly windowMs = 60_000,
    private readonly maxKeys = 10_000,
  ) {}

  /** undefined: leave this one out; otherwise record it, noting the number left out since the last recorded one. */
  admit(key: string, now: number): number | undefined {
    const window = this.windows.get(key);
    if (window !== undefined && now - window.start < this.windowMs) {
      window.leftOut += 1;
      return undefined;
    }
    this.windows.delete(key);
    this.windows.set(key, { start: now, leftOut: 0 });
    if (this.windows.size > this.maxKeys) {
      const oldest = this.windows.keys().next().value;
      if (oldest !== undefined) this.windows.delete(oldest);
    }
    return window?.leftOut ?? 0;
  }
}
