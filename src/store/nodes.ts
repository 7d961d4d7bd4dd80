import type { SqlDatabase } from './sql-database.js';

// The nodes of a cluster as the store knows them (issue 20): each node writes its own row at start and a heartbeat
// while it runs, so that an operator (and the cluster view) sees who is alive and what each one does. Leases are
// judged by their own expiry, not by this row: a node is never declared dead here.

export interface NodeRow {
  name: string;
  roles: string[];
  startedAt: number;
  heartbeatAt: number;
  draining: boolean;
}

/** The leases one node holds now (lease not run out at `now`): what a drained node still has to finish. */
export interface LeasesHeld {
  jobs: number;
  deliveries: number;
}

/** The jobs and deliveries a node is working on now, as its own memory knows them: the leases its heartbeat renews. */
export interface LeasesWorkedOn {
  jobs: readonly number[];
  deliveries: readonly number[];
}

export class NodeRegistry {
  constructor(private readonly db: SqlDatabase) {}

  /**
   * This node's row, made or replaced at start (a node restarted under the same name starts afresh, not draining),
   * and the leases its earlier life held released: that process is gone, so nothing of it is still at work.
   */
  register(name: string, roles: readonly string[], now: number): void {
    this.db.transaction(() => {
      this.db
        .prepare(
          `INSERT INTO nodes (name, roles, started_at, heartbeat_at, draining) VALUES (?, ?, ?, ?, 0)
           ON CONFLICT (name) DO UPDATE SET roles = excluded.roles, started_at = excluded.started_at,
             heartbeat_at = excluded.heartbeat_at, draining = 0`,
        )
        .run(name, roles.join(','), now, now);
      this.db.prepare('UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner = ?').run(name);
      this.db
        .prepare('UPDATE deliveries SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner = ?')
        .run(name);
    })();
  }

  /**
   * The node is alive: its heartbeat, and the leases it is working on (`held`, from its memory) renewed until
   * `leaseUntil`, in one transaction. A lease the store still shows under its name but that it no longer works on is
   * given back here: its release failed (the disk full, the store briefly out of reach), and renewing it with the rest
   * would keep that job or delivery from every node, this one included, for as long as the node lives. Returns how
   * many such leases went back (the caller wakes its stages then: the work is claimable again).
   */
  heartbeat(name: string, now: number, leaseUntil: number, held: LeasesWorkedOn): number {
    return this.db.transaction((): number => {
      this.db.prepare('UPDATE nodes SET heartbeat_at = ? WHERE name = ?').run(now, name);
      let released = 0;
      for (const [table, ids] of [
        ['jobs', held.jobs],
        ['deliveries', held.deliveries],
      ] as const) {
        const list = ids.map(() => '?').join(', ');
        if (ids.length > 0)
          this.db
            .prepare(`UPDATE ${table} SET lease_expires_at = ? WHERE lease_owner = ? AND id IN (${list})`)
            .run(leaseUntil, name, ...ids);
        released += this.db
          .prepare(
            `UPDATE ${table} SET lease_owner = NULL, lease_expires_at = NULL
             WHERE lease_owner = ?${ids.length > 0 ? ` AND id NOT IN (${list})` : ''}`,
          )
          .run(name, ...ids).changes;
      }
      return released;
    })();
  }

  list(): NodeRow[] {
    return (
      this.db.prepare('SELECT * FROM nodes ORDER BY name').all() as Array<{
        name: string;
        roles: string;
        started_at: number;
        heartbeat_at: number;
        draining: number;
      }>
    ).map((r) => ({
      name: r.name,
      roles: r.roles === '' ? [] : r.roles.split(','),
      startedAt: r.started_at,
      heartbeatAt: r.heartbeat_at,
      draining: r.draining === 1,
    }));
  }

  /**
   * Marks node `name` draining (or not): it claims no new job or delivery and finishes what it holds, so that it
   * can be stopped for maintenance without work waiting on its leases. False when no node of that name registered.
   */
  setDraining(name: string, draining: boolean): boolean {
    return this.db.prepare('UPDATE nodes SET draining = ? WHERE name = ?').run(draining ? 1 : 0, name).changes > 0;
  }

  /** The live leases (not run out at `now`) each node holds, by node name; a node holding none is absent. */
  leasesHeld(now: number): Map<string, LeasesHeld> {
    const rows = this.db
      .prepare(
        `SELECT lease_owner AS owner, 'job' AS kind, COUNT(*) AS n FROM jobs
           WHERE lease_owner IS NOT NULL AND lease_expires_at > ? GROUP BY lease_owner
         UNION ALL
         SELECT lease_owner AS owner, 'delivery' AS kind, COUNT(*) AS n FROM deliveries
           WHERE lease_owner IS NOT NULL AND lease_expires_at > ? GROUP BY lease_owner`,
      )
      .all(now, now) as Array<{ owner: string; kind: 'job' | 'delivery'; n: number | string }>;
    const held = new Map<string, LeasesHeld>();
    for (const row of rows) {
      const entry = held.get(row.owner) ?? { jobs: 0, deliveries: 0 };
      // PostgreSQL's COUNT is a bigint, which node-postgres hands back as a string.
      if (row.kind === 'job') entry.jobs = Number(row.n);
      else entry.deliveries = Number(row.n);
      held.set(row.owner, entry);
    }
    return held;
  }
}
