import { GatewayError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { FailedSop, SopReference } from './storage-commitment.js';
import type { TimerScheduler } from './upper-layer.js';

/** A storage commitment result (N-EVENT-REPORT, PS3.4 J.3.3) as it reached us. */
export interface CommitmentReport {
  transactionUid: string;
  /** 1: every object committed; 2: failures exist (undefined when the peer left it out). */
  eventTypeId: number | undefined;
  committed: SopReference[];
  failed: FailedSop[];
  /** On the association that carried the request, or on one the PACS opened to our Storage SCP. */
  via: 'same-association' | 'new-association';
  /** The AE that sent the report, and from where. */
  callingAe: string;
  peer: string;
}

export type CommitmentWait =
  | { kind: 'reported'; report: CommitmentReport }
  | { kind: 'timeout'; waitedMs: number }
  /** The waiter was cancelled (the gateway is stopping, or the request never went out). */
  | { kind: 'cancelled' };

export interface CommitmentRegistryOptions {
  logger: Logger;
  /** The timeout timers; tests inject their own clock. */
  schedule?: TimerScheduler;
}

const realTimers: TimerScheduler = (ms, fire) => {
  const timer = setTimeout(fire, ms);
  timer.unref();
  return () => clearTimeout(timer);
};

interface Waiter {
  resolve: (wait: CommitmentWait) => void;
  cancelTimer: () => void;
}

/**
 * Where a delivery waiting for its storage commitment result meets the report, keyed by Transaction UID. One
 * instance is shared by the Storage SCP (reports on a new association) and the PACS destinations (reports on the
 * request's own association), so it does not matter which way the PACS answers. A report nobody waits for (late,
 * after a timeout or a restart) is logged and dropped: the delivery it belonged to was already retried.
 */
export class CommitmentRegistry {
  private readonly waiters = new Map<string, Waiter>();
  private readonly schedule: TimerScheduler;

  constructor(private readonly options: CommitmentRegistryOptions) {
    this.schedule = options.schedule ?? realTimers;
  }

  /** Transactions waited for now. */
  get waiting(): number {
    return this.waiters.size;
  }

  /**
   * Starts waiting for `transactionUid`. Call it before the N-ACTION goes out: a PACS may report before its
   * N-ACTION response has been read. `cancel()` ends the wait (resolving it `cancelled`) and forgets the UID.
   */
  expect(transactionUid: string, timeoutMs: number): { result: Promise<CommitmentWait>; cancel: () => void } {
    if (this.waiters.has(transactionUid))
      throw new GatewayError(
        'COMMITMENT_TRANSACTION_REUSED',
        `storage commitment transaction ${transactionUid} is already waited for`,
      );
    let waiter: Waiter | undefined;
    const result = new Promise<CommitmentWait>((resolve) => {
      const cancelTimer = this.schedule(timeoutMs, () =>
        this.settle(transactionUid, { kind: 'timeout', waitedMs: timeoutMs }),
      );
      waiter = { resolve, cancelTimer };
    });
    if (waiter !== undefined) this.waiters.set(transactionUid, waiter);
    return { result, cancel: () => this.settle(transactionUid, { kind: 'cancelled' }) };
  }

  /** Hands a report to its waiter. Returns false (and logs it) when nobody waits for its transaction. */
  report(report: CommitmentReport): boolean {
    if (this.settle(report.transactionUid, { kind: 'reported', report })) return true;
    this.options.logger.warn('storage commitment report for no waiting transaction; answered success', {
      event: 'DIMSE-1204',
      transactionUid: report.transactionUid,
      callingAe: report.callingAe,
      peer: report.peer,
      via: report.via,
      committed: report.committed.length,
      failed: report.failed.length,
    });
    return false;
  }

  /** Ends every wait (shutdown): each resolves `cancelled`. */
  cancelAll(): void {
    for (const uid of [...this.waiters.keys()]) this.settle(uid, { kind: 'cancelled' });
  }

  private settle(transactionUid: string, wait: CommitmentWait): boolean {
    const waiter = this.waiters.get(transactionUid);
    if (waiter === undefined) return false;
    this.waiters.delete(transactionUid);
    waiter.cancelTimer();
    waiter.resolve(wait);
    return true;
  }
}
