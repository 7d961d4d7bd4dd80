import { z } from 'zod';
import { describeError } from '../errors.js';
import type { SqlDatabase } from './sql-database.js';
import { parseStored } from './stored-json.js';

// Storage commitment reports between the nodes of a cluster: a PACS sends its N-EVENT-REPORT to the gateway's AE
// title, which behind a load balancer is any receive node, while the delivery waiting for it runs on the node that
// sent the N-ACTION (issue 20). The node that receives a report it does not wait for keeps it here; the waiting node
// looks for its transactions here while it waits. The dimse layer's registry uses it; the shape is this store's own.

const sop = z.object({ sopClassUid: z.string(), sopInstanceUid: z.string() });
const reportSchema = z.object({
  transactionUid: z.string(),
  eventTypeId: z.number().int().optional(),
  committed: z.array(sop),
  failed: z.array(sop.extend({ failureReason: z.number().int() })),
  via: z.enum(['same-association', 'new-association']),
  callingAe: z.string(),
  peer: z.string(),
});

/** A storage commitment result as it reached some node (the registry's CommitmentReport). */
export type RelayedReport = z.output<typeof reportSchema>;

export class CommitmentRelay {
  constructor(
    private readonly db: SqlDatabase,
    private readonly node: string,
  ) {}

  /** Keeps a report for the node that waits for its transaction; a report sent twice is kept once. */
  put(report: RelayedReport, now: number): void {
    this.db
      .prepare(
        `INSERT INTO commitment_reports (transaction_uid, report, received_at, received_by) VALUES (?, ?, ?, ?)
         ON CONFLICT (transaction_uid) DO NOTHING`,
      )
      .run(report.transactionUid, JSON.stringify(report), now, this.node);
  }

  /**
   * The reports kept for any of `transactionUids`, taken (deleted) in one transaction, so one waiter gets each.
   * A row that cannot be read is taken too and given as an error: its waiter runs into its timeout and retries.
   */
  take(transactionUids: readonly string[]): Array<{ transactionUid: string; report: RelayedReport | Error }> {
    if (transactionUids.length === 0) return [];
    const list = transactionUids.map(() => '?').join(', ');
    return this.db.transaction(() => {
      const rows = this.db
        .prepare(`SELECT transaction_uid, report FROM commitment_reports WHERE transaction_uid IN (${list})`)
        .all(...transactionUids) as Array<{ transaction_uid: string; report: string }>;
      if (rows.length === 0) return [];
      this.db
        .prepare(`DELETE FROM commitment_reports WHERE transaction_uid IN (${rows.map(() => '?').join(', ')})`)
        .run(...rows.map((r) => r.transaction_uid));
      return rows.map((r) => {
        try {
          return {
            transactionUid: r.transaction_uid,
            report: parseStored(reportSchema, r.report, {
              column: 'commitment_reports.report',
              row: `transaction ${r.transaction_uid}`,
            }),
          };
        } catch (error) {
          return { transactionUid: r.transaction_uid, report: new Error(describeError(error)) };
        }
      });
    })();
  }

  /** Deletes the reports no node took before `before` (late ones: their deliveries were retried); how many. */
  expire(before: number): number {
    return this.db.prepare('DELETE FROM commitment_reports WHERE received_at < ?').run(before).changes;
  }
}
