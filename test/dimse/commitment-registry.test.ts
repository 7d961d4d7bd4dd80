import test from 'ava';
import { PassThrough } from 'node:stream';
import { CommitmentRegistry, type CommitmentReport } from '../../src/dimse/commitment-registry.js';
import type { TimerScheduler } from '../../src/dimse/upper-layer.js';
import { GatewayError } from '../../src/errors.js';
import { createLogger } from '../../src/logging/logger.js';

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
