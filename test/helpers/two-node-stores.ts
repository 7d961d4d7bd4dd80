import type { ExecutionContext } from 'ava';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { JobStore } from '../../src/store/job-store.js';
import { migratePostgres } from '../../src/store/migrations/postgres.js';
import { PostgresDatabase } from '../../src/store/postgres/postgres-database.js';
import type { PostgresUnderTest } from './postgres.js';

/**
 * Two nodes' job stores on one store, per engine: two connections to one SQLite file, or two connections to one
 * new PostgreSQL database of the test file's cluster (migrated once). Closed when the test ends.
 */
export function twoNodeStores(
  cluster: () => PostgresUnderTest,
  prefix: string,
): Record<'sqlite' | 'postgres', (t: ExecutionContext) => Promise<[JobStore, JobStore]>> {
  return {
    sqlite: (t) => {
      const file = path.join(mkdtempSync(path.join(os.tmpdir(), prefix)), 'jobs.sqlite');
      const stores: [JobStore, JobStore] = [JobStore.open(file), JobStore.open(file)];
      t.teardown(() => stores.forEach((s) => s.close()));
      return Promise.resolve(stores);
    },
    postgres: async (t) => {
      const url = await cluster().createDatabase();
      const a = PostgresDatabase.open({ url });
      const b = PostgresDatabase.open({ url });
      t.teardown(() => {
        a.close();
        b.close();
      });
      migratePostgres(a);
      return [JobStore.fromDatabase(a), JobStore.fromDatabase(b)];
    },
  };
}
