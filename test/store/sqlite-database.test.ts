import test from 'ava';
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SqliteDatabase } from '../../src/store/sqlite-database.js';

const file = () => path.join(mkdtempSync(path.join(os.tmpdir(), 'sqlite-db-')), 'nested', 'jobs.sqlite');

function withTable(db: SqliteDatabase): void {
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT NOT NULL UNIQUE)');
}

const values = (db: SqliteDatabase) =>
  (db.prepare('SELECT v FROM t ORDER BY id').all() as Array<{ v: string }>).map((r) => r.v);

test("open creates the folder and sets today's pragmas: WAL, synchronous FULL, foreign keys, busy timeout", (t) => {
  const location = file();
  const db = SqliteDatabase.open(location);
  t.teardown(() => db.close());
  t.true(existsSync(location));
  t.is(db.dialect, 'sqlite');
  t.is(db.pragma('journal_mode'), 'wal');
  t.is(db.pragma('synchronous'), 2, 'FULL');
  t.is(db.pragma('foreign_keys'), 1);
  t.is(db.pragma('busy_timeout'), 5000);
  db.exec(
    'CREATE TABLE parent (id INTEGER PRIMARY KEY); CREATE TABLE child (p INTEGER NOT NULL REFERENCES parent (id))',
  );
  t.throws(() => db.prepare('INSERT INTO child (p) VALUES (?)').run(7), { any: true, message: /FOREIGN KEY/ });
});

test('statements: run counts changes, RETURNING comes back through get, ON CONFLICT DO NOTHING changes nothing', (t) => {
  const db = SqliteDatabase.open(file());
  t.teardown(() => db.close());
  withTable(db);
  t.like(db.prepare('INSERT INTO t (v) VALUES (?) RETURNING id').get('a'), { id: 1 });
  t.like(db.prepare('INSERT INTO t (v) VALUES (?) RETURNING id').get('b'), { id: 2 });
  t.is(db.prepare('INSERT INTO t (v) VALUES (?) ON CONFLICT (v) DO NOTHING').run('a').changes, 0);
  t.is(db.prepare('UPDATE t SET v = v || ?').run('!').changes, 2);
  t.deepEqual(values(db), ['a!', 'b!']);
  t.is(db.prepare('SELECT v FROM t WHERE id = ?').get(99), undefined);
});

test('transaction: commits when fn returns, rolls back when it throws; nested, the inner one is a savepoint', (t) => {
  const db = SqliteDatabase.open(file());
  t.teardown(() => db.close());
  withTable(db);
  const insert = (v: string) => db.prepare('INSERT INTO t (v) VALUES (?)').run(v);
  t.is(
    db.transaction((v: string) => {
      insert(v);
      return 'done';
    })('kept'),
    'done',
  );
  t.throws(
    () =>
      db.transaction(() => {
        insert('lost');
        throw new Error('boom');
      })(),
    { message: 'boom' },
  );
  db.transaction(() => {
    insert('outer');
    t.throws(() =>
      db.transaction(() => {
        insert('inner');
        throw new Error('inner fails');
      })(),
    );
    insert('after');
  })();
  t.deepEqual(values(db), ['kept', 'outer', 'after']);
});

test('read-only: writes are refused, and a missing file is not created', (t) => {
  const location = file();
  const writer = SqliteDatabase.open(location);
  withTable(writer);
  writer.prepare('INSERT INTO t (v) VALUES (?)').run('x');
  const reader = SqliteDatabase.openReadOnly(location);
  t.teardown(() => {
    reader.close();
    writer.close();
  });
  t.deepEqual(values(reader), ['x']);
  t.throws(() => reader.prepare('INSERT INTO t (v) VALUES (?)').run('y'), { any: true, message: /readonly/ });
  const missing = path.join(path.dirname(location), 'missing.sqlite');
  t.throws(() => SqliteDatabase.openReadOnly(missing), { any: true, message: /unable to open/ });
  t.false(existsSync(missing));
});

test("dataVersion moves when another connection commits, not on this connection's own commits", (t) => {
  const location = file();
  const daemon = SqliteDatabase.open(location);
  const cli = SqliteDatabase.open(location);
  t.teardown(() => {
    cli.close();
    daemon.close();
  });
  withTable(daemon);
  const before = daemon.dataVersion();
  daemon.prepare('INSERT INTO t (v) VALUES (?)').run('own');
  t.is(daemon.dataVersion(), before);
  cli.prepare('INSERT INTO t (v) VALUES (?)').run('other');
  t.not(daemon.dataVersion(), before);
});
