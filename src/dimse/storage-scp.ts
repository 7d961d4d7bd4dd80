import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { Writable } from 'node:stream';
import dimse from 'dcmjs-dimse';
import type { association, requests, responses as responseTypes } from 'dcmjs-dimse';
import type { DicomConfig } from '../config/schema.js';
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME } from '../dicom/implementation.js';
import { describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { decideAssociation, normaliseAddress } from './association-policy.js';
import { StoreStatus, errorComment, statusForOutcome } from './dimse-status.js';
import type { IngestOutcome, IngestTransfer, InstanceSink } from './instance-sink.js';
import { PduGuard } from './pdu-guard.js';
import { PduStreamParser } from './pdu-stream.js';
import { SocketProxy } from './socket-proxy.js';
import { StoreBypass } from './store-bypass.js';
import { encodeStoreResponsePdu } from './store-response.js';
import { negotiateContext, type ContextPolicy } from './presentation-contexts.js';

const { Scp, Dataset, Implementation, constants, responses } = dimse;
type Association = association.Association;
type PresentationContext = association.PresentationContext;
type CStoreRequest = requests.CStoreRequest;
type CEchoRequest = requests.CEchoRequest;

export interface StorageScpOptions {
  config: DicomConfig;
  sink: InstanceSink;
  logger: Logger;
}

/** What the SCP knows of one connection. */
interface Session {
  id: string;
  socket: net.Socket;
  peerAddress: string;
  callingAe: string;
  calledAe: string;
  accepted: boolean;
  /** The C-STORE whose dataset is arriving or being made durable, and the presentation context it came on. */
  current: { transfer: IngestTransfer | undefined; refusal: IngestOutcome | undefined; contextId: number } | undefined;
  completing: Promise<void> | undefined;
  /** Takes C-STORE data sets off the library's receive path; set right after the session is created. */
  bypass: StoreBypass | undefined;
}

// The fields dcmjs-dimse's network timer reads. Its own Server sets the first two, and we replace its Server;
// it sets lastPduTime for each PDU it parses, and we for the PDUs it never sees (StoreBypass).
interface NetworkTimerFields {
  connected: boolean;
  connectedTime: number | undefined;
  lastPduTime: number | undefined;
}

/**
 * The Storage SCP: C-ECHO and C-STORE for the configured image SOP classes. It owns the listening socket
 * (bound to the configured host, which dcmjs-dimse's Server cannot do) and hands every dataset to an
 * InstanceSink, answering Success only when the sink says the instance is durable.
 */
export class StorageScp {
  private server: net.Server | undefined;
  private readonly sessions = new Set<Session>();
  private stopping = false;
  private readonly contextPolicy: ContextPolicy;

  constructor(private readonly options: StorageScpOptions) {
    this.contextPolicy = {
      sopClasses: new Set(options.config.acceptedSopClasses),
      transferSyntaxes: options.config.transferSyntaxes,
    };
  }

  get openAssociations(): number {
    let n = 0;
    for (const s of this.sessions) if (s.accepted) n += 1;
    return n;
  }

  async start(): Promise<{ host: string; port: number }> {
    const { config, logger } = this.options;
    routeLibraryLogs(logger);
    Implementation.setImplementationClassUid(IMPLEMENTATION_CLASS_UID);
    Implementation.setImplementationVersion(IMPLEMENTATION_VERSION_NAME);
    // The largest P-DATA PDU we invite peers to send us; the PDU guard enforces it.
    Implementation.setMaxPduLength(config.maxPduLength);
    const server = net.createServer((socket) => this.onConnection(socket));
    // A hard cap on sockets, above the association limit so that excess callers still get a proper
    // A-ASSOCIATE-RJ rather than a closed connection.
    server.maxConnections = config.maxAssociations * 2 + 4;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: config.host, port: config.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (error) => logger.error('DICOM listener error', { error: describeError(error) }));
    const address = server.address() as net.AddressInfo;
    return { host: address.address, port: address.port };
  }

  /**
   * Stops accepting, lets C-STOREs in progress finish (up to the grace period), then closes every
   * connection. A transfer cut off by the deadline was never acknowledged, and its partial file is removed.
   */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    const server = this.server;
    this.server = undefined;
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && [...this.sessions].some((s) => s.current !== undefined || s.completing)) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await Promise.all([...this.sessions].map((s) => s.completing));
    for (const session of this.sessions) session.socket.destroy();
    await closed;
  }

  private onConnection(socket: net.Socket): void {
    const { config, logger } = this.options;
    const session: Session = {
      id: randomUUID().slice(0, 8),
      socket,
      peerAddress: normaliseAddress(socket.remoteAddress ?? 'unknown'),
      callingAe: '',
      calledAe: '',
      accepted: false,
      current: undefined,
      completing: undefined,
      bypass: undefined,
    };
    this.sessions.add(session);
    // dcmjs-dimse talks to a proxy of the socket: we read the socket ourselves (PduStreamParser, without
    // copying), write C-STORE data sets straight to their spool files (StoreBypass) and deliver the library
    // everything else.
    const proxy = new SocketProxy(socket);
    const scp = new GatewayScp(proxy.asLibrarySocket(), this, session, {
      connectTimeout: config.idleTimeoutSeconds * 1000,
      associationTimeout: config.associationRequestTimeoutSeconds * 1000,
      pduTimeout: config.idleTimeoutSeconds * 1000,
    });
    const timer = scp as unknown as NetworkTimerFields;
    timer.connected = true;
    timer.connectedTime = Date.now();
    const guard = new PduGuard(config.maxPduLength);
    // Only called once `parser` below exists: from its callbacks or from our 'data' listener.
    const drop = (reason: string): void => {
      parser.stop();
      if (socket.destroyed) return;
      logger.warn('dropping connection: not a valid DICOM byte stream', {
        associationId: session.id,
        peer: session.peerAddress,
        reason,
      });
      socket.destroy();
    };
    const bypass = new StoreBypass({
      deliver: (pdu) => proxy.deliver(pdu),
      pause: () => socket.pause(),
      resume: () => socket.resume(),
      touch: () => {
        timer.lastPduTime = Date.now();
      },
      isClosed: () => socket.destroyed,
      fail: drop,
    });
    session.bypass = bypass;
    // The guard judges every PDU header before any of its body is buffered.
    const parser = new PduStreamParser(bypass, (type, length) => guard.checkHeader(type, length));
    socket.on('data', (chunk: Buffer) => {
      const problem = parser.push(chunk);
      if (problem !== undefined) drop(problem);
    });
    scp.on('networkError', (error: Error) => {
      logger.warn('DICOM connection error', { associationId: session.id, peer: session.peerAddress, error: error.message });
      parser.stop();
      socket.destroy();
    });
    socket.on('close', () => {
      parser.stop();
      bypass.dispose();
      this.onClosed(session);
    });
    logger.debug('connection opened', { associationId: session.id, peer: session.peerAddress });
  }

  private onClosed(session: Session): void {
    if (session.current?.transfer !== undefined && session.completing === undefined) {
      // Held as `completing` so that stop() waits for the partial file to be gone.
      session.completing = session.current.transfer.abandon().then(() => {
        session.completing = undefined;
        this.options.logger.warn('peer went away during a C-STORE; the partial instance was discarded', {
          associationId: session.id,
          callingAe: session.callingAe,
        });
      });
    }
    session.current = undefined;
    const finish = () => this.sessions.delete(session);
    if (session.completing) void session.completing.then(finish);
    else finish();
    if (session.accepted) {
      this.options.logger.info('association closed', { associationId: session.id, callingAe: session.callingAe });
    }
  }

  /** @internal called by GatewayScp */
  associationRequested(scp: GatewayScp, session: Session, request: Association): void {
    const { config, logger } = this.options;
    session.callingAe = request.getCallingAeTitle().trim();
    session.calledAe = request.getCalledAeTitle().trim();
    const decision = this.stopping
      ? {
          accept: false as const,
          result: 2 as const,
          source: 3 as const,
          reason: 1,
          explanation: 'the gateway is shutting down; the sender should retry later',
        }
      : decideAssociation(
          { calledAe: session.calledAe, callingAe: session.callingAe, peerAddress: session.peerAddress },
          { aeTitle: config.aeTitle, callers: config.callers, maxAssociations: config.maxAssociations },
          this.openAssociations,
        );
    const ids = { associationId: session.id, callingAe: session.callingAe, calledAe: session.calledAe, peer: session.peerAddress };
    if (!decision.accept) {
      logger.warn('association rejected', { ...ids, result: decision.result, source: decision.source, reason: decision.reason, why: decision.explanation });
      scp.sendAssociationReject(decision.result, decision.source, decision.reason);
      return;
    }
    const accepted: string[] = [];
    for (const { context } of request.getPresentationContexts()) {
      const answer = negotiateContext(context.getAbstractSyntaxUid(), context.getTransferSyntaxUids(), this.contextPolicy);
      if (answer.result === 'accept') {
        context.setResult(constants.PresentationContextResult.Accept, answer.transferSyntax);
        accepted.push(`${context.getAbstractSyntaxUid()}@${answer.transferSyntax}`);
      } else if (answer.result === 'abstract-syntax-not-supported') {
        context.setResult(constants.PresentationContextResult.RejectAbstractSyntaxNotSupported);
      } else {
        context.setResult(constants.PresentationContextResult.RejectTransferSyntaxesNotSupported);
      }
    }
    session.accepted = true;
    logger.info('association accepted', { ...ids, contexts: accepted.length, accepted });
    scp.sendAssociationAccept();
  }

  /** @internal */
  beginStore(session: Session, context: PresentationContext, request: CStoreRequest): Writable {
    const start = this.options.sink.begin({
      sopClassUid: request.getAffectedSopClassUid(),
      sopInstanceUid: request.getAffectedSopInstanceUid(),
      transferSyntaxUid: context.getAcceptedTransferSyntaxUid() ?? '',
      callingAe: session.callingAe,
      calledAe: session.calledAe,
      sourceIp: session.peerAddress,
      associationId: session.id,
    });
    const contextId = context.getPresentationContextId();
    if (start.kind === 'transfer') {
      session.current = { transfer: start.transfer, refusal: undefined, contextId };
      return start.transfer.writable;
    }
    // Refused before any byte was written: the dataset still has to be read off the wire, into nothing.
    session.current = { transfer: undefined, refusal: start, contextId };
    return new Writable({ write: (_chunk, _encoding, callback) => callback() });
  }

  /** @internal */
  completeStore(session: Session, request: CStoreRequest, respond: (status: number, comment?: string) => void): void {
    const current = session.current;
    const ids = {
      associationId: session.id,
      callingAe: session.callingAe,
      sopInstanceUid: request.getAffectedSopInstanceUid(),
    };
    const outcomePromise: Promise<IngestOutcome> =
      current?.transfer !== undefined
        ? current.transfer.complete()
        : Promise.resolve(current?.refusal ?? { kind: 'refused', reason: 'internal', message: 'no transfer in progress' });
    session.completing = outcomePromise.then(
      (outcome) => {
        session.current = undefined;
        session.completing = undefined;
        const status = statusForOutcome(outcome);
        if (outcome.kind === 'refused') {
          this.options.logger.warn('C-STORE refused', { ...ids, status: `0x${status.toString(16)}`, why: outcome.message });
          respond(status, errorComment(outcome.message));
        } else {
          this.options.logger.info(outcome.kind === 'stored' ? 'instance stored' : 'duplicate instance acknowledged', {
            ...ids,
            studyInstanceUid: outcome.studyInstanceUid,
          });
          respond(status);
        }
      },
      (error: unknown) => {
        session.current = undefined;
        session.completing = undefined;
        this.options.logger.error('C-STORE failed', { ...ids, error: describeError(error) });
        respond(StoreStatus.ProcessingFailure, errorComment(describeError(error)));
      },
    );
  }
}

class GatewayScp extends Scp {
  constructor(
    socket: net.Socket,
    private readonly owner: StorageScp,
    private readonly session: Session,
    options: { connectTimeout: number; associationTimeout: number; pduTimeout: number },
  ) {
    super(socket, options);
  }

  override associationRequested(request: Association): void {
    this.owner.associationRequested(this, this.session, request);
  }

  override associationReleaseRequested(): void {
    this.sendAssociationReleaseResponse();
  }

  override cEchoRequest(request: CEchoRequest, callback: (response: responseTypes.CEchoResponse) => void): void {
    const response = responses.CEchoResponse.fromRequest(request);
    response.setStatus(constants.Status.Success);
    callback(response);
  }

  override createStoreWritableStream(context: PresentationContext, request: CStoreRequest): Writable {
    const writable = this.owner.beginStore(this.session, context, request);
    // Normally the data set bypasses the library and it gets a stream that discards the empty values it sees.
    return this.session.bypass?.adoptStoreStream(writable) ?? writable;
  }

  override createDatasetFromStoreWritableStream(
    _writable: Writable,
    context: PresentationContext,
    callback: (dataset: InstanceType<typeof Dataset>) => void,
  ): void {
    // The bytes are already in the spool; cStoreRequest completes the transfer from there.
    callback(new Dataset({}, context.getAcceptedTransferSyntaxUid()));
  }

  override cStoreRequest(request: CStoreRequest, callback: (response: responseTypes.CStoreResponse) => void): void {
    const contextId = this.session.current?.contextId;
    this.owner.completeStore(this.session, request, (status, comment) => {
      if (contextId !== undefined) {
        // Encoded by us (see store-response.ts) and written to the socket, where the library would write it.
        const pdu = encodeStoreResponsePdu({
          contextId,
          sopClassUid: request.getAffectedSopClassUid(),
          sopInstanceUid: request.getAffectedSopInstanceUid(),
          messageIdBeingRespondedTo: request.getMessageId(),
          status,
          errorComment: comment,
        });
        if (!this.session.socket.destroyed) this.session.socket.write(pdu);
        return;
      }
      // A C-STORE-RQ without a data set never opened a store: answer (a failure) the library's way.
      const response = responses.CStoreResponse.fromRequest(request);
      response.setStatus(status);
      if (comment !== undefined) response.setErrorComment(comment);
      callback(response);
    });
  }

  override abort(): void {
    // The socket closes next; onClosed discards any partial transfer.
  }
}

let libraryLogsRouted = false;

/** dcmjs-dimse logs through loglevel to the console; send its warnings and errors to our JSON log instead. */
function routeLibraryLogs(logger: Logger): void {
  if (libraryLogsRouted) return;
  libraryLogsRouted = true;
  const log = dimse.log;
  log.methodFactory = (methodName) => (...args: unknown[]) => {
    const message = args.map((a) => (typeof a === 'string' ? a : describeError(a))).join(' ');
    if (methodName === 'error') logger.warn('dcmjs-dimse', { detail: message });
    else if (methodName === 'warn') logger.warn('dcmjs-dimse', { detail: message });
    else logger.debug('dcmjs-dimse', { detail: message });
  };
  log.setLevel('warn');
}
