import type { CommitmentRegistry } from '../dimse/commitment-registry.js';
import { describeFailureReason, newTransactionUid, type SopReference } from '../dimse/storage-commitment.js';
import { requestCommitment } from '../dimse/storage-commitment-scu.js';
import type { InstanceResult, ScuPeer } from '../dimse/storage-scu.js';
import type { Logger } from '../logging/logger.js';
import type { DeliveryOutcome } from './destination.js';

export interface CommitmentStep {
  destination: string;
  peer: ScuPeer;
  /** The batch's C-STORE results, every one of them stored (the batch is delivered as far as C-STORE goes). */
  results: readonly InstanceResult[];
  registry: CommitmentRegistry;
  timeoutMs: number;
  logger: Logger;
  /** Ends the wait (shutdown): the delivery answers retry. */
  signal: AbortSignal;
}

/** At most this many failed instances are named in a reason; the log line has the count. */
const NAMED_FAILURES = 10;

/**
 * The storage commitment step of a PACS delivery whose C-STOREs all succeeded: a fresh Transaction UID per attempt,
 * the wait registered before the N-ACTION goes out, then the report. Delivered only when the report commits every
 * object we sent; a request that fails, a report with failures (or one that leaves an object out) and no report
 * within the timeout are all retries: the next attempt sends the objects again (same UIDs, harmless) and asks again.
 */
export async function awaitCommitment(step: CommitmentStep): Promise<DeliveryOutcome> {
  const { peer, logger, registry } = step;
  const peerName = `${peer.calledAeTitle}@${peer.host}:${peer.port}`;
  const instances: SopReference[] = [];
  for (const r of step.results) {
    if (r.outcome === 'not-sent') continue;
    instances.push({ sopClassUid: r.sopClassUid, sopInstanceUid: r.sopInstanceUid });
  }
  if (instances.length === 0) return { kind: 'delivered' };
  const transactionUid = newTransactionUid();
  const wait = registry.expect(transactionUid, step.timeoutMs);
  const onAbort = () => wait.cancel();
  step.signal.addEventListener('abort', onAbort, { once: true });
  try {
    const requested = await requestCommitment(peer, transactionUid, instances, {
      logger,
      registry,
      holdUntil: wait.result,
      signal: step.signal,
    });
    if (requested.kind === 'failed') {
      wait.cancel();
      if (step.signal.aborted) return stopped(step.destination);
      return { kind: 'retry', cause: 'commitment-request-failed', reason: requested.reason };
    }
    const outcome = await wait.result;
    const ids = { destination: step.destination, peer: peerName, transactionUid };
    if (outcome.kind === 'cancelled') return stopped(step.destination);
    if (outcome.kind === 'timeout') {
      const seconds = Number((outcome.waitedMs / 1000).toFixed(3));
      logger.warn('no storage commitment report within the timeout', {
        event: 'DIMSE-1207',
        ...ids,
        timeoutSeconds: seconds,
      });
      return {
        kind: 'retry',
        cause: 'commitment-timeout',
        reason: `${peerName} sent no storage commitment report for transaction ${transactionUid} within ${seconds} s (storageCommitment.timeoutSeconds); the PACS must know this gateway's AE title, host and port (its SCP) to report to it`,
      };
    }
    const { report } = outcome;
    const committed = new Set(report.committed.map((c) => c.sopInstanceUid));
    const failures = report.failed.map((f) => ({ uid: f.sopInstanceUid, why: describeFailureReason(f.failureReason) }));
    const failedUids = new Set(failures.map((f) => f.uid));
    for (const instance of instances) {
      if (!committed.has(instance.sopInstanceUid) && !failedUids.has(instance.sopInstanceUid))
        failures.push({ uid: instance.sopInstanceUid, why: 'not in the report' });
    }
    if (failures.length === 0) {
      logger.info('storage commitment: every object committed', {
        event: 'DIMSE-1202',
        ...ids,
        via: report.via,
        instances: instances.length,
      });
      return { kind: 'delivered' };
    }
    logger.warn('storage commitment: the PACS did not commit every object', {
      event: 'DIMSE-1203',
      ...ids,
      via: report.via,
      failed: failures.length,
      instances: instances.length,
    });
    const named = failures.slice(0, NAMED_FAILURES).map((f) => `${f.uid}: ${f.why}`);
    const more = failures.length > NAMED_FAILURES ? `; and ${failures.length - NAMED_FAILURES} more` : '';
    return {
      kind: 'retry',
      cause: 'commitment-failed',
      reason: `${peerName} did not commit ${failures.length} of ${instances.length} objects (transaction ${transactionUid}): ${named.join('; ')}${more}`,
    };
  } finally {
    step.signal.removeEventListener('abort', onAbort);
  }
}

function stopped(destination: string): DeliveryOutcome {
  return {
    kind: 'retry',
    cause: 'stopped',
    reason: `destination ${destination} stopped while waiting for storage commitment (the gateway is shutting down)`,
  };
}
