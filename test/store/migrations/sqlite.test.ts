import test from 'ava';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { JobStore } from '../../../src/store/job-store.js';
import { migrateSqlite, SQLITE_MIGRATIONS } from '../../../src/store/migrations/sqlite.js';
import { SqliteDatabase } from '../../../src/store/sqlite-database.js';
import { sqliteOf } from '../../helpers/sqlite-of.js';

const file = () => path.join(mkdtempSync(path.join(os.tmpdir(), 'sqlite-migrations-')), 'jobs.sqlite');

const tables = (db: SqliteDatabase) =>
  (
    db
      .prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'sqlite_sequence' ORDER BY name`)
      .all() as Array<{
      name: string;
    }>
  ).map((r) => r.name);

test('a file left at version 2 by an older release (made with the first 2 migrations) opens, migrates to the newest and keeps its rows', (t) => {
  const location = file();
  const old = SqliteDatabase.open(location);
  migrateSqlite(old, 2);
  t.is(old.pragma('user_version'), 2);
  t.deepEqual(tables(old), ['deliveries', 'instances', 'job_images', 'jobs', 'studies']);
  old.exec(
    `INSERT INTO studies (study_instance_uid, state, revision, instance_count, first_received_at, last_received_at, calling_ae)
       VALUES ('5.1', 'ready', 0, 1, 1000, 1000, 'DX1');
     INSERT INTO jobs (study_instance_uid, revision, state, instance_count, created_at, updated_at, priority, rule, action)
       VALUES ('5.1', 0, 'delivering', 1, 1000, 1000, 'urgent', 'chest', '{}');
     INSERT INTO job_images (job_id, sop_instance_uid, path, state, updated_at) VALUES (1, '5.1.1', '/p', 'written', 1000);
     INSERT INTO deliveries (job_id, kind, destination, payload, state, attempts, next_attempt_at, updated_at)
       VALUES (1, 'pacs', 'pacs-a', '{}', 'pending', 2, 1000, 1000);`,
  );
  old.close();

  const store = JobStore.open(location);
  t.teardown(() => store.close());
  const db = sqliteOf(store);
  t.is(db.pragma('user_version'), SQLITE_MIGRATIONS.length);
  t.deepEqual(tables(db), [
    'audit_events',
    'audit_forwarding',
    'cluster',
    'commitment_reports',
    'deliveries',
    'delivery_attempts',
    'instances',
    'job_images',
    'jobs',
    'nodes',
    'sessions',
    'studies',
    'users',
  ]);
  t.like(store.listJobs(), [{ id: 1, studyInstanceUid: '5.1', state: 'delivering', priority: 'urgent' }]);
  t.deepEqual(db.prepare('SELECT crashes FROM job_images').all(), [{ crashes: 0 }]);
  t.deepEqual(db.prepare('SELECT attempts, attempts_at_release FROM deliveries').all(), [
    { attempts: 2, attempts_at_release: 0 },
  ]);
});

test('a file at the newest version is left as it is; a newer file than this release knows is not touched', (t) => {
  const location = file();
  JobStore.open(location).close();
  const db = SqliteDatabase.open(location);
  t.teardown(() => db.close());
  const before = tables(db);
  migrateSqlite(db);
  t.is(db.pragma('user_version'), SQLITE_MIGRATIONS.length);
  t.deepEqual(tables(db), before);
  db.pragma(`user_version = ${SQLITE_MIGRATIONS.length + 1}`);
  migrateSqlite(db);
  t.is(db.pragma('user_version'), SQLITE_MIGRATIONS.length + 1);
});

test('a step that fails rolls back alone: the file stays at the last version that committed', (t) => {
  const location = file();
  const db = SqliteDatabase.open(location);
  t.teardown(() => db.close());
  migrateSqlite(db, 4);
  // Version 5 creates audit_forwarding: a table of that name already there makes the step fail.
  db.exec('CREATE TABLE audit_forwarding (x INTEGER)');
  t.throws(() => migrateSqlite(db), { any: true, message: /already exists/ });
  t.is(db.pragma('user_version'), 4);
  t.true(tables(db).includes('users'), 'version 4 kept');
});

test('version 6: a version 5 file gains one cluster id, random per file, kept by every later opening', (t) => {
  const ids = [file(), file()].map((location) => {
    const db = SqliteDatabase.open(location);
    migrateSqlite(db, 5);
    t.false(tables(db).includes('cluster'));
    db.close();
    const store = JobStore.open(location);
    const rows = store.connection.prepare('SELECT id, created_at FROM cluster').all() as Array<{
      id: string;
      created_at: number;
    }>;
    store.close();
    t.is(rows.length, 1);
    t.true(Math.abs((rows[0]?.created_at ?? 0) - Date.now()) < 60_000, 'created_at is epoch milliseconds');
    const again = JobStore.open(location);
    t.deepEqual(again.connection.prepare('SELECT id FROM cluster').all(), [{ id: rows[0]?.id }]);
    again.close();
    return rows[0]?.id;
  });
  t.regex(ids[0] ?? '', /^[0-9a-f]{32}$/);
  t.not(ids[0], ids[1]);
});
