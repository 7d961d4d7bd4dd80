import { readFile } from 'node:fs/promises';
import dcmjsCodecs from 'dcmjs-codecs';
import dimse from 'dcmjs-dimse';
import { walkDatasetBuffer } from '../dicom/dataset-walker.js';
import { parsePart10Header } from '../dicom/part10-header.js';
import { TransferSyntax, encodingOf } from '../dicom/transfer-syntaxes.js';
import type { DicomClientTlsConfig } from '../config/schema.js';
import { describeError } from '../errors.js';
import { frameEncodersReady, initFrameEncoders } from '../imaging/frame-encoder.js';
import type { Logger } from '../logging/logger.js';
import { ContextResult, MAX_PRESENTATION_CONTEXTS } from './association-pdus.js';
import { CommandElement, encodeCommand } from './dimse-messages.js';
import { ScuAssociation, type ScuFailure } from './scu-association.js';

// dcmjs-dimse is used only for its Dataset, to re-encode an uncompressed object in the other uncompressed syntax;
// the association itself is ours (scu-association.ts). dcmjs-codecs' Transcoder decompresses an object for a peer
// that takes its SOP class only uncompressed.
const { Dataset } = dimse;
const { Transcoder } = dcmjsCodecs;

/** A Part 10 object to send: a file, or the bytes of one (e.g. a Secondary Capture just written). */
export type Part10Source = { readonly path: string } | { readonly bytes: Uint8Array; readonly label?: string };

/** Where to send, and as whom. */
export interface ScuPeer {
  host: string;
  port: number;
  /** The PACS's AE title. */
  calledAeTitle: string;
  /** Ours, as the PACS knows us. */
  callingAeTitle: string;
  /** How long the TCP connection may take. */
  connectTimeoutMs: number;
  /** How long the peer may take to answer: the association request, each C-STORE, the release. */
  responseTimeoutMs: number;
  /** DICOM TLS toward the peer; plain TCP when left out. */
  tls?: DicomClientTlsConfig;
}

/** The peer's C-STORE response to one instance. */
export interface AnsweredInstance {
  /** The file path, or the label (or position) of a buffer: what an admin can find it by. */
  source: string;
  sopInstanceUid: string;
  sopClassUid: string;
  /** stored: Success. warning: stored, with a Warning status (PS3.4 B.2.3). failed: a Failure status. */
  outcome: 'stored' | 'warning' | 'failed';
  status: number;
  /** Error Comment (0000,0902) when the peer sent one. */
  comment?: string;
}

/** An instance that never went out: we could not read it, or the peer accepted no way to send it. */
export interface UnsentInstance {
  source: string;
  sopInstanceUid?: string;
  sopClassUid?: string;
  outcome: 'not-sent';
  cause: 'unreadable' | 'no-accepted-context';
  reason: string;
}

export type InstanceResult = AnsweredInstance | UnsentInstance;

/** Why a whole batch failed. Each of these may clear by itself, so the batch as a whole can be tried again. */
export type BatchFailureKind =
  | 'connection-refused'
  | 'connect-timeout'
  /** Any other failure to reach the peer: host unreachable, name not found, reset. */
  | 'connect-failed'
  | 'association-rejected'
  /** TCP connected, but no answer to the association request within the response timeout. */
  | 'association-timeout'
  /** The peer aborted the association, or the connection dropped, before every C-STORE was answered. */
  | 'association-aborted'
  | 'response-timeout'
  /** The caller's signal ended the transfer (the gateway is stopping). */
  | 'stopped';

export interface BatchFailure {
  kind: BatchFailureKind;
  /** The sentence for the admin: which peer, what happened, what to check. */
  reason: string;
  /** A-ASSOCIATE-RJ fields (PS3.8 9.3.4), for association-rejected. */
  rejection?: { permanent: boolean; source: string; reason: string };
}

export type StoreBatchResult =
  | { results: InstanceResult[] }
  /** `completed`: what the peer answered before the failure (those instances need not be sent again). */
  | { transient: BatchFailure; completed: InstanceResult[] };

export interface SendInstancesOptions {
  logger: Logger;
  /** Ends the transfer (A-ABORT) and resolves with a `stopped` failure; for shutdown. */
  signal?: AbortSignal;
  /** Told which instances (and of which study) the batch holds once they are read, before anything is sent (the audit trail's pacs.sent). */
  onPrepared?: (instances: ReadonlyArray<{ sopInstanceUid: string; studyInstanceUid: string | undefined }>) => void;
}

// C-STORE statuses (PS3.4 B.2.3, PS3.7 C): Success is 0x0000; Warnings are 0x0001, 0x0107 (attribute list
// error), 0x0116 (attribute value out of range) and 0xB000-0xBFFF (coercion, elements discarded, data set does
// not match SOP class); every other code is a Failure.
export function classifyStoreStatus(status: number): 'stored' | 'warning' | 'failed' {
  if (status === 0x0000) return 'stored';
  if (status === 0x0001 || status === 0x0107 || status === 0x0116 || (status >= 0xb000 && status <= 0xbfff))
    return 'warning';
  return 'failed';
}

export function formatStatus(status: number): string {
  return `0x${status.toString(16).toUpperCase().padStart(4, '0')}`;
}

interface PreparedInstance {
  source: string;
  sopClassUid: string;
  sopInstanceUid: string;
  transferSyntaxUid: string;
  /** The data set bytes of the file, as they go on the wire (a gateway forwards objects as they were written). */
  dataset: Buffer;
  studyInstanceUid: string | undefined;
}

const UNCOMPRESSED: ReadonlySet<string> = new Set([
  TransferSyntax.ImplicitVRLittleEndian,
  TransferSyntax.ExplicitVRLittleEndian,
]);

/**
 * Sends a batch of Part 10 objects to one Storage SCP in one association and reads each C-STORE status.
 *
 * Each object is proposed in its own transfer syntax and, as a fallback, in Explicit and Implicit VR Little
 * Endian; it goes out byte for byte in its own syntax whenever the peer accepts that. An uncompressed object
 * the peer accepts only in the other uncompressed syntax is re-encoded by dcmjs (without fragmenting frames);
 * a compressed object the peer accepts only uncompressed is decompressed (dcmjs-codecs) into that syntax.
 *
 * Never rejects for anything the files or the network do: per-instance results, or a batch failure whose
 * reason names the peer and the cause.
 */
export async function sendInstances(
  peer: ScuPeer,
  items: readonly Part10Source[],
  options: SendInstancesOptions,
): Promise<StoreBatchResult> {
  const { logger } = options;
  quietLibraryLogs();
  const unsent: UnsentInstance[] = [];
  const prepared: PreparedInstance[] = [];
  for (const [index, item] of items.entries()) {
    const instance = await prepare(item, index);
    if ('outcome' in instance) unsent.push(instance);
    else prepared.push(instance);
  }
  options.onPrepared?.(
    prepared.map((p) => ({ sopInstanceUid: p.sopInstanceUid, studyInstanceUid: p.studyInstanceUid })),
  );
  for (const u of unsent)
    logger.warn('instance not sent: unreadable', { event: 'DIMSE-1101', source: u.source, why: u.reason });
  if (prepared.length === 0) return { results: unsent };
  if (options.signal?.aborted) return { transient: stoppedFailure(peer), completed: unsent };
  const answered = await transfer(peer, prepared, options);
  if ('transient' in answered) return { transient: answered.transient, completed: [...unsent, ...answered.completed] };
  return { results: [...unsent, ...answered.results] };
}

async function prepare(item: Part10Source, index: number): Promise<PreparedInstance | UnsentInstance> {
  const source = 'path' in item ? item.path : (item.label ?? `object #${index + 1}`);
  const unreadable = (
    reason: string,
    uids: { sopInstanceUid?: string; sopClassUid?: string } = {},
  ): UnsentInstance => ({
    source,
    ...uids,
    outcome: 'not-sent',
    cause: 'unreadable',
    reason,
  });
  let file: Buffer;
  try {
    file =
      'path' in item
        ? await readFile(item.path)
        : Buffer.from(item.bytes.buffer, item.bytes.byteOffset, item.bytes.byteLength);
  } catch (error) {
    return unreadable(`cannot read ${source}: ${describeError(error)}`);
  }
  try {
    const { transferSyntaxUid, datasetOffset } = parsePart10Header(file, source);
    if (encodingOf(transferSyntaxUid) === undefined)
      return unreadable(`${source} is in transfer syntax ${transferSyntaxUid}, which this gateway does not send`);
    const dataset = file.subarray(datasetOffset);
    // The walk also proves the data set is whole: a truncated file would otherwise be found by the PACS,
    // after the association is open, as a failure for this instance or an abort for the whole batch.
    const { attributes } = walkDatasetBuffer(dataset, transferSyntaxUid);
    const { sopClassUid, sopInstanceUid } = attributes;
    if (sopClassUid === undefined || sopInstanceUid === undefined) {
      return unreadable(`${source} has no ${sopClassUid === undefined ? 'SOP Class UID' : 'SOP Instance UID'}`, {
        sopClassUid,
        sopInstanceUid,
      });
    }
    return {
      source,
      sopClassUid,
      sopInstanceUid,
      transferSyntaxUid,
      dataset,
      studyInstanceUid: attributes.studyInstanceUid,
    };
  } catch (error) {
    return unreadable(describeError(error));
  }
}

type TransferOutcome = { results: InstanceResult[] } | { transient: BatchFailure; completed: InstanceResult[] };

const C_STORE_RQ = 0x0001;
const DATASET_PRESENT = 0x0000;

interface ProposedContextPlan {
  id: number;
  abstractSyntax: string;
  transferSyntaxes: string[];
}

/**
 * The contexts we propose: per SOP class, Explicit and Implicit VR LE in one context (so that an uncompressed
 * object can be re-encoded for a peer that takes only the other), and per SOP class and transfer syntax of an
 * object, that syntax alone, so that every object can go out unchanged where the peer allows. Past the 128
 * contexts PS3.8 allows, objects simply find no context (not sent, reported).
 */
function proposeContexts(instances: readonly PreparedInstance[]): ProposedContextPlan[] {
  const contexts: ProposedContextPlan[] = [];
  const seen = new Set<string>();
  const add = (abstractSyntax: string, transferSyntaxes: string[]): void => {
    const key = `${abstractSyntax}|${transferSyntaxes.join(',')}`;
    if (seen.has(key) || contexts.length >= MAX_PRESENTATION_CONTEXTS) return;
    seen.add(key);
    contexts.push({ id: contexts.length * 2 + 1, abstractSyntax, transferSyntaxes });
  };
  for (const instance of instances) {
    add(instance.sopClassUid, [instance.transferSyntaxUid]);
    add(instance.sopClassUid, [TransferSyntax.ExplicitVRLittleEndian, TransferSyntax.ImplicitVRLittleEndian]);
  }
  return contexts;
}

async function transfer(
  peer: ScuPeer,
  instances: PreparedInstance[],
  options: SendInstancesOptions,
): Promise<TransferOutcome> {
  const { logger, signal } = options;
  const peerName = `${peer.calledAeTitle}@${peer.host}:${peer.port}`;
  const results = new Map<PreparedInstance, InstanceResult>();
  const answeredInOrder = (): InstanceResult[] => instances.flatMap((i) => results.get(i) ?? []);
  const progress = (): string => {
    const answered = [...results.values()].filter((r) => r.outcome !== 'not-sent').length;
    return `after ${answered} of ${instances.length} C-STOREs were answered`;
  };
  const failed = (failure: BatchFailure): TransferOutcome => {
    logger.warn('DICOM transfer failed', {
      event: 'DIMSE-1102',
      peer: peerName,
      kind: failure.kind,
      why: failure.reason,
    });
    return { transient: failure, completed: answeredInOrder() };
  };

  const proposed = proposeContexts(instances);
  const opened = await ScuAssociation.open(
    {
      host: peer.host,
      port: peer.port,
      callingAeTitle: peer.callingAeTitle,
      calledAeTitle: peer.calledAeTitle,
      contexts: proposed,
      connectTimeoutMs: peer.connectTimeoutMs,
      responseTimeoutMs: peer.responseTimeoutMs,
      ...(peer.tls === undefined ? {} : { tls: peer.tls }),
    },
    signal,
  );
  if (!(opened instanceof ScuAssociation)) return failed(describeFailure(opened, peer, peerName, progress()));
  const association = opened;

  const acceptedContexts = new Map<number, { abstractSyntax: string; transferSyntax: string }>();
  for (const context of association.accepted?.contexts ?? []) {
    const ours = proposed.find((p) => p.id === context.id);
    if (ours === undefined || context.result !== ContextResult.Acceptance || context.transferSyntax === undefined)
      continue;
    // A peer that "accepts" a syntax we did not propose for that context gets nothing sent on it.
    if (!ours.transferSyntaxes.includes(context.transferSyntax)) continue;
    acceptedContexts.set(context.id, { abstractSyntax: ours.abstractSyntax, transferSyntax: context.transferSyntax });
  }

  let messageId = 0;
  for (const instance of instances) {
    const plan = planInstance(acceptedContexts, instance);
    if (plan.kind === 'not-sendable') {
      const reason =
        `${peerName} accepted no presentation context for SOP class ${instance.sopClassUid} in transfer syntax ` +
        `${instance.transferSyntaxUid} or one we can convert it to; add them to the PACS's accepted SOP classes / transfer syntaxes`;
      results.set(instance, { ...unsent(instance), cause: 'no-accepted-context', reason });
      logger.warn('instance not sent: no accepted presentation context', {
        event: 'DIMSE-1103',
        peer: peerName,
        sopInstanceUid: instance.sopInstanceUid,
        why: reason,
      });
      continue;
    }
    let dataset = instance.dataset;
    if (plan.kind === 'decompress') {
      // A compressed object (e.g. our SC in secondaryCapture.encoding) for a PACS that takes it only uncompressed:
      // decoded here rather than not sent. Lossy objects already say so (LossyImageCompression 01).
      try {
        if (!frameEncodersReady()) await initFrameEncoders();
        const transcoder = new Transcoder(arrayBufferOf(instance.dataset), instance.transferSyntaxUid);
        transcoder.transcode(plan.transferSyntaxUid);
        dataset = Buffer.from(transcoder.getDicomDataset());
      } catch (error) {
        results.set(instance, {
          ...unsent(instance),
          cause: 'unreadable',
          reason: `${instance.source} cannot be decompressed for ${peerName}, which takes it only uncompressed: ${describeError(error)}`,
        });
        continue;
      }
    }
    if (plan.kind === 're-encode') {
      // dcmjs writes it again in the accepted syntax; fragmentMultiframe is irrelevant for native pixels but
      // stays off so that nothing is ever split behind our back.
      try {
        const parsed = new Dataset(instance.dataset, instance.transferSyntaxUid);
        parsed.setTransferSyntaxUid(plan.transferSyntaxUid);
        dataset = parsed.getDenaturalizedDataset({ fragmentMultiframe: false });
      } catch (error) {
        results.set(instance, {
          ...unsent(instance),
          cause: 'unreadable',
          reason: `dcmjs cannot re-encode ${instance.source}: ${describeError(error)}`,
        });
        continue;
      }
    }
    if (plan.kind === 'decompress' || plan.kind === 're-encode')
      logger.info('the PACS did not accept the object in its own transfer syntax; re-encoding it', {
        event: 'DIMSE-1104',
        peer: peerName,
        sopInstanceUid: instance.sopInstanceUid,
        from: instance.transferSyntaxUid,
        to: plan.transferSyntaxUid,
      });
    messageId += 1;
    const command = encodeCommand([
      [CommandElement.AffectedSopClassUid, { ui: instance.sopClassUid }],
      [CommandElement.CommandField, { us: C_STORE_RQ }],
      [CommandElement.MessageId, { us: messageId }],
      [CommandElement.Priority, { us: 0 }],
      [CommandElement.CommandDataSetType, { us: DATASET_PRESENT }],
      [CommandElement.AffectedSopInstanceUid, { ui: instance.sopInstanceUid }],
    ]);
    const response = await association.request(plan.contextId, messageId, command, dataset);
    if (!('elements' in response)) {
      association.release().catch(() => undefined);
      return failed(describeFailure(response, peer, peerName, progress()));
    }
    const status = response.status ?? 0xffff;
    const comment = response.errorComment?.trim();
    const outcome = classifyStoreStatus(status);
    const result: AnsweredInstance = {
      source: instance.source,
      sopInstanceUid: instance.sopInstanceUid,
      sopClassUid: instance.sopClassUid,
      outcome,
      status,
      ...(comment !== undefined && comment !== '' ? { comment } : {}),
    };
    results.set(instance, result);
    // The Error Comment is the PACS's free text (it may quote a patient name): its length only, above debug.
    const fields = {
      peer: peerName,
      sopInstanceUid: instance.sopInstanceUid,
      status: formatStatus(status),
      commentLength: result.comment?.length,
    };
    if (outcome === 'warning')
      logger.warn('C-STORE warning: the PACS stored the instance with a warning', { event: 'DIMSE-1105', ...fields });
    else if (outcome === 'failed') logger.warn('C-STORE failed', { event: 'DIMSE-1106', ...fields });
    else logger.debug('C-STORE succeeded', fields);
  }
  // Every instance is answered: what happens to the release changes nothing that was stored.
  await association.release();
  const afterwards = association.failed;
  if (afterwards !== undefined) {
    if (afterwards.kind === 'stopped' && signal?.aborted) return failed(stoppedFailure(peer));
    logger.warn('the association did not end with a release; every instance was answered', {
      event: 'DIMSE-1107',
      peer: peerName,
      kind: afterwards.kind,
      why: describeFailure(afterwards, peer, peerName, progress()).reason,
    });
  }
  return { results: answeredInOrder() };
}

function unsent(instance: PreparedInstance): Omit<UnsentInstance, 'cause' | 'reason'> {
  return {
    source: instance.source,
    sopInstanceUid: instance.sopInstanceUid,
    sopClassUid: instance.sopClassUid,
    outcome: 'not-sent',
  };
}

type InstancePlan =
  | { kind: 'as-is'; contextId: number }
  | { kind: 're-encode'; contextId: number; transferSyntaxUid: string }
  | { kind: 'decompress'; contextId: number; transferSyntaxUid: string }
  | { kind: 'not-sendable' };

function arrayBufferOf(bytes: Buffer): ArrayBuffer {
  const copy = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(copy).set(bytes);
  return copy;
}

function planInstance(
  accepted: ReadonlyMap<number, { abstractSyntax: string; transferSyntax: string }>,
  instance: PreparedInstance,
): InstancePlan {
  let other: { contextId: number; transferSyntaxUid: string } | undefined;
  for (const [contextId, context] of accepted) {
    if (context.abstractSyntax !== instance.sopClassUid) continue;
    if (context.transferSyntax === instance.transferSyntaxUid) return { kind: 'as-is', contextId };
    if (other === undefined && UNCOMPRESSED.has(context.transferSyntax))
      other = { contextId, transferSyntaxUid: context.transferSyntax };
  }
  if (other === undefined) return { kind: 'not-sendable' };
  return { kind: UNCOMPRESSED.has(instance.transferSyntaxUid) ? 're-encode' : 'decompress', ...other };
}

/** The sentence for the admin, per way an association can end early. */
function describeFailure(failure: ScuFailure, peer: ScuPeer, peerName: string, progress: string): BatchFailure {
  switch (failure.kind) {
    case 'connection-refused':
      return {
        kind: 'connection-refused',
        reason: `connection refused by ${peer.host}:${peer.port} (ECONNREFUSED): the PACS is not listening there; is it running, and is the port right?`,
      };
    case 'connect-failed':
      return { kind: 'connect-failed', reason: `cannot connect to ${peerName}: ${failure.detail}` };
    case 'tls-failed':
      // Retried like an unreachable host: a certificate is fixed on one side or the other without a change here.
      return {
        kind: 'connect-failed',
        reason: `TLS handshake with ${peerName} failed: ${failure.detail}; check the destination's tls.caFile (the PACS certificate must chain to it and name ${peer.host}) and the client certificate the PACS expects`,
      };
    case 'connect-timeout':
      return {
        kind: 'connect-timeout',
        reason: `no TCP connection to ${peerName} within ${seconds(peer.connectTimeoutMs)}; check the PACS host, port and firewall`,
      };
    case 'association-rejected': {
      const detail = describeRejection(failure);
      return {
        kind: 'association-rejected',
        reason: `${peerName} rejected the association from '${peer.callingAeTitle}' (${detail.permanent ? 'permanent' : 'transient'}, ${detail.source}: ${detail.reason}); ${rejectionAdvice(failure.reason, peer)}`,
        rejection: detail,
      };
    }
    case 'association-timeout':
      return {
        kind: 'association-timeout',
        reason: `${peerName} accepted the TCP connection but did not answer the association request within ${seconds(peer.responseTimeoutMs)}; is this port a DICOM service?`,
      };
    case 'association-aborted':
      return {
        kind: 'association-aborted',
        reason: `${peerName} aborted the association (A-ABORT, ${describeAbort(failure.abort)}) ${progress}; see the PACS's log for why`,
      };
    case 'connection-closed':
      return {
        kind: 'association-aborted',
        reason: `${peerName} closed the connection ${progress}; see the PACS's log for why`,
      };
    case 'protocol-error':
      return {
        kind: 'association-aborted',
        reason: `the connection to ${peerName} failed during the association: ${failure.detail}`,
      };
    case 'response-timeout':
      return {
        kind: 'response-timeout',
        reason: `${peerName} did not answer within ${seconds(peer.responseTimeoutMs)} (responseTimeoutSeconds) while ${failure.phase === 'associating' ? 'negotiating the association' : 'storing'}; the PACS may be overloaded`,
      };
    case 'stopped':
      return stoppedFailure(peer);
  }
}

const REJECT_SOURCES: Record<number, string> = {
  1: 'service user',
  2: 'service provider (ACSE)',
  3: 'service provider (presentation)',
};

function describeRejection(rejection: { result: number; source: number; reason: number }): {
  permanent: boolean;
  source: string;
  reason: string;
} {
  const permanent = rejection.result === 1; // PS3.8 9.3.4: 1 rejected-permanent, 2 rejected-transient
  const source = REJECT_SOURCES[rejection.source] ?? `source ${rejection.source}`;
  // Reason codes depend on the source (PS3.8 Table 9-21).
  let reason = `reason ${rejection.reason}`;
  if (rejection.source === 1) {
    reason =
      {
        1: 'no reason given',
        2: 'application context not supported',
        3: 'calling AE title not recognized',
        7: 'called AE title not recognized',
      }[rejection.reason] ?? reason;
  } else if (rejection.source === 2) {
    reason = { 1: 'no reason given', 2: 'protocol version not supported' }[rejection.reason] ?? reason;
  } else if (rejection.source === 3) {
    reason = { 1: 'temporary congestion', 2: 'local limit exceeded' }[rejection.reason] ?? reason;
  }
  return { permanent, source, reason };
}

function rejectionAdvice(reasonCode: number, peer: ScuPeer): string {
  if (reasonCode === 3)
    return `register AE '${peer.callingAeTitle}' (with this gateway's address) in the PACS, or set callingAeTitle to the AE it knows`;
  if (reasonCode === 7) return `check the destination's aeTitle: the PACS does not answer to '${peer.calledAeTitle}'`;
  return 'see the PACS log for why';
}

// A-ABORT source 0 is the service user (the PACS application), 2 the service provider (its DICOM stack);
// reasons are only given by the provider (PS3.8 9.3.8).
function describeAbort(abort: { source: number; reason: number }): string {
  const source =
    abort.source === 0
      ? 'by the PACS application'
      : abort.source === 2
        ? 'by the PACS DICOM stack'
        : `source ${abort.source}`;
  const reasons: Record<number, string> = {
    1: 'unrecognized PDU',
    2: 'unexpected PDU',
    4: 'unrecognized PDU parameter',
    5: 'unexpected PDU parameter',
    6: 'invalid PDU parameter value',
  };
  return abort.source === 2 && reasons[abort.reason] !== undefined ? `${source}: ${reasons[abort.reason]}` : source;
}

function stoppedFailure(peer: ScuPeer): BatchFailure {
  return {
    kind: 'stopped',
    reason: `the transfer to ${peer.calledAeTitle}@${peer.host}:${peer.port} was stopped (the gateway is shutting down)`,
  };
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

/**
 * dcmjs-dimse logs to the console until someone sets its level; the SCU reports everything through its results
 * instead, so the library's lines (from re-encoding a data set) would only be console noise.
 */
function quietLibraryLogs(): void {
  if (dimse.log.getLevel() === dimse.log.levels.TRACE) dimse.log.setLevel('silent');
}
