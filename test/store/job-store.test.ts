import test from 'ava';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { JobStore } from '../../src/store/job-store.js';
import { receivedInstance } from '../helpers/received-instance.js';
import { migrateSqlite, SQLITE_MIGRATIONS } from '../../src/store/migrations/sqlite.js';
import { openStore } from '../../src/store/open-store.js';
import type { SqlDatabase } from '../../src/store/sql-database.js';
import { SqliteDatabase } from '../../src/store/sqlite-database.js';
import { sqliteOf } from '../helpers/sqlite-of.js';
import { engineTests } from './engines.js';

const forEachEngine = engineTests(test);

/** Without version 7's nodes table and lease columns, nor version 8's commitment reports (for files taken back). */
const WITHOUT_NODES = `DROP TABLE commitment_reports; DROP INDEX jobs_by_lease; DROP INDEX deliveries_by_lease; DROP TABLE nodes;
  ALTER TABLE jobs DROP COLUMN lease_owner; ALTER TABLE jobs DROP COLUMN lease_expires_at;
  ALTER TABLE deliveries DROP COLUMN lease_owner; ALTER TABLE deliveries DROP COLUMN lease_expires_at;`;

const file = () => path.join(mkdtempSync(path.join(os.tmpdir(), 'store-')), 'db', 'jobs.sqlite');

forEachEngine('a study becomes one ready job only after its quiet period', (t, location) => {
  const store = openStore(location, 'write').store;
  t.teardown(() => store.close());
  store.recordInstance(receivedInstance('1.1', 1000));
  store.recordInstance(receivedInstance('1.1', 5000));
  t.deepEqual(store.promoteQuietStudies(4999, 15000), []);
  const ready = store.promoteQuietStudies(5000, 15000);
  t.like(ready, [{ studyInstanceUid: '1.1', revision: 0, instanceCount: 2 }]);
  t.deepEqual(store.promoteQuietStudies(10_000, 20000), [], 'promoted once');
  t.like(store.listJobs(), [{ studyInstanceUid: '1.1', state: 'ready', instanceCount: 2 }]);
});

forEachEngine('the same SOP instance twice is recorded once and does not reopen its study', (t, location) => {
  const store = openStore(location, 'write').store;
  t.teardown(() => store.close());
  const first = receivedInstance('2.1', 1000, { sopInstanceUid: '2.1.1' });
  t.like(store.recordInstance(first), { kind: 'stored' });
  store.promoteQuietStudies(2000, 2000);
  t.like(store.recordInstance({ ...first, receivedAt: 3000 }), { kind: 'duplicate', storedUnderStudy: '2.1' });
  t.like(store.listStudies(), [{ state: 'ready', instanceCount: 1, revision: 0 }]);
});

forEachEngine('a new instance for a study with a job reopens it under the next revision', (t, location) => {
  const store = openStore(location, 'write').store;
  t.teardown(() => store.close());
  store.recordInstance(receivedInstance('3.1', 1000));
  store.promoteQuietStudies(1000, 1000);
  t.like(store.recordInstance(receivedInstance('3.1', 9000)), { kind: 'stored', studyReopened: true });
  t.like(store.listStudies(), [{ state: 'receiving', revision: 1, instanceCount: 2 }]);
  t.like(store.promoteQuietStudies(9000, 9000), [{ revision: 1, instanceCount: 2 }]);
  t.is(store.listJobs().length, 2);
});

forEachEngine(
  'what is committed survives closing the store, and a reader sees it while the writer is open',
  (t, location) => {
    const writer = openStore(location, 'write').store;
    writer.recordInstance(receivedInstance('4.1', 1000));
    const reader = openStore(location, 'read').store;
    t.like(reader.listStudies(), [{ studyInstanceUid: '4.1' }]);
    reader.close();
    writer.close();
    const reopened = openStore(location, 'write').store;
    t.teardown(() => reopened.close());
    t.is(reopened.listInstances('4.1').length, 1);
    t.is(reopened.countStudies('receiving'), 1);
  },
);

test('schema v3: job_images gains a crash count, and jobs an older version failed for ENOSPC go back to processing (purged studies excepted)', (t) => {
  const location = file();
  const old = JobStore.open(location);
  const db = sqliteOf(old);
  // Back to what version 2 left: no crashes column, none of version 4's (and later) tables.
  db.exec('ALTER TABLE job_images DROP COLUMN crashes');
  db.exec(
    'DROP TABLE cluster; DROP TABLE audit_forwarding; DROP TABLE delivery_attempts; DROP TABLE audit_events; DROP TABLE sessions; DROP TABLE users; ALTER TABLE deliveries DROP COLUMN attempts_at_release;',
  );
  db.exec(WITHOUT_NODES);
  db.pragma('user_version = 2');
  const job = (uid: string, imageReason: string, studyState = 'ready') => {
    old.recordInstance(receivedInstance(uid, 1000, { sopInstanceUid: `${uid}.1` }));
    const [ready] = old.promoteQuietStudies(1000, 1000);
    db.prepare(`UPDATE studies SET state = ? WHERE study_instance_uid = ?`).run(studyState, uid);
    db.prepare(
      `UPDATE jobs SET state = 'failed', rule = 'chest', action = '{}', finished_at = 5, last_error = 'x' WHERE id = ?`,
    ).run(ready?.jobId ?? null);
    db.prepare(
      `INSERT INTO job_images (job_id, sop_instance_uid, path, state, reason, updated_at) VALUES (?, ?, '/p', 'failed', ?, 1)`,
    ).run(ready?.jobId ?? null, `${uid}.1`, imageReason);
    return ready?.jobId;
  };
  const full = job('7.1', "PROCESSING_FAILED: ENOSPC: no space left on device, open '/spool/outputs/x'");
  const corrupt = job('7.2', 'PIXELS_CORRUPT: the pixel data is shorter than its attributes say');
  const purged = job('7.3', 'PROCESSING_FAILED: ENOSPC: no space left on device', 'purged');
  old.close();

  const store = JobStore.open(location);
  t.teardown(() => store.close());
  t.is(sqliteOf(store).pragma('user_version'), SQLITE_MIGRATIONS.length);
  const states = new Map(store.listJobs().map((j) => [j.id, j]));
  t.like(states.get(full ?? 0), { state: 'processing', finishedAt: null });
  t.regex(states.get(full ?? 0)?.lastError ?? '', /lack of disk space/);
  t.like(states.get(corrupt ?? 0), { state: 'failed' });
  t.like(states.get(purged ?? 0), { state: 'failed' });
  const images = store.connection
    .prepare('SELECT job_id, state, reason, crashes FROM job_images ORDER BY job_id')
    .all() as Array<{ job_id: number; state: string; reason: string | null; crashes: number }>;
  t.like(
    images.find((i) => i.job_id === full),
    { state: 'pending', reason: null, crashes: 0 },
  );
  t.like(
    images.find((i) => i.job_id === corrupt),
    { state: 'failed', crashes: 0 },
  );
});

test('schema v4: a version 3 file gains delivery_attempts, audit_events, users and sessions, keeping its rows', (t) => {
  const location = file();
  const old = JobStore.open(location);
  old.recordInstance(receivedInstance('8.1', 1000, { sopInstanceUid: '8.1.1' }));
  old.promoteQuietStudies(1000, 1000);
  old.connection.exec(
    'DROP TABLE cluster; DROP TABLE audit_forwarding; DROP TABLE delivery_attempts; DROP TABLE audit_events; DROP TABLE sessions; DROP TABLE users; ALTER TABLE deliveries DROP COLUMN attempts_at_release;',
  );
  old.connection.exec(WITHOUT_NODES);
  sqliteOf(old).pragma('user_version = 3');
  old.close();

  const store = JobStore.open(location);
  t.teardown(() => store.close());
  t.is(sqliteOf(store).pragma('user_version'), SQLITE_MIGRATIONS.length);
  const tables = (
    store.connection.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).all() as Array<{
      name: string;
    }>
  ).map((r) => r.name);
  for (const name of ['delivery_attempts', 'audit_events', 'users', 'sessions']) t.true(tables.includes(name), name);
  t.like(store.listJobs(), [{ studyInstanceUid: '8.1', state: 'ready' }]);
});

test('schema v5: a version 4 file gains the audit forwarding cursor, keeping its audit rows', (t) => {
  const location = file();
  const old = JobStore.open(location);
  old.connection.exec(
    `INSERT INTO audit_events (at, category, action, outcome) VALUES (1, 'admin', 'user.login', 'success');
     DROP TABLE audit_forwarding; DROP TABLE cluster;`,
  );
  old.connection.exec(WITHOUT_NODES);
  sqliteOf(old).pragma('user_version = 4');
  old.close();

  const store = JobStore.open(location);
  t.teardown(() => store.close());
  t.is(sqliteOf(store).pragma('user_version'), SQLITE_MIGRATIONS.length);
  t.deepEqual(store.connection.prepare('SELECT channel FROM audit_forwarding').all(), []);
  t.is((store.connection.prepare('SELECT COUNT(*) AS n FROM audit_events').get() as { n: number }).n, 1);
});

/** A database of the other engine that only records what is asked of it (every query answers nothing). */
function recordingPostgres(): { db: SqlDatabase; calls: string[] } {
  const calls: string[] = [];
  const db: SqlDatabase = {
    dialect: 'postgres',
    prepare: (sql) => {
      calls.push(`prepare ${sql.replace(/\s+/g, ' ').trim()}`);
      return { run: () => ({ changes: 0 }), get: () => ({ n: 0 }), all: () => [] };
    },
    transaction:
      <A extends unknown[], R>(fn: (...args: A) => R) =>
      (...args: A): R => {
        calls.push('transaction');
        return fn(...args);
      },
    exec: (sql) => void calls.push(`exec ${sql}`),
    close: () => void calls.push('close'),
  };
  return { db, calls };
}

test('fromDatabase on a postgres database runs nothing of its own (no SQLite migration, no PRAGMA): migrating is its opener’s part', (t) => {
  const { db, calls } = recordingPostgres();
  const store = JobStore.fromDatabase(db);
  t.deepEqual(calls, []);
  t.is(store.connection, db);
  t.is(store.dataVersion(), undefined, 'no data_version counter on PostgreSQL');
  t.is(store.countStudies('ready'), 0);
  t.deepEqual(calls, ['prepare SELECT COUNT(*) AS n FROM studies WHERE state = ?']);
  store.close();
  t.deepEqual(calls.slice(1), ['close']);
});

test('fromDatabase on a SQLite file: used as its opener left it (migrated: it works; not migrated: left untouched)', (t) => {
  const migrated = SqliteDatabase.open(file());
  migrateSqlite(migrated);
  const store = JobStore.fromDatabase(migrated);
  t.teardown(() => store.close());
  store.recordInstance(receivedInstance('9.1', 1000));
  t.like(store.promoteQuietStudies(1000, 1000), [{ studyInstanceUid: '9.1', revision: 0 }]);
  t.is(typeof store.dataVersion(), 'number');

  const bare = SqliteDatabase.open(file());
  t.teardown(() => bare.close());
  JobStore.fromDatabase(bare);
  t.is(bare.pragma('user_version'), 0);
  t.deepEqual(bare.prepare(`SELECT name FROM sqlite_master`).all(), []);
});
