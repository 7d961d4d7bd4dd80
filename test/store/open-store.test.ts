// Opening the job store on either engine (store/open-store.ts): migrations applied, the collation PostgreSQL must
// sort with, the password kept out of every message and place the store reports.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { GatewayError } from '../../src/errors.js';
import { openStore, redactUrl } from '../../src/store/open-store.js';
import { PostgresError } from '../../src/store/postgres/postgres-database.js';
import { storeClusterId } from '../../src/store/spool-marker.js';
import { freePort } from '../helpers/ports.js';
import { startPostgres, type PostgresUnderTest } from '../helpers/postgres.js';

let cluster: PostgresUnderTest;
test.before(async () => {
  cluster = await startPostgres();
});
test.after.always(async () => {
  await cluster?.stop();
});

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cxr-open-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const SECRET = 'Sup3r-s3cret-pw';

function postgresAt(url: string, passwordFile?: string) {
  return {
    engine: 'postgres' as const,
    url,
    statementTimeoutMs: 10_000,
    connectTimeoutMs: 2_000,
    ...(passwordFile === undefined ? {} : { passwordFile }),
  };
}

test('SQLite: write mode creates and migrates the file with a cluster id; read mode opens it without writing', (t) => {
  const file = path.join(tempDir(t), 'db', 'store.sqlite');
  const written = openStore({ engine: 'sqlite', file }, 'write');
  t.is(written.engine, 'sqlite');
  t.is(written.where, file);
  const id = storeClusterId(written.store.connection);
  t.regex(id, /^[0-9a-f]{32}$/);
  written.store.close();
  const read = openStore({ engine: 'sqlite', file }, 'read');
  t.teardown(() => read.store.close());
  t.is(storeClusterId(read.store.connection), id, 'the id is made once');
  t.throws(() => read.store.connection.prepare('DELETE FROM cluster').run(), { any: true, message: /readonly/ });
});

test('PostgreSQL: write mode migrates, with a password file; the place it reports has no password', async (t) => {
  const dir = tempDir(t);
  const passwordFile = path.join(dir, 'pg-password');
  writeFileSync(passwordFile, `${SECRET}\n`);
  const url = await cluster.createDatabase();
  const opened = openStore(postgresAt(url, passwordFile), 'write');
  t.teardown(() => opened.store.close());
  t.is(opened.engine, 'postgres');
  t.is(opened.where, url);
  t.false(opened.where.includes(SECRET));
  t.regex(storeClusterId(opened.store.connection), /^[0-9a-f-]{36}$/);
  t.is(opened.store.countStudies('ready'), 0);
});

test('PostgreSQL: read mode does not migrate (an empty database has no store to read)', async (t) => {
  const url = await cluster.createDatabase();
  const opened = openStore(postgresAt(url), 'read');
  t.teardown(() => opened.store.close());
  t.throws(() => opened.store.countStudies('ready'), { message: /studies/ });
});

test('PostgreSQL: read mode reads what the writer committed, and the server refuses it any write', async (t) => {
  const url = await cluster.createDatabase();
  const writer = openStore(postgresAt(url), 'write');
  t.teardown(() => writer.store.close());
  writer.store.connection.prepare('INSERT INTO audit_forwarding VALUES (?, ?, ?, ?)').run('syslog', 7, 1, 1);
  const reader = openStore(postgresAt(url), 'read');
  t.teardown(() => reader.store.close());
  t.deepEqual(reader.store.connection.prepare('SELECT last_id FROM audit_forwarding').all(), [{ last_id: 7 }]);
  const error = t.throws(() => reader.store.connection.prepare('DELETE FROM audit_forwarding').run());
  t.is((error as PostgresError).code, '25006', 'read_only_sql_transaction');
  t.deepEqual(writer.store.connection.prepare('SELECT last_id FROM audit_forwarding').all(), [{ last_id: 7 }]);
});

test('PostgreSQL: a database that sorts text by language is refused before anything is written', async (t) => {
  // ICU reports datcollate 'C' for such a database, yet sorts 1.2.10 after 1.21: the check asks the behaviour.
  const name = `icu_${process.pid}`;
  const admin = new pg.Client({ connectionString: cluster.url });
  await admin.connect();
  try {
    await admin.query(
      `CREATE DATABASE ${name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LC_COLLATE 'C' LC_CTYPE 'C'`,
    );
  } finally {
    await admin.end();
  }
  const url = cluster.url.replace(/\/postgres$/, `/${name}`);
  const error = t.throws(() => openStore(postgresAt(url), 'write'), { instanceOf: GatewayError });
  t.is((error as GatewayError).code, 'STORE_COLLATION_UNSUPPORTED');
  t.regex(error!.message, /en-US/);
  const check = new pg.Client({ connectionString: url });
  await check.connect();
  try {
    const tables = await check.query(`SELECT COUNT(*)::int AS n FROM pg_tables WHERE schemaname = 'public'`);
    t.is(tables.rows[0].n, 0, 'no migration ran');
  } finally {
    await check.end();
  }
});

test('PostgreSQL: a server that cannot be reached fails with STORE_UNAVAILABLE and never shows the password', async (t) => {
  const dir = tempDir(t);
  const passwordFile = path.join(dir, 'pg-password');
  writeFileSync(passwordFile, SECRET);
  const port = await freePort();
  const error = t.throws(() => openStore(postgresAt(`postgres://gw@127.0.0.1:${port}/cxr`, passwordFile), 'write'), {
    instanceOf: GatewayError,
  });
  t.is((error as GatewayError).code, 'STORE_UNAVAILABLE');
  t.false(error!.message.includes(SECRET));
  t.false(String(error!.stack).includes(SECRET));
});

test('PostgreSQL: an unreadable password file is named in the error', (t) => {
  const missing = path.join(tempDir(t), 'absent');
  const error = t.throws(() => openStore(postgresAt('postgres://gw@127.0.0.1:1/cxr', missing), 'write'), {
    instanceOf: GatewayError,
  });
  t.is((error as GatewayError).code, 'STORE_UNAVAILABLE');
  t.true(error!.message.includes(missing));
});

test('redactUrl removes a password, whatever its characters', (t) => {
  t.is(redactUrl(`postgres://gw:${SECRET}@db.example:5432/cxr`), 'postgres://gw@db.example:5432/cxr');
  t.is(redactUrl('postgres://gw:p%40ss%3Aw@db/cxr'), 'postgres://gw@db/cxr');
  t.false(redactUrl('postgres://gw:x y@db/cxr').includes('x y'));
});
