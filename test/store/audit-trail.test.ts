import test from 'ava';
import { AuditTrail, RepeatLimiter, type AuditRecord } from '../../src/store/audit-trail.js';
import { consoleFixture } from './console-fixtures.js';
import { engineTests } from './engines.js';

const forEachEngine = engineTests(test);

const entry = (over: Partial<AuditRecord>): AuditRecord => ({
  category: 'admin',
  action: 'delivery.release',
  user: 'alice',
  role: 'admin',
  address: '10.0.0.7',
  target: 'delivery 1',
  outcome: 'success',
  ...over,
});

forEachEngine(
  'entries are kept with before/after as JSON text, listed newest first, filtered by category, action, user and time, paged with the total',
  (t, location) => {
    const f = consoleFixture('audit-', { location });
    t.teardown(() => f.store.close());
    const trail = new AuditTrail(f.store.connection);
    const first = trail.record(
      entry({ before: { state: 'parked' }, after: { state: 'pending' }, detail: 'why' }),
      1000,
    );
    trail.record(entry({ action: 'delivery.discard', user: 'bob', role: 'viewer' }), 2000);
    trail.record(entry({ category: 'security', action: 'user.login-failed', user: null, outcome: 'failure' }), 3000);
    trail.record(entry({ action: 'study.reprocess', detail: 'x'.repeat(5000) }), 4000);

    const all = trail.list({ offset: 0, limit: 10 });
    t.is(all.total, 4);
    t.deepEqual(
      all.items.map((e) => e.at),
      [4000, 3000, 2000, 1000],
    );
    t.deepEqual(all.items[3], {
      id: first,
      at: 1000,
      category: 'admin',
      action: 'delivery.release',
      user: 'alice',
      role: 'admin',
      address: '10.0.0.7',
      target: 'delivery 1',
      outcome: 'success',
      before: '{"state":"parked"}',
      after: '{"state":"pending"}',
      detail: 'why',
    });
    t.like(all.items[2], { before: null, after: null, detail: null });
    t.is(all.items[0]?.detail?.length, 2000, 'a detail is a line, not a dump');
    t.is(trail.list({ offset: 0, limit: 10, category: 'security' }).items[0]?.outcome, 'failure');
    t.is(trail.list({ offset: 0, limit: 10, action: 'delivery.discard' }).items[0]?.user, 'bob');
    t.is(trail.list({ offset: 0, limit: 10, user: 'alice' }).total, 2);
    t.is(trail.list({ offset: 0, limit: 10, since: 2000, until: 4000 }).total, 2);
    const page = trail.list({ offset: 1, limit: 2 });
    t.like(page, { total: 4, offset: 1, limit: 2 });
    t.deepEqual(
      page.items.map((e) => e.at),
      [3000, 2000],
    );
  },
);

forEachEngine(
  'an entry recorded inside a transaction that fails is rolled back with it (action and audit commit together)',
  (t, location) => {
    const f = consoleFixture('audit-tx-', { location });
    t.teardown(() => f.store.close());
    const trail = new AuditTrail(f.store.connection);
    t.throws(() =>
      f.store.connection.transaction(() => {
        trail.record(entry({}), 1000);
        throw new Error('the action failed after its audit entry');
      })(),
    );
    t.is(trail.list({ offset: 0, limit: 10 }).total, 0);
    // Nested (a savepoint): the inner record commits with the outer transaction.
    f.store.connection.transaction(() => {
      f.store.connection.transaction(() => trail.record(entry({}), 2000))();
    })();
    t.is(trail.list({ offset: 0, limit: 10 }).total, 1);
  },
);

test('RepeatLimiter: one event per key and window; the next recorded one says how many were left out (no store)', (t) => {
  const limiter = new RepeatLimiter(60_000, 2);
  t.is(limiter.admit('10.0.0.9', 0), 0);
  t.is(limiter.admit('10.0.0.9', 1_000), undefined);
  t.is(limiter.admit('10.0.0.9', 59_999), undefined);
  t.is(limiter.admit('10.0.0.7', 2_000), 0, 'another address has its own window');
  t.is(limiter.admit('10.0.0.9', 60_000), 2, 'a new window: recorded, with the two left out');
  t.is(limiter.admit('10.0.0.9', 60_001), undefined);
  // maxKeys 2: a third address forgets the oldest (10.0.0.7), which then starts afresh.
  t.is(limiter.admit('10.0.0.5', 61_000), 0);
  t.is(limiter.admit('10.0.0.7', 62_000), 0);
});
