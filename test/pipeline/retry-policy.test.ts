import test from 'ava';
import { GatewayError } from '../../src/errors.js';
import { nextAttemptAt, type RetryPolicy } from '../../src/pipeline/retry-policy.js';

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
  t.like(nextAttemptAt(3, now, policy, () => 0), { delayMs: 4_000 });
  t.like(nextAttemptAt(3, now, policy, () => 0.999999), { delayMs: 2_000 });
  t.like(nextAttemptAt(3, now, policy, () => 0.5), { delayMs: 3_000 });
  // A random source out of range cannot push the delay outside the bounds.
  t.like(nextAttemptAt(5, now, policy, () => -3), { delayMs: 10_000 });
  t.like(nextAttemptAt(5, now, policy, () => 7), { delayMs: 5_000 });
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
  t.throws(() => nextAttemptAt(1, now, { ...policy, jitter: 1.5 }, Math.random), { instanceOf: GatewayError, message: /jitter/ });
  t.throws(() => nextAttemptAt(1, now, { ...policy, multiplier: 0.5 }, Math.random), { instanceOf: GatewayError, message: /multiplier/ });
  t.throws(() => nextAttemptAt(1, now, { ...policy, maxDelayMs: 10 }, Math.random), { instanceOf: GatewayError, message: /maxDelayMs/ });
  t.throws(() => nextAttemptAt(1, now, { ...policy, maxAttempts: 0 }, Math.random), { instanceOf: GatewayError, message: /maxAttempts/ });
});
