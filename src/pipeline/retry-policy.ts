import { GatewayError } from '../errors.js';

export interface RetryPolicy {
  /** Delay after the first failed attempt. */
  initialDelayMs: number;
  /** Each further failure multiplies the delay by this (>= 1). */
  multiplier: number;
  /** The delay never grows past this. */
  maxDelayMs: number;
  /** After this many failed attempts the message is parked for an admin. */
  maxAttempts: number;
  /** 0..1: the share of each delay that is random, so that many queued results do not retry in step. */
  jitter: number;
}

export type NextAttempt = { kind: 'retry'; at: Date; delayMs: number } | { kind: 'park'; reason: string };

/**
 * When to try again after `attempt` failed attempts (1 after the first), or that it is time to park.
 * Pure: the caller passes the clock and the random source, so the pipeline can store the answer and
 * tests can pin it. The delay is base * (1 - jitter * random), with base = initial * multiplier^(attempt-1)
 * capped at maxDelayMs: jitter only ever shortens it, so maxDelayMs stays a true upper bound.
 */
export function nextAttemptAt(attempt: number, now: Date, policy: RetryPolicy, random: () => number): NextAttempt {
  checkPolicy(policy);
  if (!Number.isSafeInteger(attempt) || attempt < 1) {
    throw new GatewayError('retry-bad-attempt', `attempt must be a whole number >= 1 (failed attempts so far), got ${attempt}`);
  }
  if (attempt >= policy.maxAttempts) {
    return { kind: 'park', reason: `gave up after ${attempt} failed attempts (the retry policy allows ${policy.maxAttempts})` };
  }
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.multiplier ** (attempt - 1));
  const r = Math.min(1, Math.max(0, random()));
  const delayMs = Math.round(base * (1 - policy.jitter * r));
  return { kind: 'retry', at: new Date(now.getTime() + delayMs), delayMs };
}

function checkPolicy(policy: RetryPolicy): void {
  const fail = (what: string) => {
    throw new GatewayError('retry-bad-policy', `retry policy: ${what}`);
  };
  if (!Number.isFinite(policy.initialDelayMs) || policy.initialDelayMs < 0) fail(`initialDelayMs must be >= 0, got ${policy.initialDelayMs}`);
  if (!Number.isFinite(policy.multiplier) || policy.multiplier < 1) fail(`multiplier must be >= 1, got ${policy.multiplier}`);
  if (!Number.isFinite(policy.maxDelayMs) || policy.maxDelayMs < policy.initialDelayMs) {
    fail(`maxDelayMs must be >= initialDelayMs (${policy.initialDelayMs}), got ${policy.maxDelayMs}`);
  }
  if (!Number.isSafeInteger(policy.maxAttempts) || policy.maxAttempts < 1) fail(`maxAttempts must be a whole number >= 1, got ${policy.maxAttempts}`);
  if (!Number.isFinite(policy.jitter) || policy.jitter < 0 || policy.jitter > 1) fail(`jitter must be within 0..1, got ${policy.jitter}`);
}
