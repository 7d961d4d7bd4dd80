import test from 'ava';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { CommitmentRegistry, type CommitmentReport } from '../../src/dimse/commitment-registry.js';
import type { TimerScheduler } from '../../src/dimse/upper-layer.js';
import { GatewayError } from '../../src/errors.js';
import { createLogger } from '../../src/logging/logger.js';
import { CommitmentRelay } from '../../src/store/commitment-relay.js';
import { JobStore } from '../../src/store/job-store.js';

/** A clock the test moves: timers fire when `advance` passes their time, never by themselves. */
function fakeClock() {
  let now = 0;
  const timers = new Set<{ at: number; fire: () => void }>();
  const schedule: TimerScheduler = (ms, fire) => {
    const timer = { at: now + ms, fire };
    timers.add(timer);
    return () => timers.delete(timer);
  };
  return {
    schedule,
    pending: () => timers.size,
    advance(ms: number) {
      now += ms;
      for (const timer of [...timers].sort((a, b) => a.at - b.at)) {
        if (timer.at > now) continue;
        timers.delete(timer);
        timer.fire();
      }
    },
  };
}

function registryWithLog() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n'))
      if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
  });
  const clock = fakeClock();
  const registry = new CommitmentRegistry({
    logger: createLogger({ level: 'info', format: 'json', stream, captureLibraryOutput: false }),
    schedule: clock.schedule,
  });
  return { registry, clock, lines };
}

function report(transactionUid: string, overrides: Partial<CommitmentReport> = {}): CommitmentReport {
  return {
    transactionUid,
    eventTypeId: 1,
    committed: [{ sopClassUid: '1.2.840.10008.5.1.4.1.1.7', sopInstanceUid: '1.2.3' }],
    failed: [],
    via: 'new-association',
    callingAe: 'ORTHANC',
    peer: '127.0.0.1',
    ...overrides,
  };
}

test('a report reaches the delivery waiting for its transaction, and only that one', async (t) => {
  const { registry, clock } = registryWithLog();
  const a = registry.expect('2.25.1', 300_000);
  const b = registry.expect('2.25.2', 300_000);
  t.is(registry.waiting, 2);
  t.true(registry.report(report('2.25.2')));
  t.deepEqual(await b.result, { kind: 'reported', report: report('2.25.2') });
  t.is(registry.waiting, 1);
  a.cancel();
  t.deepEqual(await a.result, { kind: 'cancelled' });
  t.is(clock.pending(), 0, 'no timer left behind');
});

test('no report within the timeout: the wait ends with a timeout at exactly that time, and a late report is logged', async (t) => {
  const { registry, clock, lines } = registryWithLog();
  const wait = registry.expect('2.25.9', 5000);
  let settled = false;
  void wait.result.then(() => (settled = true));
  clock.advance(4999);
  await Promise.resolve();
  t.false(settled);
  clock.advance(1);
  t.deepEqual(await wait.result, { kind: 'timeout', waitedMs: 5000 });
  t.is(registry.waiting, 0);
  // The PACS reports after all: nobody waits any more; it is logged (and the SCP answers it success).
  t.false(
    registry.report(
      report('2.25.9', { failed: [{ sopClassUid: '1.2', sopInstanceUid: '1.3', failureReason: 0x0112 }] }),
    ),
  );
  t.like(
    lines.find((l) => l.event === 'DIMSE-1204'),
    {
      level: 'warn',
      transactionUid: '2.25.9',
      callingAe: 'ORTHANC',
      committed: 1,
      failed: 1,
    },
  );
});

test('a report for a transaction nobody ever waited for (after a restart) is logged, not an error', (t) => {
  const { registry, lines } = registryWithLog();
  t.false(registry.report(report('2.25.77', { via: 'same-association' })));
  t.like(
    lines.find((l) => l.event === 'DIMSE-1204'),
    { transactionUid: '2.25.77', via: 'same-association' },
  );
});

test('cancelAll ends every wait; the same UID waited for twice at once is a bug', async (t) => {
  const { registry, clock } = registryWithLog();
  const a = registry.expect('2.25.5', 1000);
  const error = t.throws(() => registry.expect('2.25.5', 1000), { instanceOf: GatewayError });
  t.is((error as GatewayError).code, 'COMMITMENT_TRANSACTION_REUSED');
  registry.cancelAll();
  t.deepEqual(await a.result, { kind: 'cancelled' });
  t.is(clock.pending(), 0);
  // The UID is free again once its wait is over.
  registry.expect('2.25.5', 1000).cancel();
});

// Nodes sharing one store (issue 20): the PACS's report reaches one node, the delivery waits on another.
function twoNodes(relayB: Pick<CommitmentRelay, 'put' | 'take' | 'expire'> | undefined = undefined) {
  const store = JobStore.open(path.join(mkdtempSync(path.join(os.tmpdir(), 'commitment-relay-')), 'jobs.sqlite'));
  const a = registryWithLog();
  a.registry.relayThrough(new CommitmentRelay(store.connection, 'node-a'));
  const b = registryWithLog();
  b.registry.relayThrough(relayB ?? new CommitmentRelay(store.connection, 'node-b'));
  return { store, a, b };
}

test('a report that reaches another node is kept in the store and taken by the node that waits, at its next look', async (t) => {
  const { store, a, b } = twoNodes();
  t.teardown(() => store.close());
  const waiting = a.registry.expect('2.25.500', 10_000);
  t.true(
    b.registry.report(
      report('2.25.500', { failed: [{ sopClassUid: '1.2', sopInstanceUid: '1.2.4', failureReason: 0x0110 }] }),
    ),
  );
  t.like(
    b.lines.find((l) => l.event === 'DIMSE-1208'),
    { level: 'info', transactionUid: '2.25.500', committed: 1, failed: 1 },
  );
  t.is(b.lines.filter((l) => l.event === 'DIMSE-1204').length, 0, 'not a report nobody waits for');

  a.clock.advance(1000);
  const wait = await waiting.result;
  t.is(wait.kind, 'reported');
  if (wait.kind === 'reported') {
    t.deepEqual(
      wait.report,
      report('2.25.500', { failed: [{ sopClassUid: '1.2', sopInstanceUid: '1.2.4', failureReason: 0x0110 }] }),
    );
  }
  t.is(a.registry.waiting, 0);
  t.is(a.clock.pending(), 0, 'no timeout and no look left once nothing is waited for');
  t.deepEqual(store.connection.prepare('SELECT transaction_uid FROM commitment_reports').all(), [], 'taken');
});

test("a node waits only for its own transactions: another's report stays in the store for it; a late one expires after a day", async (t) => {
  const { store, a, b } = twoNodes();
  t.teardown(() => store.close());
  const mine = a.registry.expect('2.25.600', 10_000);
  b.registry.report(report('2.25.601'));
  b.registry.report(report('2.25.601'));
  a.clock.advance(1000);
  t.is(a.registry.waiting, 1);
  t.deepEqual(store.connection.prepare('SELECT transaction_uid, received_by FROM commitment_reports').all(), [
    { transaction_uid: '2.25.601', received_by: 'node-b' },
  ]);
  a.clock.advance(9000);
  t.is((await mine.result).kind, 'timeout');
  t.is(new CommitmentRelay(store.connection, 'node-a').expire(Date.now() + 1), 1);
});

test('a store that will not keep the report: report() throws (the SCP answers with a failure: commitment-report-scp)', (t) => {
  const refusing = {
    put: () => {
      throw new Error('database or disk is full');
    },
    take: () => [],
    expire: () => 0,
  };
  const { store, b } = twoNodes(refusing);
  t.teardown(() => store.close());
  t.throws(() => b.registry.report(report('2.25.700')), { message: /disk is full/ });
});
