// A lost connection: the statement in flight (or the transaction) fails with STORE_UNAVAILABLE and a clear
// message, and the next statement outside a transaction connects again. This file stops its own cluster.
import test from 'ava';
import { spawn } from 'node:child_process';
import type { GatewayError } from '../../../src/errors.js';
import { PostgresDatabase } from '../../../src/store/postgres/postgres-database.js';
import { startPostgres, type PostgresUnderTest } from '../../helpers/postgres.js';

let cluster: PostgresUnderTest;
test.before(async () => {
  cluster = await startPostgres();
});
test.after.always(async () => {
  await cluster?.stop();
});

function codeOf(error: unknown): string | undefined {
  return (error as GatewayError | undefined)?.code;
}

test.serial('the server stopped: STORE_UNAVAILABLE while it is down, a new connection once it is back', async (t) => {
  const db = PostgresDatabase.open({ url: await cluster.createDatabase(), connectTimeoutMs: 2_000 });
  t.teardown(() => db.close());
  db.exec('CREATE TABLE a (v INTEGER); INSERT INTO a VALUES (1)');
  await cluster.stopServer();
  const down = t.throws(() => db.prepare('SELECT v FROM a').all());
  t.is(codeOf(down), 'STORE_UNAVAILABLE');
  t.regex(down?.message ?? '', /PostgreSQL cannot be reached or dropped the connection/);
  t.is(codeOf(t.throws(() => db.prepare('SELECT v FROM a').all())), 'STORE_UNAVAILABLE', 'still down');
  await cluster.startServer();
  t.deepEqual(db.prepare('SELECT v FROM a').all(), [{ v: 1 }]);
});

test.serial('a connection lost inside a transaction fails all of it; the next statement reconnects', async (t) => {
  const url = await cluster.createDatabase();
  const db = PostgresDatabase.open({ url, applicationName: 'victim-tx' });
  const other = PostgresDatabase.open({ url });
  t.teardown(() => {
    db.close();
    other.close();
  });
  db.exec('CREATE TABLE a (v INTEGER)');
  const insert = db.prepare('INSERT INTO a VALUES (?)');
  const kill = other.prepare(
    'SELECT COUNT(pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE application_name = ?',
  );
  const failures: unknown[] = [];
  const error = t.throws(() =>
    db.transaction(() => {
      insert.run(1);
      t.deepEqual(kill.get('victim-tx'), { n: 1 });
      // Each later statement of the transaction fails as well: on a new connection it would commit alone.
      for (const v of [2, 3]) {
        try {
          insert.run(v);
        } catch (failure) {
          failures.push(failure);
        }
      }
    })(),
  );
  t.deepEqual(
    failures.map((f) => codeOf(f)),
    ['STORE_UNAVAILABLE', 'STORE_UNAVAILABLE'],
  );
  t.is(codeOf(error), 'STORE_UNAVAILABLE', 'COMMIT refuses too');
  t.deepEqual(db.prepare('SELECT v FROM a').all(), [], 'nothing of the lost transaction was written');
  insert.run(4);
  t.deepEqual(db.prepare('SELECT v FROM a').all(), [{ v: 4 }]);
});

test.serial('the statement in flight when its connection is killed fails; the next one reconnects', async (t) => {
  const db = PostgresDatabase.open({ url: await cluster.createDatabase(), applicationName: 'victim-flight' });
  t.teardown(() => db.close());
  // Another process ends the session once it is running the long statement (this thread is blocked meanwhile).
  const killer = spawn(
    'sh',
    [
      '-c',
      `until [ "$(psql -h 127.0.0.1 -p ${cluster.port} -U postgres -d postgres -tAc "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'victim-flight' AND query LIKE 'SELECT pg_sleep%'")" = 1 ]; do :; done`,
    ],
    { stdio: 'ignore' },
  );
  t.teardown(() => killer.kill('SIGKILL'));
  const started = Date.now();
  const error = t.throws(() => db.prepare('SELECT pg_sleep(60)').get());
  t.is(codeOf(error), 'STORE_UNAVAILABLE');
  t.regex(error?.message ?? '', /57P01|terminat/);
  t.true(Date.now() - started < 30_000);
  t.deepEqual(db.prepare('SELECT 5 AS n').get(), { n: 5 });
});

test.serial('a server that stops answering inside a transaction: the answer timeout fails all of it', async (t) => {
  // Long enough that the statements before the freeze never hit it on a loaded machine (the one wait is paid once).
  const db = PostgresDatabase.open({ url: await cluster.createDatabase(), answerTimeoutMs: 3_000 });
  t.teardown(() => db.close());
  db.exec('CREATE TABLE a (v INTEGER)');
  const insert = db.prepare('INSERT INTO a VALUES (?)');
  let backend = 0;
  t.teardown(() => {
    // The backend is a process of this file's own cluster; it must run again to end its session.
    if (backend > 0) process.kill(backend, 'SIGCONT');
  });
  const failures: unknown[] = [];
  const error = t.throws(() =>
    db.transaction(() => {
      insert.run(1);
      backend = (db.prepare('SELECT pg_backend_pid() AS pid').get() as { pid: number }).pid;
      // Frozen, the backend keeps the socket open and answers nothing: only the bridge's own timeout ends it.
      process.kill(backend, 'SIGSTOP');
      for (const v of [2, 3]) {
        try {
          insert.run(v);
        } catch (failure) {
          failures.push(failure);
        }
      }
    })(),
  );
  t.deepEqual(
    failures.map((f) => (f as Error).message.replace(/;.*/, '')),
    [
      'PostgreSQL did not answer within 3000 ms',
      'the connection to PostgreSQL was lost inside this transaction: none of it is committed',
    ],
  );
  t.deepEqual(
    failures.map((f) => codeOf(f)),
    ['STORE_UNAVAILABLE', 'STORE_UNAVAILABLE'],
  );
  t.is(codeOf(error), 'STORE_UNAVAILABLE');
  process.kill(backend, 'SIGCONT');
  backend = 0;
  t.deepEqual(db.prepare('SELECT v FROM a').all(), [], 'a new connection; nothing of the transaction is there');
});
