import type { SqlDatabase } from './sql-database.js';

export interface StoreCounts {
  instances: number;
  studies: Record<string, number>;
  jobs: Record<string, number>;
  deliveries: Record<string, number>;
  images: Record<string, number>;
}

export interface LatencySummary {
  count: number;
  p50Seconds: number | undefined;
  p95Seconds: number | undefined;
}

/** Read-only figures about what the store holds, for /metrics, /healthz and the daily summary. */
export class StoreMetrics {
  constructor(private readonly db: SqlDatabase) {}

  counts(): StoreCounts {
    const byState = (table: string) =>
      Object.fromEntries(
        (
          this.db.prepare(`SELECT state, COUNT(*) AS n FROM ${table} GROUP BY state`).all() as Array<{
            state: string;
            n: number;
          }>
        ).map((r) => [r.state, r.n]),
      );
    const instances = (this.db.prepare('SELECT COUNT(*) AS n FROM instances').get() as { n: number }).n;
    return {
      instances,
      studies: byState('studies'),
      jobs: byState('jobs'),
      deliveries: byState('deliveries'),
      images: byState('job_images'),
    };
  }

  /**
   * Time from the last image of a study arriving to its job finishing (done), for jobs finished since
   * `since`: the latency a radiologist waits for.
   */
  endToEndLatency(since: number): LatencySummary {
    const rows = this.db
      .prepare(
        `SELECT j.finished_at - s.last_received_at AS ms FROM jobs j JOIN studies s ON s.study_instance_uid = j.study_instance_uid
         WHERE j.state = 'done' AND j.finished_at >= ? ORDER BY ms`,
      )
      .all(since) as Array<{ ms: number }>;
    const at = (q: number) =>
      rows.length === 0 ? undefined : (rows[Math.min(rows.length - 1, Math.floor(q * rows.length))]?.ms ?? 0) / 1000;
    return { count: rows.length, p50Seconds: at(0.5), p95Seconds: at(0.95) };
  }
}
