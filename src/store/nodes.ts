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

  /** The node is alive: its heartbeat, and every lease it holds renewed until `leaseUntil`, in one transaction. */
  heartbeat(name: string, now: number, leaseUntil: number): void {
    this.db.transaction(() => {
      this.db.prepare('UPDATE nodes SET heartbeat_at = ? WHERE name = ?').run(now, name);
      this.db.prepare('UPDATE jobs SET lease_expires_at = ? WHERE lease_owner = ?').run(leaseUntil, name);
      this.db.prepare('UPDATE deliveries SET lease_expires_at = ? WHERE lease_owner = ?').run(leaseUntil, name);
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
}
