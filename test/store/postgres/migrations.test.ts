// The PostgreSQL schema: applied once when several nodes start together, refused when newer than the code, and
// the same tables, columns and indexes as the SQLite schema (so that the store's SQL runs on both).
import test from 'ava';
import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GatewayError } from '../../../src/errors.js';
import { migratePostgres, POSTGRES_SCHEMA_VERSION, readClusterId } from '../../../src/store/migrations/postgres.js';
import { JobStore } from '../../../src/store/job-store.js';
import { PostgresDatabase } from '../../../src/store/postgres/postgres-database.js';
import { startPostgres, type PostgresUnderTest } from '../../helpers/postgres.js';
import { runCommand } from '../../helpers/run-command.js';

let cluster: PostgresUnderTest;
test.before(async () => {
  cluster = await startPostgres();
});
test.after.always(async () => {
  await cluster?.stop();
});

const NODE_SCRIPT = fileURLToPath(new URL('./fixtures/migrate-node.js', import.meta.url));

test('four nodes migrating at once apply each version once and make one cluster id', async (t) => {
  const url = await cluster.createDatabase();
  const startAt = String(Date.now() + 1_500);
  const nodes = await Promise.all(
    [1, 2, 3, 4].map(() => runCommand(process.execPath, [NODE_SCRIPT, url, startAt], { timeoutMs: 60_000 })),
  );
  for (const node of nodes) t.is(node.code, 0, node.stderr);
  const applied = nodes.map((node) => JSON.parse(node.stdout) as number[]);
  t.deepEqual(
    applied.flat().sort(),
    Array.from({ length: POSTGRES_SCHEMA_VERSION }, (_, i) => i + 1),
    'every version applied by exactly one node',
  );
  const db = PostgresDatabase.open({ url });
  t.teardown(() => db.close());
  t.deepEqual(
    db.prepare('SELECT version FROM schema_migrations ORDER BY version').all(),
    Array.from({ length: POSTGRES_SCHEMA_VERSION }, (_, i) => ({ version: i + 1 })),
  );
  t.deepEqual(db.prepare('SELECT COUNT(*) AS n FROM cluster').get(), { n: 1 });
  t.regex(readClusterId(db), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  t.deepEqual(migratePostgres(db), [], 'a later start finds nothing to do');
});

test('a node whose close() leaves no thread or socket behind exits by itself', async (t) => {
  // The fixture never calls process.exit: a worker or connection left open would keep it running until the
  // time limit kills it (code null).
  const node = await runCommand(process.execPath, [NODE_SCRIPT, await cluster.createDatabase()], {
    timeoutMs: 30_000,
  });
  t.is(node.code, 0, node.stderr);
  t.deepEqual(
    JSON.parse(node.stdout),
    Array.from({ length: POSTGRES_SCHEMA_VERSION }, (_, i) => i + 1),
  );
});

test('a schema newer than this code is refused', async (t) => {
  const db = PostgresDatabase.open({ url: await cluster.createDatabase() });
  t.teardown(() => db.close());
  migratePostgres(db);
  db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(POSTGRES_SCHEMA_VERSION + 1, 0);
  const error = t.throws(() => migratePostgres(db));
  t.is((error as GatewayError).code, 'STORE_UNAVAILABLE');
  t.regex(error?.message ?? '', /newer than this gateway/);
});

test('the PostgreSQL schema has the same tables, columns and indexes as the SQLite one', async (t) => {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'schema-')), 'jobs.sqlite');
  JobStore.open(file).close();
  const sqlite = new Database(file, { readonly: true });
  t.teardown(() => sqlite.close());
  const sqliteTables = (
    sqlite
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
      .all() as Array<{ name: string }>
  ).map((r) => r.name);
  const sqliteSchema = Object.fromEntries(
    sqliteTables.map((table) => [
      table,
      (sqlite.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>).map((c) => c.name).sort(),
    ]),
  );
  const sqliteIndexes = (
    sqlite
      .prepare(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex_%' ORDER BY name",
      )
      .all() as Array<{ name: string }>
  ).map((r) => r.name);

  const db = PostgresDatabase.open({ url: await cluster.createDatabase() });
  t.teardown(() => db.close());
  migratePostgres(db);
  // schema_migrations belongs to PostgreSQL only (SQLite counts in user_version); both have `cluster`.
  const postgresOnly = new Set(['schema_migrations']);
  const columns = db
    .prepare(
      `SELECT table_name AS t, column_name AS c FROM information_schema.columns
       WHERE table_schema = 'public' ORDER BY table_name, column_name`,
    )
    .all() as Array<{ t: string; c: string }>;
  const postgresSchema: Record<string, string[]> = {};
  for (const { t: table, c } of columns) {
    if (postgresOnly.has(table)) continue;
    (postgresSchema[table] ??= []).push(c);
  }
  for (const list of Object.values(postgresSchema)) list.sort();
  t.deepEqual(postgresSchema, sqliteSchema);
  // Indexes the engines make for keys themselves (pkey, key / sqlite_autoindex) are left out of the comparison.
  const postgresIndexes = (
    db
      .prepare(
        `SELECT indexname AS name FROM pg_indexes WHERE schemaname = 'public'
         AND indexname NOT LIKE '%\\_pkey' AND indexname NOT LIKE '%\\_key' ORDER BY indexname`,
      )
      .all() as Array<{ name: string }>
  ).map((r) => r.name);
  t.deepEqual(postgresIndexes, sqliteIndexes);
});
