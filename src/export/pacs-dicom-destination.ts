import type { Logger } from '../logging/logger.js';
import type { AuditRecorder } from '../store/audit-trail.js';
import {
  formatStatus,
  sendInstances,
  type InstanceResult,
  type ScuPeer,
  type StoreBatchResult,
} from '../dimse/storage-scu.js';
import type { CommitmentRegistry } from '../dimse/commitment-registry.js';
import { recordPacsSent } from './pacs-sent-audit.js';
import { awaitCommitment } from './storage-commitment-step.js';
import type { DeliveryOutcome, Destination, DicomObject } from './destination.js';

export interface PacsDicomDestinationOptions {
  name: string;
  peer: ScuPeer;
  logger: Logger;
  /** Where each delivery attempt's outcome is recorded (pacs.sent, one per study); none when left out. */
  audit?: AuditRecorder;
  now?: () => number;
  /**
   * Storage commitment (PS3.4 J): after the C-STOREs, the delivery asks the PACS to commit every object and counts
   * as delivered only once its report says so; reports reach `registry` from our SCP or the request's association.
   */
  commitment?: { registry: CommitmentRegistry; timeoutMs: number };
}

/**
 * A PACS reached over DICOM: each delivery is one association carrying the whole batch (C-STORE per object),
 * through the Storage SCU. Sending a batch again is safe: a PACS keys instances by SOP Instance UID, so the
 * objects it already has are kept once (Orthanc answers Success and keeps its copy).
 */
export class PacsDicomDestination implements Destination<DicomObject> {
  readonly name: string;
  private stopped = false;
  private readonly inFlight = new Set<AbortController>();

  constructor(private readonly options: PacsDicomDestinationOptions) {
    this.name = options.name;
  }

  async start(): Promise<void> {}

  /** Aborts the associations in progress; their deliveries answer retry. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const controller of this.inFlight) controller.abort();
  }

  async deliver(items: readonly DicomObject[], signal?: AbortSignal): Promise<DeliveryOutcome> {
    const { peer, logger } = this.options;
    if (this.stopped || signal?.aborted)
      return {
        kind: 'retry',
        cause: 'stopped',
        reason: `destination ${this.name} is stopped (the gateway is shutting down)`,
      };
    const controller = new AbortController();
    this.inFlight.add(controller);
    // The caller's shutdown deadline aborts the association as stop() does (A-ABORT, close): retry after restart.
    const onSignal = () => controller.abort();
    signal?.addEventListener('abort', onSignal, { once: true });
    let batch: ReadonlyArray<{ sopInstanceUid: string; studyInstanceUid: string | undefined }> = [];
    try {
      const result = await sendInstances(peer, items, {
        logger,
        signal: controller.signal,
        onPrepared: (instances) => (batch = instances),
      });
      // Error Comments are the PACS's free text (it may quote the patient's name): debug only, never in the reason.
      if ('results' in result) {
        for (const r of result.results) {
          if (r.outcome !== 'not-sent' && r.comment !== undefined)
            logger.debug('C-STORE error comment', {
              destination: this.name,
              sopInstanceUid: r.sopInstanceUid,
              peerText: r.comment,
            });
        }
      }
      let outcome = deliveryOutcomeFor(result, `${peer.calledAeTitle}@${peer.host}:${peer.port}`);
      const commitment = this.options.commitment;
      if (outcome.kind === 'delivered' && commitment !== undefined && 'results' in result) {
        outcome = await awaitCommitment({
          destination: this.name,
          peer,
          results: result.results,
          registry: commitment.registry,
          timeoutMs: commitment.timeoutMs,
          logger,
          signal: controller.signal,
        });
      }
      this.auditAttempt(batch, outcome);
      return outcome;
    } finally {
      signal?.removeEventListener('abort', onSignal);
      this.inFlight.delete(controller);
    }
  }

  /** One pacs.sent per study in the batch: delivered is a success, anything else (retry, parked) a failure. */
  private auditAttempt(
    batch: ReadonlyArray<{ sopInstanceUid: string; studyInstanceUid: string | undefined }>,
    outcome: DeliveryOutcome,
  ): void {
    const { audit, peer, logger } = this.options;
    if (audit === undefined) return;
    recordPacsSent({
      audit,
      logger,
      destination: this.name,
      instances: batch,
      outcome,
      at: (this.options.now ?? Date.now)(),
      user: peer.callingAeTitle,
      address: `${peer.host}:${peer.port}`,
      transport: { peerAe: peer.calledAeTitle, tls: peer.tls !== undefined },
    });
  }
}

type Verdict = { kind: 'ok' } | { kind: 'retry' | 'parked'; cause: string; detail: string };

/**
 * What a C-STORE failure status means for the next attempt (PS3.4 B.2.3, PS3.7 C).
 * - Refused: out of resources (0xA7xx), processing failure (0x0110), resource limitation (0x0213): the PACS is
 *   short of disk, memory or a database right now; the same object may well be accepted later: retry.
 *   (Orthanc 1.10 answers 0xA700 for every store error, even a data set without Study Instance UID; such an
 *   object is then retried like any transient failure, and the delivery alert tells the admin.)
 * - SOP class not supported (0x0122), not authorised (0x0124): the PACS's configuration, which its admin can
 *   change without anything changing on our side: retry.
 * - Error: data set does not match SOP class (0xA9xx), cannot understand (0xCxxx), invalid object instance
 *   (0x0117), invalid attribute value (0x0106), mistyped argument (0x0212): the PACS judged the object itself;
 *   the same bytes would be refused again, so a retry cannot fix it: parked.
 * - Duplicate SOP instance (0x0111): the PACS already holds this UID; that is what a delivery is for.
 * - Anything else: unknown, so retry (bounded by delivery.maxAttempts, after which it is parked anyway).
 * How long each cause is retried is decided in one place: FAILURE_CLASSES in src/export/retry-policy.ts.
 */
export function verdictForStatus(status: number): Verdict {
  const hex = formatStatus(status);
  if (status === 0x0111) return { kind: 'ok' };
  if ((status & 0xff00) === 0xa700)
    return { kind: 'retry', cause: 'pacs-out-of-resources', detail: `${hex} refused: out of resources` };
  if (status === 0x0110)
    return { kind: 'retry', cause: 'pacs-processing-failure', detail: `${hex} processing failure` };
  if (status === 0x0213) return { kind: 'retry', cause: 'pacs-out-of-resources', detail: `${hex} resource limitation` };
  if (status === 0x0122)
    return { kind: 'retry', cause: 'pacs-refuses-sop-class', detail: `${hex} SOP class not supported` };
  if (status === 0x0124) return { kind: 'retry', cause: 'pacs-not-authorized', detail: `${hex} not authorised` };
  if ((status & 0xff00) === 0xa900)
    return { kind: 'parked', cause: 'pacs-refused-object', detail: `${hex} data set does not match SOP class` };
  if ((status & 0xf000) === 0xc000)
    return { kind: 'parked', cause: 'pacs-refused-object', detail: `${hex} cannot understand` };
  if (status === 0x0117 || status === 0x0106 || status === 0x0212)
    return { kind: 'parked', cause: 'pacs-refused-object', detail: `${hex} invalid object or attribute` };
  return { kind: 'retry', cause: 'pacs-failure', detail: `${hex} failure` };
}

function verdictForResult(result: InstanceResult): Verdict {
  switch (result.outcome) {
    case 'stored':
    case 'warning':
      return { kind: 'ok' };
    case 'failed': {
      const verdict = verdictForStatus(result.status);
      if (verdict.kind === 'ok') return verdict;
      // The PACS's Error Comment is its free text: the reason says how long it was, the debug log has it.
      return {
        ...verdict,
        detail: `${result.sopInstanceUid}: ${verdict.detail}${result.comment ? ` (error comment of ${result.comment.length} characters, logged at debug level)` : ''}`,
      };
    }
    case 'not-sent':
      // An object we cannot read stays unreadable; a PACS that accepts no presentation context for it can
      // be configured to.
      return result.cause === 'unreadable'
        ? { kind: 'parked', cause: 'invalid-object', detail: result.reason }
        : { kind: 'retry', cause: 'pacs-refuses-sop-class', detail: result.reason };
  }
}

/**
 * The delivery outcome of one batch. A batch failure (no association, abort, timeout) is a retry. Otherwise
 * any object the PACS refused for itself parks the batch (the rest is stored; re-sending it would not make
 * the batch whole), any other failure makes it a retry, and a batch whose every object is stored (warnings
 * included) is delivered.
 */
export function deliveryOutcomeFor(result: StoreBatchResult, peerName: string): DeliveryOutcome {
  if ('transient' in result) return { kind: 'retry', cause: result.transient.kind, reason: result.transient.reason };
  const problems = result.results
    .map(verdictForResult)
    .filter((v): v is Exclude<Verdict, { kind: 'ok' }> => v.kind !== 'ok');
  if (problems.length === 0) return { kind: 'delivered' };
  const parked = problems.find((p) => p.kind === 'parked');
  const first = parked ?? problems[0];
  if (first === undefined) return { kind: 'delivered' };
  const reason = `${peerName} did not store ${problems.length} of ${result.results.length} objects: ${problems.map((p) => p.detail).join('; ')}`;
  return { kind: parked ? 'parked' : 'retry', cause: first.cause, reason };
}
