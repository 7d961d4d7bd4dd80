import type Database from 'better-sqlite3';
import type { StorePage } from './console-queries.js';

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

/** The longest detail kept: a trail entry is a line an admin reads, not a dump. */
const DETAIL_MAX = 2000;

/**
 * The audit trail: who did what, when, from where, with the state before and after. Append-only (no update or
 * delete here). `record` is a plain INSERT, so it joins the caller's transaction when called inside one (the
 * action and its audit entry commit or roll back together).
 */
export class AuditTrail {
  constructor(private readonly db: Database.Database) {}

  /** Appends one entry; returns its id. */
  record(e: AuditRecord, now: number): number {
    const result = this.db
      .prepare(
        `INSERT INTO audit_events (at, category, action, user, role, address, target, outcome, before, after, detail)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
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
    return Number(result.lastInsertRowid);
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
      where.push('user = ?');
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
