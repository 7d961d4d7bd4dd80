import test from 'ava';
import { GatewayError } from '../../src/errors.js';
import { FAILURE_CLASSES, failureClassOf, nextAttemptAt, type RetryPolicy } from '../../src/export/retry-policy.js';

const policy: RetryPolicy = { initialDelayMs: 1_000, multiplier: 2, maxDelayMs: 10_000, maxAttempts: 6, jitter: 0.5 };
const now = new Date('2024-03-01T10:00:00Z');

test('backs off exponentially up to the maximum delay', (t) => {
  const delays = [1, 2, 3, 4, 5].map((attempt) => {
    const next = nextAttemptAt(attempt, now, { ...policy, jitter: 0 }, () => 0.5);
    return next.kind === 'retry' ? next.delayMs : -1;
  });
  t.deepEqual(delays, [1_000, 2_000, 4_000, 8_000, 10_000]);
});

test('the time is now + delay', (t) => {
  const next = nextAttemptAt(2, now, policy, () => 0);
  t.deepEqual(next, { kind: 'retry', at: new Date(now.getTime() + 2_000), delayMs: 2_000 });
});

test('jitter only shortens the delay, by at most its share', (t) => {
  t.like(
    nextAttemptAt(3, now, policy, () => 0),
    { delayMs: 4_000 },
  );
  t.like(
    nextAttemptAt(3, now, policy, () => 0.999999),
    { delayMs: 2_000 },
  );
  t.like(
    nextAttemptAt(3, now, policy, () => 0.5),
    { delayMs: 3_000 },
  );
  // A random source out of range cannot push the delay outside the bounds.
  t.like(
    nextAttemptAt(5, now, policy, () => -3),
    { delayMs: 10_000 },
  );
  t.like(
    nextAttemptAt(5, now, policy, () => 7),
    { delayMs: 5_000 },
  );
});

test('parks after the maximum number of attempts, saying how many', (t) => {
  t.is(nextAttemptAt(5, now, policy, Math.random).kind, 'retry');
  t.deepEqual(nextAttemptAt(6, now, policy, Math.random), {
    kind: 'park',
    reason: 'gave up after 6 failed attempts (the retry policy allows 6)',
  });
  t.is(nextAttemptAt(1, now, { ...policy, maxAttempts: 1 }, Math.random).kind, 'park');
});

test('refuses a policy or attempt that makes no sense', (t) => {
  t.throws(() => nextAttemptAt(0, now, policy, Math.random), { instanceOf: GatewayError, message: /attempt must be/ });
  t.throws(() => nextAttemptAt(1, now, { ...policy, jitter: 1.5 }, Math.random), {
    instanceOf: GatewayError,
    message: /jitter/,
  });
  t.throws(() => nextAttemptAt(1, now, { ...policy, multiplier: 0.5 }, Math.random), {
    instanceOf: GatewayError,
    message: /multiplier/,
  });
  t.throws(() => nextAttemptAt(1, now, { ...policy, maxDelayMs: 10 }, Math.random), {
    instanceOf: GatewayError,
    message: /maxDelayMs/,
  });
  t.throws(() => nextAttemptAt(1, now, { ...policy, maxAttempts: 0 }, Math.random), {
    instanceOf: GatewayError,
    message: /maxAttempts/,
  });
});

test('transient failures retry without limit by default, with the delay capped; a limit can be set', (t) => {
  const transient = nextAttemptAt(100_000, now, { ...policy, jitter: 0 }, () => 0, 'transient');
  t.deepEqual(transient, { kind: 'retry', at: new Date(now.getTime() + 10_000), delayMs: 10_000 });
  t.like(nextAttemptAt(5, now, { ...policy, transientMaxAttempts: 5 }, Math.random, 'transient'), {
    kind: 'park',
    reason: 'gave up after 5 failed attempts (the retry policy allows 5 for transient failures)',
  });
  t.throws(() => nextAttemptAt(1, now, { ...policy, transientMaxAttempts: -1 }, Math.random, 'transient'), {
    message: /transientMaxAttempts/,
  });
});

test('permanent refusals park at the first by default, or after permanentMaxAttempts; unknown ones after maxAttempts', (t) => {
  t.is(nextAttemptAt(1, now, policy, Math.random, 'permanent').kind, 'park');
  t.is(nextAttemptAt(1, now, { ...policy, permanentMaxAttempts: 2 }, Math.random, 'permanent').kind, 'retry');
  t.is(nextAttemptAt(2, now, { ...policy, permanentMaxAttempts: 2 }, Math.random, 'permanent').kind, 'park');
  t.is(nextAttemptAt(5, now, policy, Math.random, 'unknown').kind, 'retry');
  t.is(nextAttemptAt(6, now, policy, Math.random, 'unknown').kind, 'park');
});

test('the one classification table: outages and busy peers are transient, refusals of content permanent', (t) => {
  for (const cause of [
    'connection-refused',
    'connect-timeout',
    'connect-failed',
    'connection-reset',
    'no-ack',
    'response-timeout',
    'association-aborted',
    'pacs-out-of-resources',
    'application-error',
    'commit-error',
    'folder-full',
    'destination-not-configured',
  ]) {
    t.is(failureClassOf(cause, 'retry'), 'transient', cause);
  }
  for (const cause of [
    'application-reject',
    'commit-reject',
    'application-error-message',
    'pacs-refused-object',
    'invalid-object',
    'invalid-message',
    'payload-mismatch',
  ]) {
    t.is(failureClassOf(cause, 'parked'), 'permanent', cause);
  }
  t.is(failureClassOf('pacs-failure', 'retry'), 'unknown');
  // A cause missing from the table: a park is permanent, a retry unknown (bounded).
  t.is(failureClassOf('something-new', 'parked'), 'permanent');
  t.is(failureClassOf('something-new', 'retry'), 'unknown');
  for (const [cause, entry] of Object.entries(FAILURE_CLASSES)) t.regex(cause, /^[a-z][a-z0-9-]+$/, entry.meaning);
});
