import { describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { CommitmentRegistry } from './commitment-registry.js';
import { CommandElement, DimseStatus, type Command, type CommandValue } from './dimse-messages.js';
import { StoreStatus, errorComment } from './dimse-status.js';
import {
  CommitmentEvent,
  STORAGE_COMMITMENT_INSTANCE,
  STORAGE_COMMITMENT_PUSH_MODEL,
  decodeCommitmentDataset,
} from './storage-commitment.js';

/** The N-EVENT-REPORT-RSP we answer with (PS3.7 10.1.1.1). */
export interface ReportAnswer {
  status: number;
  affectedSopClassUid: string;
  affectedSopInstanceUid: string;
  errorComment?: string;
  extra: Array<readonly [number, CommandValue]>;
}

export interface ReportSource {
  via: 'same-association' | 'new-association';
  callingAe: string;
  peer: string;
  associationId?: string;
}

/**
 * Takes one N-EVENT-REPORT-RQ of the Storage Commitment Push Model (on either association) and decides the answer:
 * a readable report is handed to the registry and answered Success, whether or not anyone still waits for it (a
 * late report is not the PACS's fault, and a failure status would only make it send the report again); an
 * unreadable one is answered with a failure, and the delivery it belonged to runs into its timeout and is retried.
 */
export function receiveCommitmentReport(
  command: Command,
  dataset: Buffer | undefined,
  transferSyntaxUid: string,
  registry: CommitmentRegistry,
  source: ReportSource,
  logger: Logger,
): ReportAnswer {
  const answer = (status: number, comment?: string): ReportAnswer => ({
    status,
    affectedSopClassUid: command.affectedSopClassUid ?? STORAGE_COMMITMENT_PUSH_MODEL,
    affectedSopInstanceUid: command.affectedSopInstanceUid ?? STORAGE_COMMITMENT_INSTANCE,
    ...(comment === undefined ? {} : { errorComment: errorComment(comment) }),
    extra: command.eventTypeId === undefined ? [] : [[CommandElement.EventTypeId, { us: command.eventTypeId }]],
  });
  const refuse = (status: number, why: string): ReportAnswer => {
    logger.warn('storage commitment report refused', {
      event: 'DIMSE-1205',
      ...source,
      status: `0x${status.toString(16).padStart(4, '0')}`,
      why,
    });
    return answer(status, why);
  };
  if (command.affectedSopClassUid !== STORAGE_COMMITMENT_PUSH_MODEL)
    return refuse(
      DimseStatus.SopClassNotSupported,
      `N-EVENT-REPORT for SOP class ${command.affectedSopClassUid ?? 'none'}`,
    );
  if (command.eventTypeId !== CommitmentEvent.AllCommitted && command.eventTypeId !== CommitmentEvent.FailuresExist)
    return refuse(DimseStatus.NoSuchEventType, `event type ${command.eventTypeId ?? 'none'} is not 1 or 2`);
  if (dataset === undefined) return refuse(StoreStatus.ProcessingFailure, 'N-EVENT-REPORT without a data set');
  const decoded = decodeCommitmentDataset(dataset, transferSyntaxUid);
  if (typeof decoded === 'string') return refuse(StoreStatus.ProcessingFailure, decoded);
  try {
    registry.report({
      transactionUid: decoded.transactionUid,
      eventTypeId: command.eventTypeId,
      committed: decoded.referenced,
      failed: decoded.failed,
      via: source.via,
      callingAe: source.callingAe,
      peer: source.peer,
    });
  } catch (error) {
    // Another node waits for it and the store would not keep it: a failure, so that the PACS may send it again.
    return refuse(
      StoreStatus.ProcessingFailure,
      `could not keep the report for the node that waits: ${describeError(error)}`,
    );
  }
  return answer(DimseStatus.Success);
}
