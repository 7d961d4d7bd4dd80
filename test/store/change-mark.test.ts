// The store's change mark (store/change-mark.ts), which the daemon's store watch polls: it moves when another
// connection (the CLI, another node) commits, on both engines.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { changeMark } from '../../src/store/change-mark.js';
import { openStore, type StoreLocation } from '../../src/store/open-store.js';
import { startPostgres, type PostgresUnderTest } from '../helpers/postgres.js';

let cluster: PostgresUnderTest;
test.before(async () => {
  cluster = await startPostgres();
});
test.after.always(async () => {
  await cluster?.stop();
});

async function location(engine: 'sqlite' | 'postgres', t: { teardown(fn: () => void): void }): Promise<StoreLocation> {
  if (engine === 'postgres') {
    const url = await cluster.createDatabase();
    return { engine, url, statementTimeoutMs: 10_000, connectTimeoutMs: 5_000 };
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cxr-change-mark-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return { engine, file: path.join(dir, 'store.sqlite') };
}

for (const engine of ['sqlite', 'postgres'] as const) {
  test(`[${engine}] a commit by another connection moves the mark the daemon's connection reads`, async (t) => {
    const where = await location(engine, t);
    const daemon = openStore(where, 'write').store;
    t.teardown(() => daemon.close());
    const cli = openStore(where, 'write').store;
    t.teardown(() => cli.close());
    const before = changeMark(daemon.connection);
    t.true(Number.isSafeInteger(before));
    cli.connection
      .prepare('INSERT INTO audit_forwarding (channel, last_id, started_at, updated_at) VALUES (?, ?, ?, ?)')
      .run('syslog', 0, 1, 1);
    const after = changeMark(daemon.connection);
    t.not(after, before);
  });
}
