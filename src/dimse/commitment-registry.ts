import { describeError, GatewayError } from '../errors.js';
import type { CommitmentRelay } from '../store/commitment-relay.js';
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
  /**
   * Nodes sharing one store (a cluster on PostgreSQL): a report nobody waits for here is kept in the store for the
   * node that waits for it, and while this node waits it looks there for its own transactions every relayPollMs.
   */
  relay?: Pick<CommitmentRelay, 'put' | 'take' | 'expire'>;
  /** How often a waiting node looks in the store for its reports (ms; default 1000). */
  relayPollMs?: number;
  /** Epoch ms, for the relay's rows; tests inject their own. */
  now?: () => number;
}

/** Reports kept in the store that no node took within a day are late ones: their deliveries were retried. */
const RELAY_KEEP_MS = 24 * 3600 * 1000;
/** How often the store's late reports are cleared (by a node that waits, as it looks for its own). */
const RELAY_EXPIRE_EVERY_MS = 3600 * 1000;

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
  private readonly now: () => number;
  /** Cancels the next look in the store (set while something is waited for and a relay is set). */
  private cancelPoll: (() => void) | undefined;
  private expiredAt = 0;
  private relay: CommitmentRegistryOptions['relay'];

  constructor(private readonly options: CommitmentRegistryOptions) {
    this.schedule = options.schedule ?? realTimers;
    this.now = options.now ?? Date.now;
    this.relay = options.relay;
  }

  /** The relay, set once the store is open (the gateway makes the registry before it opens its store). */
  relayThrough(relay: NonNullable<CommitmentRegistryOptions['relay']>): void {
    this.relay = relay;
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
    this.pollLater();
    return { result, cancel: () => this.settle(transactionUid, { kind: 'cancelled' }) };
  }

  /**
   * Hands a report to its waiter, or with a relay keeps it in the store for the node that waits (true either way).
   * Returns false (and logs it) when nobody waits for its transaction and there is no relay. A relay that cannot
   * write throws: the report is answered with a failure, so that the PACS may send it again.
   */
  report(report: CommitmentReport): boolean {
    if (this.settle(report.transactionUid, { kind: 'reported', report })) return true;
    const what = {
      transactionUid: report.transactionUid,
      callingAe: report.callingAe,
      peer: report.peer,
      via: report.via,
      committed: report.committed.length,
      failed: report.failed.length,
    };
    if (this.relay !== undefined) {
      this.relay.put(report, this.now());
      this.options.logger.info('storage commitment report kept in the store for the node that waits for it', {
        event: 'DIMSE-1208',
        ...what,
      });
      return true;
    }
    this.options.logger.warn('storage commitment report for no waiting transaction; answered success', {
      event: 'DIMSE-1204',
      ...what,
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
    if (this.waiters.size === 0) {
      this.cancelPoll?.();
      this.cancelPoll = undefined;
    }
    return true;
  }

  /** With a relay and something waited for: the next look in the store, unless one is already set. */
  private pollLater(): void {
    if (this.relay === undefined || this.cancelPoll !== undefined || this.waiters.size === 0) return;
    this.cancelPoll = this.schedule(this.options.relayPollMs ?? 1000, () => {
      this.cancelPoll = undefined;
      this.poll();
      this.pollLater();
    });
  }

  /** Takes the reports other nodes kept for the transactions waited for here, and clears late ones now and then. */
  private poll(): void {
    const relay = this.relay;
    if (relay === undefined) return;
    const { logger } = this.options;
    try {
      for (const taken of relay.take([...this.waiters.keys()])) {
        if (taken.report instanceof Error) {
          // Its waiter runs into the timeout and the delivery is retried (the objects sent and committed again).
          logger.warn('a storage commitment report kept in the store could not be read; its delivery will time out', {
            event: 'DIMSE-1210',
            transactionUid: taken.transactionUid,
            why: taken.report.message,
          });
          continue;
        }
        this.settle(taken.transactionUid, {
          kind: 'reported',
          report: { ...taken.report, eventTypeId: taken.report.eventTypeId },
        });
      }
      const now = this.now();
      if (now - this.expiredAt >= RELAY_EXPIRE_EVERY_MS) {
        this.expiredAt = now;
        const expired = relay.expire(now - RELAY_KEEP_MS);
        if (expired > 0)
          logger.warn('storage commitment reports no node took within a day were deleted from the store', {
            event: 'DIMSE-1209',
            expired,
          });
      }
    } catch (error) {
      // The store out of reach: looked at again at the next poll; the waits time out meanwhile if it stays so.
      logger.warn('could not look in the store for storage commitment reports; tried again shortly', {
        event: 'DIMSE-1210',
        error: describeError(error),
      });
    }
  }
}
