// The `pacs.sent` audit events of a PACS delivery attempt, one per study in the batch, whichever way the objects
// went (C-STORE or STOW-RS): a delivered batch is a success, anything else (retry, parked) a failure.

import { describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { AuditRecorder } from '../store/audit-trail.js';
import type { DeliveryOutcome } from './destination.js';

export interface PacsSentAttempt {
  audit: AuditRecorder;
  logger: Logger;
  destination: string;
  instances: ReadonlyArray<{ sopInstanceUid: string; studyInstanceUid: string | undefined }>;
  outcome: DeliveryOutcome;
  at: number;
  /** Who we were to the PACS (our AE title, the HTTP user) and where it is. */
  user: string | null;
  address: string;
  /** Facts of the transport added to each event's `after` (peer AE, URL, tls). */
  transport: Record<string, unknown>;
}

export function recordPacsSent(attempt: PacsSentAttempt): void {
  const byStudy = new Map<string, string[]>();
  for (const instance of attempt.instances) {
    const key = instance.studyInstanceUid ?? 'unknown';
    byStudy.set(key, [...(byStudy.get(key) ?? []), instance.sopInstanceUid]);
  }
  const { outcome } = attempt;
  for (const [studyInstanceUid, sopInstanceUids] of byStudy) {
    try {
      attempt.audit.record(
        {
          category: 'dicom',
          action: 'pacs.sent',
          user: attempt.user,
          role: null,
          address: attempt.address,
          target: `study ${studyInstanceUid}`,
          outcome: outcome.kind === 'delivered' ? 'success' : 'failure',
          after: { studyInstanceUid, destination: attempt.destination, sopInstanceUids, ...attempt.transport },
          detail: outcome.kind === 'delivered' ? null : outcome.reason,
        },
        attempt.at,
      );
    } catch (error) {
      // The trail failing never holds up a delivery; the log says what was not recorded.
      attempt.logger.error('could not record an audit event', {
        event: 'DIMSE-1404',
        action: 'pacs.sent',
        destination: attempt.destination,
        error: describeError(error),
      });
    }
  }
}
