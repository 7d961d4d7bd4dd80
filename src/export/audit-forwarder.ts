/**
 * The audit forwarder: a stage that sends every audit row, in recording order, to the hospital's audit repository
 * as a DICOM Audit Message (reporting/atna-message.ts) over syslog (syslog-sender.ts).
 *
 * It never blocks DICOM: recording an audit row stays a local INSERT (store/audit-trail.ts); this stage reads the
 * table behind the recorders' backs, through a durable cursor (AuditForwarding, job store schema v5). While the
 * repository is down, rows simply wait in the job store, the stage retries with a capped backoff, and /healthz
 * says how many wait and since when; a restart resumes at the cursor, so nothing is resent or skipped (at least
 * once: see AuditForwarding and SyslogSender for the two edges where a message can repeat or be lost).
 */
import type { AuditConfig } from '../config/schema.js';
import { GatewayError, describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { settledBy, type Stage, type StageStatus } from '../logging/lifecycle.js';
import { atnaMessage, type AtnaSource } from '../reporting/atna-message.js';
import { AuditForwarding } from '../store/audit-trail.js';
import type { SqlDatabase } from '../store/sql-database.js';
import { formatSyslog, SyslogSender, type SyslogHeader, type SyslogTarget } from './syslog-sender.js';

/** What the forwarder needs of a sender (SyslogSender; tests pass a double). */
export interface SyslogPort {
  readonly description: string;
  send(message: Buffer): Promise<void>;
  close(): void;
}

export interface AuditForwarderOptions {
  forwarding: Pick<AuditForwarding, 'open' | 'next' | 'advance' | 'backlog'> &
    Partial<Pick<AuditForwarding, 'lead' | 'unlead'>>;
  sender: SyslogPort;
  header: SyslogHeader;
  source: AtnaSource;
  logger: Logger;
  now?: () => number;
  /** How often an idle forwarder looks for new rows (ms). */
  pollMs?: number;
  /** Backoff while the repository is down: first wait, doubled up to the cap (ms). */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** Rows read per query. */
  batch?: number;
  /** A backlog whose oldest row is older than this (ms) makes the stage degraded even while sends succeed. */
  backlogAlarmMs?: number;
}

/** IHE ATNA's MSGID for audit messages in the RFC 3881 / DICOM format (ITI TF-2a 3.20.4.2). */
export const ATNA_MSGID = 'IHE+RFC-3881';
// RFC 5424 severities: 5 notice for a success, 4 warning for a failure.
const SEVERITY_SUCCESS = 5;
const SEVERITY_FAILURE = 4;

export class AuditForwarder implements Stage {
  readonly name = 'audit-forwarder';
  private state: StageState = 'starting';
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private stopping = false;
  private down: { since: number; reason: string } | undefined;
  private sent = 0;
  private skipped = 0;
  /** The wait before the next try while the repository is down (doubles up to retryMaxMs). */
  private retryMs = 0;
  private readonly now: () => number;

  constructor(private readonly options: AuditForwarderOptions) {
    this.now = options.now ?? Date.now;
  }

  async start(): Promise<void> {
    const position = this.options.forwarding.open(this.now());
    this.state = 'running';
    this.options.logger.info('audit forwarder started', {
      event: 'GATEWAY-7501',
      repository: this.options.sender.description,
      afterAuditId: position,
    });
    this.loop = this.run();
  }

  async stop(deadline: number): Promise<void> {
    this.stopping = true;
    this.state = 'stopping';
    this.wake?.();
    if (this.loop !== undefined && !(await settledBy(this.loop, deadline, this.now))) {
      // A send still hangs at the deadline: closing the connection fails it, and its row stays unsent.
      this.options.sender.close();
      await this.loop;
    }
    this.options.sender.close();
    this.state = 'stopped';
  }

  status(): StageStatus {
    const backlog = this.options.forwarding.backlog();
    const problems: string[] = [];
    const alarm = this.options.backlogAlarmMs ?? 15 * 60_000;
    const since = backlog.oldestAt === null ? null : new Date(backlog.oldestAt).toISOString();
    if (this.down !== undefined) {
      problems.push(
        `the audit repository ${this.options.sender.description} has been unreachable since ${new Date(this.down.since).toISOString()} (${this.down.reason}): ${backlog.waiting} audit messages wait in the job store${since === null ? '' : ` (the oldest from ${since})`} and are sent when it is back`,
      );
    } else if (backlog.oldestAt !== null && this.now() - backlog.oldestAt > alarm) {
      problems.push(
        `${backlog.waiting} audit messages wait to be sent to ${this.options.sender.description}, the oldest from ${since}: the repository accepts them more slowly than they are recorded`,
      );
    }
    const state: StageState = this.state === 'running' && problems.length > 0 ? 'degraded' : this.state;
    return {
      state,
      problems,
      figures: {
        waiting: backlog.waiting,
        oldestWaitingAgeSeconds:
          backlog.oldestAt === null ? 0 : Math.max(0, Math.round((this.now() - backlog.oldestAt) / 1000)),
        sent: this.sent,
        skipped: this.skipped,
      },
    };
  }

  private async run(): Promise<void> {
    const { forwarding } = this.options;
    const pollMs = this.options.pollMs ?? 1_000;
    this.retryMs = this.options.retryInitialMs ?? 1_000;
    while (!this.stopping) {
      // Nodes sharing one PostgreSQL store share the cursor: one forwards at a time, the others look again later.
      if (!this.lead()) {
        await this.pause(pollMs);
        continue;
      }
      let idle: boolean;
      try {
        idle = await this.pass();
      } finally {
        try {
          forwarding.unlead?.();
        } catch {
          // The store out of reach: the session (and its lock) is gone with the connection anyway.
        }
      }
      if (idle) await this.pause(pollMs);
    }
  }

  private lead(): boolean {
    try {
      return this.options.forwarding.lead?.() ?? true;
    } catch {
      // The store out of reach: nothing can be read either; tried again at the next look.
      return false;
    }
  }

  /** Sends the next rows from the cursor, in order; true when there were none. */
  private async pass(): Promise<boolean> {
    const rows = this.options.forwarding.next(this.options.batch ?? 100);
    if (rows.length === 0) return true;
    for (const row of rows) {
      if (this.stopping) return false;
      const body = atnaMessage(row, this.options.source);
      const message = formatSyslog(
        {
          at: row.at,
          severity: row.outcome === 'success' ? SEVERITY_SUCCESS : SEVERITY_FAILURE,
          msgId: ATNA_MSGID,
          sequenceId: row.id,
          body,
        },
        this.options.header,
      );
      try {
        await this.options.sender.send(message);
      } catch (error) {
        if (error instanceof GatewayError && error.code === 'AUDIT_MESSAGE_TOO_LARGE') {
          // Retrying cannot help, and holding it would stop every later row: skip it loudly.
          this.options.logger.error('an audit message does not fit its transport; skipped', {
            event: 'GATEWAY-7504',
            auditId: row.id,
            bytes: message.length,
            error: describeError(error),
          });
          this.options.forwarding.advance(row.id, this.now());
          this.skipped += 1;
          continue;
        }
        this.markDown(error);
        await this.pause(this.retryMs);
        this.retryMs = Math.min(this.retryMs * 2, this.options.retryMaxMs ?? 60_000);
        return false; // re-read from the cursor: the failed row is sent first
      }
      this.options.forwarding.advance(row.id, this.now());
      this.sent += 1;
      this.retryMs = this.options.retryInitialMs ?? 1_000;
      if (this.down !== undefined) {
        this.options.logger.info('the audit repository is reachable again', {
          event: 'GATEWAY-7503',
          repository: this.options.sender.description,
          downSince: new Date(this.down.since).toISOString(),
        });
        this.down = undefined;
      }
    }
    return false;
  }

  private markDown(error: unknown): void {
    const reason = error instanceof Error ? error.message : String(error);
    if (this.down === undefined) {
      this.down = { since: this.now(), reason };
      this.options.logger.warn('the audit repository cannot be reached; audit rows wait in the job store', {
        event: 'GATEWAY-7502',
        repository: this.options.sender.description,
        error: describeError(error),
      });
    } else {
      this.down.reason = reason;
    }
  }

  private pause(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = undefined;
        done();
      };
    });
  }
}

type StageState = StageStatus['state'];

/**
 * The forwarder for `audit.syslog`, on the daemon's job store connection; undefined when no repository is
 * configured (the audit trail then stays in the job store only). A change to `audit` applies at the next start.
 */
export function createAuditForwarder(
  audit: AuditConfig,
  aeTitle: string,
  db: SqlDatabase,
  logger: Logger,
): AuditForwarder | undefined {
  const syslog = audit.syslog;
  if (syslog === undefined) return undefined;
  const target: SyslogTarget = { transport: syslog.transport, host: syslog.host, port: syslog.port };
  if (syslog.caFile !== undefined) target.caFile = syslog.caFile;
  if (syslog.certFile !== undefined) target.certFile = syslog.certFile;
  if (syslog.keyFile !== undefined) target.keyFile = syslog.keyFile;
  const source: AtnaSource = { sourceId: audit.sourceId ?? aeTitle, aeTitle };
  if (audit.enterpriseSiteId !== undefined) source.enterpriseSiteId = audit.enterpriseSiteId;
  return new AuditForwarder({
    forwarding: new AuditForwarding(db, 'syslog'),
    sender: new SyslogSender(target),
    header: { facility: syslog.facility, appName: syslog.appName },
    source,
    logger,
    backlogAlarmMs: syslog.backlogAlarmMinutes * 60_000,
  });
}
