import { readFile } from 'node:fs/promises';
import type net from 'node:net';
import dimse from 'dcmjs-dimse';
import type { association, requests, responses } from 'dcmjs-dimse';
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME } from '../dicom/implementation.js';
import { walkDatasetBuffer } from '../dicom/dataset-walker.js';
import { parsePart10Header } from '../dicom/part10-header.js';
import { TransferSyntax, encodingOf } from '../dicom/transfer-syntaxes.js';
import { describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';

const { Client, Dataset, Implementation, constants } = dimse;
const { CStoreRequest } = dimse.requests;
const { PresentationContext } = dimse.association;
type Association = association.Association;
type CStoreRequestType = requests.CStoreRequest;
type CStoreResponseType = responses.CStoreResponse;
type DatasetType = InstanceType<typeof Dataset>;

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
}

// C-STORE statuses (PS3.4 B.2.3, PS3.7 C): Success is 0x0000; Warnings are 0x0001, 0x0107 (attribute list
// error), 0x0116 (attribute value out of range) and 0xB000-0xBFFF (coercion, elements discarded, data set does
// not match SOP class); every other code is a Failure.
export function classifyStoreStatus(status: number): 'stored' | 'warning' | 'failed' {
  if (status === 0x0000) return 'stored';
  if (status === 0x0001 || status === 0x0107 || status === 0x0116 || (status >= 0xb000 && status <= 0xbfff)) return 'warning';
  return 'failed';
}

export function formatStatus(status: number): string {
  return `0x${status.toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * A dcmjs-dimse Dataset that carries a Part 10 file's data set bytes and hands them to the network unchanged.
 * The library's own Dataset parses a file into dcmjs's naturalised form and writes it again for the wire;
 * that re-encoding is not neutral (private elements, VRs and value formatting can change, and dcmjs splits
 * encapsulated frames into 20 KiB fragments by default), and a gateway forwards objects as they were written.
 * The two elements the library reads (for the C-STORE command) are the only ones parsed.
 */
class EncodedDataset extends Dataset {
  constructor(
    private readonly encoded: Buffer,
    sopClassUid: string,
    sopInstanceUid: string,
    transferSyntaxUid: string,
  ) {
    super({ SOPClassUID: sopClassUid, SOPInstanceUID: sopInstanceUid }, transferSyntaxUid);
  }

  override getDenaturalizedDataset(): Buffer {
    return this.encoded;
  }
}

interface PreparedInstance {
  source: string;
  sopClassUid: string;
  sopInstanceUid: string;
  transferSyntaxUid: string;
  dataset: Buffer;
  request: CStoreRequestType;
}

// The parts of dcmjs-dimse's Client that its types do not show: the network (with its socket) of the
// association in progress. Only used to close a socket the library would leave half-open (a connect that
// timed out) and to hear the peer's A-ABORT, which the Client does not pass on.
interface ClientInternals {
  network?: { socket?: net.Socket; on?(event: 'abort', listener: (abort: { source: number; reason: number }) => void): unknown };
}

const UNCOMPRESSED: ReadonlySet<string> = new Set([TransferSyntax.ImplicitVRLittleEndian, TransferSyntax.ExplicitVRLittleEndian]);

/**
 * Sends a batch of Part 10 objects to one Storage SCP in one association and reads each C-STORE status.
 *
 * Each object is proposed in its own transfer syntax and, as a fallback, in Explicit and Implicit VR Little
 * Endian; it goes out byte for byte in its own syntax whenever the peer accepts that. An uncompressed object
 * the peer accepts only in the other uncompressed syntax is re-encoded by dcmjs (without fragmenting frames);
 * a compressed object the peer accepts only uncompressed is not sent (we do not decompress): `not-sent`.
 *
 * Never rejects for anything the files or the network do: per-instance results, or a batch failure whose
 * reason names the peer and the cause.
 */
export async function sendInstances(peer: ScuPeer, items: readonly Part10Source[], options: SendInstancesOptions): Promise<StoreBatchResult> {
  const { logger } = options;
  quietLibraryLogs();
  const unsent: UnsentInstance[] = [];
  const prepared: PreparedInstance[] = [];
  for (const [index, item] of items.entries()) {
    const instance = await prepare(item, index);
    if ('outcome' in instance) unsent.push(instance);
    else prepared.push(instance);
  }
  for (const u of unsent) logger.warn('instance not sent: unreadable', { source: u.source, why: u.reason });
  if (prepared.length === 0) return { results: unsent };
  if (options.signal?.aborted) return { transient: stoppedFailure(peer), completed: unsent };
  const answered = await transfer(peer, prepared, options);
  if ('transient' in answered) return { transient: answered.transient, completed: [...unsent, ...answered.completed] };
  return { results: [...unsent, ...answered.results] };
}

async function prepare(item: Part10Source, index: number): Promise<PreparedInstance | UnsentInstance> {
  const source = 'path' in item ? item.path : (item.label ?? `object #${index + 1}`);
  const unreadable = (reason: string, uids: { sopInstanceUid?: string; sopClassUid?: string } = {}): UnsentInstance => ({
    source,
    ...uids,
    outcome: 'not-sent',
    cause: 'unreadable',
    reason,
  });
  let file: Buffer;
  try {
    file = 'path' in item ? await readFile(item.path) : Buffer.from(item.bytes.buffer, item.bytes.byteOffset, item.bytes.byteLength);
  } catch (error) {
    return unreadable(`cannot read ${source}: ${describeError(error)}`);
  }
  try {
    const { transferSyntaxUid, datasetOffset } = parsePart10Header(file, source);
    if (encodingOf(transferSyntaxUid) === undefined) return unreadable(`${source} is in transfer syntax ${transferSyntaxUid}, which this gateway does not send`);
    const dataset = file.subarray(datasetOffset);
    // The walk also proves the data set is whole: a truncated file would otherwise be found by the PACS,
    // after the association is open, as a failure for this instance or an abort for the whole batch.
    const { attributes } = walkDatasetBuffer(dataset, transferSyntaxUid);
    const { sopClassUid, sopInstanceUid } = attributes;
    if (sopClassUid === undefined || sopInstanceUid === undefined) {
      return unreadable(`${source} has no ${sopClassUid === undefined ? 'SOP Class UID' : 'SOP Instance UID'}`, { sopClassUid, sopInstanceUid });
    }
    const request = new CStoreRequest(new EncodedDataset(dataset, sopClassUid, sopInstanceUid, transferSyntaxUid));
    return { source, sopClassUid, sopInstanceUid, transferSyntaxUid, dataset, request };
  } catch (error) {
    return unreadable(describeError(error));
  }
}

type TransferOutcome = { results: InstanceResult[] } | { transient: BatchFailure; completed: InstanceResult[] };

function transfer(peer: ScuPeer, instances: PreparedInstance[], options: SendInstancesOptions): Promise<TransferOutcome> {
  const { logger, signal } = options;
  const peerName = `${peer.calledAeTitle}@${peer.host}:${peer.port}`;
  const client = new Client();
  const internals = client as unknown as ClientInternals;
  const results = new Map<PreparedInstance, InstanceResult>();
  let phase: 'connecting' | 'associating' | 'transferring' = 'connecting';

  // The library proposes, per SOP class, Implicit + Explicit VR LE in one context and each compressed syntax
  // in a context of its own. An uncompressed object also gets a context with its own syntax alone, so that a
  // peer which would pick the other uncompressed syntax in the shared context can still take it unchanged.
  const proposed = new Set<string>();
  for (const instance of instances) {
    client.addRequest(instance.request);
    const key = `${instance.sopClassUid}|${instance.transferSyntaxUid}`;
    if (UNCOMPRESSED.has(instance.transferSyntaxUid) && !proposed.has(key)) {
      proposed.add(key);
      client.addAdditionalPresentationContext(new PresentationContext(1, instance.sopClassUid, instance.transferSyntaxUid), true);
    }
    instance.request.on('response', (response: CStoreResponseType) => {
      const status = response.getStatus();
      const comment = response.getErrorComment();
      const outcome = classifyStoreStatus(status);
      const result: AnsweredInstance = {
        source: instance.source,
        sopInstanceUid: instance.sopInstanceUid,
        sopClassUid: instance.sopClassUid,
        outcome,
        status,
        ...(typeof comment === 'string' && comment.trim() !== '' ? { comment: comment.trim() } : {}),
      };
      results.set(instance, result);
      // The Error Comment is the PACS's free text (it may quote a patient name): its length only, above debug.
      const fields = { peer: peerName, sopInstanceUid: instance.sopInstanceUid, status: formatStatus(status), commentLength: result.comment?.length };
      if (outcome === 'warning') logger.warn('C-STORE warning: the PACS stored the instance with a warning', fields);
      else if (outcome === 'failed') logger.warn('C-STORE failed', fields);
      else logger.debug('C-STORE succeeded', fields);
    });
  }

  return new Promise<TransferOutcome>((resolve) => {
    let settled = false;
    const allAnswered = (): boolean => instances.every((i) => results.has(i));
    const progress = (): string => {
      const answered = [...results.values()].filter((r) => r.outcome !== 'not-sent').length;
      return `after ${answered} of ${instances.length} C-STOREs were answered`;
    };
    const answeredInOrder = (): InstanceResult[] => instances.flatMap((i) => results.get(i) ?? []);
    const onAbortSignal = (): void => finish(stoppedFailure(peer));
    const connectTimer = setTimeout(() => {
      finish({ kind: 'connect-timeout', reason: `no TCP connection to ${peerName} within ${seconds(peer.connectTimeoutMs)}; check the PACS host, port and firewall` });
    }, peer.connectTimeoutMs);
    signal?.addEventListener('abort', onAbortSignal, { once: true });

    // Ends the transfer once: undefined after a release, or the first failure. Once every instance is
    // answered, what then happens to the release (a timeout, an abort, our own stop) changes nothing that
    // was stored, and the results stand.
    function finish(failure: BatchFailure | undefined): void {
      if (settled) return;
      settled = true;
      clearTimeout(connectTimer);
      signal?.removeEventListener('abort', onAbortSignal);
      const complete = phase === 'transferring' && allAnswered();
      if (failure !== undefined) {
        // The library only end()s the socket; a connect still pending, or a peer that never answers, would
        // keep it open for minutes.
        if (phase !== 'connecting') {
          try {
            client.abort();
          } catch {
            // no association to abort
          }
        }
        internals.network?.socket?.destroy();
        const fields = { peer: peerName, kind: failure.kind, why: failure.reason };
        if (complete) logger.warn('the association did not end with a release; every instance was answered', fields);
        else logger.warn('DICOM transfer failed', fields);
      }
      resolve(complete || failure === undefined ? { results: answeredInOrder() } : { transient: failure, completed: answeredInOrder() });
    }

    client.on('connected', () => {
      clearTimeout(connectTimer);
      phase = 'associating';
      // The Client does not pass the peer's A-ABORT on, and some peers keep the connection open after one:
      // without this, the batch would wait for the response timeout.
      internals.network?.on?.('abort', (abort) => {
        finish({
          kind: 'association-aborted',
          reason: `${peerName} aborted the association (A-ABORT, ${describeAbort(abort)}) ${progress()}; see the PACS's log for why`,
        });
      });
    });
    // Runs before the library starts sending (it emits synchronously, then sends the requests it holds),
    // so the requests can be fitted to what the peer accepted here.
    client.on('associationAccepted', (accepted: Association) => {
      phase = 'transferring';
      const sendable: CStoreRequestType[] = [];
      for (const instance of instances) {
        const plan = planInstance(accepted, instance);
        if (plan.kind === 'as-is') sendable.push(instance.request);
        else if (plan.kind === 're-encode') {
          // dcmjs writes it again in the accepted syntax; fragmentMultiframe is irrelevant for native pixels
          // but stays off (datasetWriteOptions below) so that nothing is ever split behind our back.
          let parsed: DatasetType;
          try {
            parsed = new Dataset(instance.dataset, instance.transferSyntaxUid);
          } catch (error) {
            results.set(instance, { ...unsent(instance), cause: 'unreadable', reason: `dcmjs cannot re-encode ${instance.source}: ${describeError(error)}` });
            continue;
          }
          parsed.setTransferSyntaxUid(plan.transferSyntaxUid);
          instance.request.setDataset(parsed);
          sendable.push(instance.request);
          logger.info('the PACS did not accept the object in its own transfer syntax; re-encoding it', {
            peer: peerName,
            sopInstanceUid: instance.sopInstanceUid,
            from: instance.transferSyntaxUid,
            to: plan.transferSyntaxUid,
          });
        } else {
          const reason =
            `${peerName} accepted no presentation context for SOP class ${instance.sopClassUid} in transfer syntax ` +
            `${instance.transferSyntaxUid} or one we can convert it to; add them to the PACS's accepted SOP classes / transfer syntaxes`;
          results.set(instance, { ...unsent(instance), cause: 'no-accepted-context', reason });
          logger.warn('instance not sent: no accepted presentation context', { peer: peerName, sopInstanceUid: instance.sopInstanceUid, why: reason });
        }
      }
      client.clearRequests();
      for (const request of sendable) client.addRequest(request);
    });
    client.on('associationRejected', (rejection: { result: number; source: number; reason: number }) => {
      const detail = describeRejection(rejection);
      finish({
        kind: 'association-rejected',
        reason: `${peerName} rejected the association from '${peer.callingAeTitle}' (${detail.permanent ? 'permanent' : 'transient'}, ${detail.source}: ${detail.reason}); ${rejectionAdvice(rejection.reason, peer)}`,
        rejection: detail,
      });
    });
    client.on('associationReleased', () => finish(undefined));
    client.on('networkError', (error: Error) => finish(classifyNetworkError(error.message, phase, peer, peerName)));
    client.on('closed', () => {
      finish({
        kind: 'association-aborted',
        reason: `${peerName} closed the connection ${progress()}; see the PACS's log for why`,
      });
    });

    Implementation.setImplementationClassUid(IMPLEMENTATION_CLASS_UID);
    Implementation.setImplementationVersion(IMPLEMENTATION_VERSION_NAME);
    try {
      client.send(peer.host, peer.port, peer.callingAeTitle, peer.calledAeTitle, {
        // The library's connectTimeout is the socket's idle timeout for the whole association; ours (the timer
        // above) covers the connect, so the library's only backs up the response timeout.
        connectTimeout: peer.connectTimeoutMs + peer.responseTimeoutMs,
        associationTimeout: peer.responseTimeoutMs,
        // Measured from the last PDU the peer sent, so it bounds the wait for each C-STORE response.
        pduTimeout: peer.responseTimeoutMs,
        datasetWriteOptions: { fragmentMultiframe: false },
      });
    } catch (error) {
      finish({ kind: 'connect-failed', reason: `cannot start a DICOM association to ${peerName}: ${describeError(error)}` });
    }
  });
}

function unsent(instance: PreparedInstance): Omit<UnsentInstance, 'cause' | 'reason'> {
  return { source: instance.source, sopInstanceUid: instance.sopInstanceUid, sopClassUid: instance.sopClassUid, outcome: 'not-sent' };
}

type InstancePlan = { kind: 'as-is' } | { kind: 're-encode'; transferSyntaxUid: string } | { kind: 'not-sendable' };

function planInstance(accepted: Association, instance: PreparedInstance): InstancePlan {
  const syntaxes = new Set<string>();
  for (const { context } of accepted.getPresentationContexts()) {
    if (context.getAbstractSyntaxUid() !== instance.sopClassUid) continue;
    if (context.getResult() !== constants.PresentationContextResult.Accept) continue;
    const ts = context.getAcceptedTransferSyntaxUid();
    if (ts !== undefined) syntaxes.add(ts);
  }
  if (syntaxes.has(instance.transferSyntaxUid)) return { kind: 'as-is' };
  if (UNCOMPRESSED.has(instance.transferSyntaxUid)) {
    const other = [...syntaxes].find((ts) => UNCOMPRESSED.has(ts));
    if (other !== undefined) return { kind: 're-encode', transferSyntaxUid: other };
  }
  return { kind: 'not-sendable' };
}

function classifyNetworkError(message: string, phase: string, peer: ScuPeer, peerName: string): BatchFailure {
  const code = /\b(E[A-Z]{3,})\b/.exec(message)?.[1];
  if (message.includes('Exceeded association timeout')) {
    return { kind: 'association-timeout', reason: `${peerName} accepted the TCP connection but did not answer the association request within ${seconds(peer.responseTimeoutMs)}; is this port a DICOM service?` };
  }
  if (message.includes('Exceeded PDU timeout') || message.includes('Connection timeout')) {
    if (phase === 'connecting') {
      return { kind: 'connect-timeout', reason: `no TCP connection to ${peerName} within ${seconds(peer.connectTimeoutMs)}; check the PACS host, port and firewall` };
    }
    return {
      kind: 'response-timeout',
      reason: `${peerName} did not answer within ${seconds(peer.responseTimeoutMs)} (responseTimeoutSeconds) while ${phase === 'associating' ? 'negotiating the association' : 'storing'}; the PACS may be overloaded`,
    };
  }
  if (phase === 'connecting') {
    if (code === 'ECONNREFUSED') {
      return { kind: 'connection-refused', reason: `connection refused by ${peer.host}:${peer.port} (ECONNREFUSED): the PACS is not listening there; is it running, and is the port right?` };
    }
    return { kind: 'connect-failed', reason: `cannot connect to ${peerName}: ${stripLibraryPrefix(message)}` };
  }
  return { kind: 'association-aborted', reason: `the connection to ${peerName} failed during the association: ${stripLibraryPrefix(message)}` };
}

// The library prefixes its messages with the called AE and an arrow ("ORTHANC -> Connection error: ...").
function stripLibraryPrefix(message: string): string {
  return message.replace(/^.*?-> /, '');
}

const REJECT_SOURCES: Record<number, string> = { 1: 'service user', 2: 'service provider (ACSE)', 3: 'service provider (presentation)' };

function describeRejection(rejection: { result: number; source: number; reason: number }): { permanent: boolean; source: string; reason: string } {
  const permanent = rejection.result === constants.RejectResult.Permanent;
  const source = REJECT_SOURCES[rejection.source] ?? `source ${rejection.source}`;
  // Reason codes depend on the source (PS3.8 Table 9-21).
  let reason = `reason ${rejection.reason}`;
  if (rejection.source === 1) {
    reason = { 1: 'no reason given', 2: 'application context not supported', 3: 'calling AE title not recognized', 7: 'called AE title not recognized' }[rejection.reason] ?? reason;
  } else if (rejection.source === 2) {
    reason = { 1: 'no reason given', 2: 'protocol version not supported' }[rejection.reason] ?? reason;
  } else if (rejection.source === 3) {
    reason = { 1: 'temporary congestion', 2: 'local limit exceeded' }[rejection.reason] ?? reason;
  }
  return { permanent, source, reason };
}

function rejectionAdvice(reasonCode: number, peer: ScuPeer): string {
  if (reasonCode === 3) return `register AE '${peer.callingAeTitle}' (with this gateway's address) in the PACS, or set callingAeTitle to the AE it knows`;
  if (reasonCode === 7) return `check the destination's aeTitle: the PACS does not answer to '${peer.calledAeTitle}'`;
  return 'see the PACS log for why';
}

// A-ABORT source 0 is the service user (the PACS application), 2 the service provider (its DICOM stack);
// reasons are only given by the provider (PS3.8 9.3.8).
function describeAbort(abort: { source: number; reason: number }): string {
  const source = abort.source === 0 ? 'by the PACS application' : abort.source === 2 ? 'by the PACS DICOM stack' : `source ${abort.source}`;
  const reasons: Record<number, string> = { 1: 'unrecognized PDU', 2: 'unexpected PDU', 4: 'unrecognized PDU parameter', 5: 'unexpected PDU parameter', 6: 'invalid PDU parameter value' };
  return abort.source === 2 && reasons[abort.reason] !== undefined ? `${source}: ${reasons[abort.reason]}` : source;
}

function stoppedFailure(peer: ScuPeer): BatchFailure {
  return { kind: 'stopped', reason: `the transfer to ${peer.calledAeTitle}@${peer.host}:${peer.port} was stopped (the gateway is shutting down)` };
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

/**
 * dcmjs-dimse logs every PDU to the console until someone sets its level. The Storage SCP routes those lines
 * into our logger when it starts; the SCU reports everything through its results instead, so when nobody has
 * configured the library (it still logs at trace) its lines would only be console noise.
 */
function quietLibraryLogs(): void {
  if (dimse.log.getLevel() === dimse.log.levels.TRACE) dimse.log.setLevel('silent');
}
