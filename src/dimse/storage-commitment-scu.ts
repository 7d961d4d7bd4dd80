import type { Logger } from '../logging/logger.js';
import { ContextResult } from './association-pdus.js';
import type { CommitmentRegistry } from './commitment-registry.js';
import { receiveCommitmentReport } from './commitment-report.js';
import { CommandElement, CommandField, encodeCommand } from './dimse-messages.js';
import { ScuAssociation, type ScuFailure } from './scu-association.js';
import {
  COMMITMENT_TRANSFER_SYNTAXES,
  REQUEST_STORAGE_COMMITMENT,
  STORAGE_COMMITMENT_INSTANCE,
  STORAGE_COMMITMENT_PUSH_MODEL,
  encodeCommitmentDataset,
  type SopReference,
} from './storage-commitment.js';
import { formatStatus, type ScuPeer } from './storage-scu.js';

export interface CommitmentRequestOptions {
  logger: Logger;
  /** Where a report sent on this association goes (the same registry the Storage SCP hands reports to). */
  registry: CommitmentRegistry;
  /**
   * The association stays open until this settles (the report came, either way, or the wait ended), so that a
   * PACS that reports on the request's own association can; then it is released.
   */
  holdUntil: Promise<unknown>;
  /** Aborts the association (shutdown). */
  signal?: AbortSignal;
}

export type CommitmentRequestOutcome =
  | { kind: 'requested' }
  /** The request did not reach the PACS or was refused: the sentence for the admin. */
  | { kind: 'failed'; reason: string };

const CONTEXT_ID = 1;
const MESSAGE_ID = 1;

/**
 * Asks a PACS to commit `instances` (PS3.4 J.3.2): one association with the Storage Commitment Push Model context,
 * one N-ACTION-RQ (action type 1, Transaction UID and Referenced SOP Sequence), and its N-ACTION-RSP. Resolves once
 * the response is read; the result itself comes later as an N-EVENT-REPORT, through the registry.
 */
export async function requestCommitment(
  peer: ScuPeer,
  transactionUid: string,
  instances: readonly SopReference[],
  options: CommitmentRequestOptions,
): Promise<CommitmentRequestOutcome> {
  const { logger } = options;
  const peerName = `${peer.calledAeTitle}@${peer.host}:${peer.port}`;
  const failed = (reason: string): CommitmentRequestOutcome => {
    logger.warn('storage commitment request failed', {
      event: 'DIMSE-1206',
      peer: peerName,
      transactionUid,
      why: reason,
    });
    return { kind: 'failed', reason };
  };
  let transferSyntax: string = COMMITMENT_TRANSFER_SYNTAXES[0] ?? '';
  const opened = await ScuAssociation.open(
    {
      host: peer.host,
      port: peer.port,
      callingAeTitle: peer.callingAeTitle,
      calledAeTitle: peer.calledAeTitle,
      contexts: [
        {
          id: CONTEXT_ID,
          abstractSyntax: STORAGE_COMMITMENT_PUSH_MODEL,
          transferSyntaxes: COMMITMENT_TRANSFER_SYNTAXES,
        },
      ],
      connectTimeoutMs: peer.connectTimeoutMs,
      responseTimeoutMs: peer.responseTimeoutMs,
      ...(peer.tls === undefined ? {} : { tls: peer.tls }),
      onRequest: ({ command, dataset }) =>
        receiveCommitmentReport(
          command,
          dataset,
          transferSyntax,
          options.registry,
          { via: 'same-association', callingAe: peer.calledAeTitle, peer: `${peer.host}:${peer.port}` },
          logger,
        ),
    },
    options.signal,
  );
  if (!(opened instanceof ScuAssociation)) return failed(`no association with ${peerName}: ${describe(opened)}`);
  const association = opened;
  const context = association.accepted?.contexts.find((c) => c.id === CONTEXT_ID);
  if (
    context === undefined ||
    context.result !== ContextResult.Acceptance ||
    context.transferSyntax === undefined ||
    !COMMITMENT_TRANSFER_SYNTAXES.includes(context.transferSyntax)
  ) {
    await association.release();
    return failed(
      `${peerName} did not accept the Storage Commitment Push Model (${STORAGE_COMMITMENT_PUSH_MODEL}); enable storage commitment for AE '${peer.callingAeTitle}' on the PACS, or turn storageCommitment off for this destination`,
    );
  }
  transferSyntax = context.transferSyntax;
  const command = encodeCommand([
    [CommandElement.RequestedSopClassUid, { ui: STORAGE_COMMITMENT_PUSH_MODEL }],
    [CommandElement.CommandField, { us: CommandField.NActionRq }],
    [CommandElement.MessageId, { us: MESSAGE_ID }],
    [CommandElement.CommandDataSetType, { us: 0x0000 }],
    [CommandElement.RequestedSopInstanceUid, { ui: STORAGE_COMMITMENT_INSTANCE }],
    [CommandElement.ActionTypeId, { us: REQUEST_STORAGE_COMMITMENT }],
  ]);
  const dataset = encodeCommitmentDataset({ transactionUid, referenced: [...instances], failed: [] }, transferSyntax);
  const response = await association.request(CONTEXT_ID, MESSAGE_ID, command, dataset);
  if (!('elements' in response)) {
    association.stop();
    return failed(`${peerName} did not answer the N-ACTION: ${describe(response)}`);
  }
  if (response.status !== 0x0000) {
    await association.release();
    return failed(
      `${peerName} refused the storage commitment request with status ${formatStatus(response.status ?? 0xffff)}`,
    );
  }
  logger.info('storage commitment requested', {
    event: 'DIMSE-1201',
    peer: peerName,
    transactionUid,
    instances: instances.length,
  });
  // Released once the wait is over; what happens to the release changes nothing about the result.
  void options.holdUntil.then(
    () => association.release(),
    () => association.release(),
  );
  return { kind: 'requested' };
}

/** What became of the association, in a few words for the reason an admin reads. */
function describe(failure: ScuFailure): string {
  switch (failure.kind) {
    case 'association-rejected':
      return `association rejected (result ${failure.result}, source ${failure.source}, reason ${failure.reason})`;
    case 'association-aborted':
      return `aborted (A-ABORT source ${failure.abort.source}, reason ${failure.abort.reason})`;
    case 'response-timeout':
      return 'no answer within responseTimeoutSeconds';
    case 'connection-refused':
    case 'connect-failed':
    case 'tls-failed':
    case 'connection-closed':
    case 'protocol-error':
      return `${failure.kind}: ${failure.detail}`;
    case 'connect-timeout':
    case 'association-timeout':
    case 'stopped':
      return failure.kind;
  }
}
