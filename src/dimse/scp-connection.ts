import type net from 'node:net';
import type { Writable } from 'node:stream';
import { describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { AbortReason, type AssociateRequest } from './association-pdus.js';
import type { ReportAnswer } from './commitment-report.js';
import { CommandField, DimseStatus, encodeResponse, parseCommand, type Command } from './dimse-messages.js';
import { StoreStatus, errorComment, statusForOutcome } from './dimse-status.js';
import type { IngestOutcome, IngestTransfer } from '../store/instance-sink.js';
import { PduGuard } from './pdu-guard.js';
import { STORAGE_COMMITMENT_PUSH_MODEL } from './storage-commitment.js';
import { PduStreamParser, type PduStreamHandler, type PdvHeader } from './pdu-stream.js';
import { UpperLayer, type TimerScheduler } from './upper-layer.js';

const VERIFICATION = '1.2.840.10008.1.1';
/** Command sets are a few hundred bytes; a longer one is not a command set. */
const MAX_COMMAND = 64 * 1024;

/** A presentation context as accepted for this association. */
export interface NegotiatedContext {
  abstractSyntax: string;
  transferSyntax: string;
}

/** The association decision the SCP takes on an A-ASSOCIATE indication. */
export type AssociationAnswer =
  { accept: true; ac: Buffer; contexts: ReadonlyMap<number, NegotiatedContext> } | { accept: false; rj: Buffer };

/** What a connection needs from the SCP that owns it. */
export interface ScpConnectionOwner {
  /** Decides on an association request (policy, contexts) and encodes the answer. */
  associate(connection: ScpConnection, request: AssociateRequest): AssociationAnswer;
  /** Opens a store for a C-STORE data set, or says why not (before a byte is read). */
  beginStore(
    connection: ScpConnection,
    command: { sopClassUid: string; sopInstanceUid: string; transferSyntaxUid: string },
  ): { kind: 'transfer'; transfer: IngestTransfer } | Extract<IngestOutcome, { kind: 'refused' }>;
  /** The connection moved on: 'associated' after an A-ASSOCIATE-AC, 'closing' once it is being closed. */
  phaseChanged(connection: ScpConnection, phase: 'associated' | 'closing'): void;
  /** The socket has closed and nothing is in flight any more. */
  finished(connection: ScpConnection): void;
  /** An instance was made durable (stored or a duplicate acknowledged) on this association. */
  stored?(connection: ScpConnection, sopClassUid: string, studyInstanceUid: string): void;
  /**
   * A storage commitment result (N-EVENT-REPORT-RQ with its data set) on a context negotiated for it; the owner
   * answers it. Left out, such a report is answered "unrecognized operation" like any other request.
   */
  commitmentReport?(
    connection: ScpConnection,
    report: { command: Command; dataset: Buffer | undefined; transferSyntaxUid: string },
  ): ReportAnswer;
}

/** What the TLS layer told us about a connection's peer (a TLS listener only). */
export interface PeerTls {
  /** The client certificate's subject (`CN=..,O=..`); undefined without a client certificate. */
  subject: string | undefined;
  commonName: string | undefined;
  /** The negotiated protocol, e.g. TLSv1.3. */
  protocol: string;
}

export interface ScpConnectionOptions {
  id: string;
  socket: net.Socket;
  peerAddress: string;
  owner: ScpConnectionOwner;
  logger: Logger;
  maxPduLength: number;
  artimMs: number;
  idleTimeoutMs: number;
  schedule: TimerScheduler;
  /** Set for a connection accepted on the TLS listener. */
  tls?: PeerTls;
}

/** A message being received: its command, and where its data set goes. */
interface Incoming {
  contextId: number;
  command: Command;
  /** For a C-STORE whose store opened: the transfer; its writable receives the data set. */
  transfer: IngestTransfer | undefined;
  /** For a C-STORE refused up front: the outcome to answer with once the data set has been read. */
  refusal: IngestOutcome | undefined;
  /** For a storage commitment report: its data set, kept in memory (it lists UIDs only). */
  reportParts?: Buffer[];
  reportLength?: number;
}

/** A storage commitment report lists UIDs: one larger than this is not one. */
const MAX_REPORT = 16 * 1024 * 1024;

/**
 * One connection of the Storage SCP: socket glue around the upper-layer state machine (every PDU goes through it
 * first) and the DIMSE service we provide on top: C-ECHO, C-STORE streamed into the store's spool file, and
 * "unrecognized operation" (0x0211) for every other command. Anything thrown while handling this connection
 * closes this connection and nothing else.
 */
export class ScpConnection {
  readonly id: string;
  readonly peerAddress: string;
  callingAe = '';
  calledAe = '';
  accepted = false;
  readonly tls: PeerTls | undefined;

  private readonly socket: net.Socket;
  private readonly upper: UpperLayer;
  private readonly parser: PduStreamParser;
  private readonly guard: PduGuard;
  private contexts: ReadonlyMap<number, NegotiatedContext> = new Map();
  /** The peer's maximum PDU length, which our responses respect. */
  private peerMaxPdu = 0;
  /** Whether the PDVs of the P-DATA-TF being parsed are to be acted on (the state machine said so). */
  private dataAllowed = false;
  private commandParts: Buffer[] = [];
  private commandLength = 0;
  private commandContext = 0;
  private incoming: Incoming | undefined;
  /** Stores whose data set is complete and whose outcome (and response) is pending. */
  private readonly completing = new Set<Promise<void>>();
  private releaseRequested = false;
  private pausedOn: Writable | undefined;
  private closed = false;
  /** The socket has closed (Evt17 is being handled): what the state machine reports next is not a protocol error. */
  private transportGone = false;
  private finishedReported = false;

  constructor(private readonly options: ScpConnectionOptions) {
    this.id = options.id;
    this.socket = options.socket;
    this.peerAddress = options.peerAddress;
    this.tls = options.tls;
    const socket = options.socket;
    this.guard = new PduGuard(options.maxPduLength);
    this.upper = new UpperLayer({
      role: 'acceptor',
      artimMs: options.artimMs,
      schedule: (ms, fire) => options.schedule(ms, () => this.safely(fire)),
      transport: {
        write: (bytes) => {
          if (!socket.destroyed && socket.writable) socket.write(bytes);
        },
        end: () => {
          // From here on nothing the peer sends is acted on; the bytes are still read, into nothing, so that the
          // kernel closes with a FIN after our last PDU rather than a reset that could discard it.
          this.parser.stop();
          if (!socket.destroyed) socket.end();
          this.abandonIncoming();
          options.owner.phaseChanged(this, 'closing');
        },
        destroy: () => {
          this.parser.stop();
          socket.destroy();
        },
      },
      user: {
        associateIndication: (request) => this.onAssociateRequest(request),
        associateRefused: (why, ids) => {
          this.callingAe = ids.callingAe;
          this.calledAe = ids.calledAe;
          options.logger.warn('association rejected', { event: 'DIMSE-1003', ...this.ids(), result: 1, why });
        },
        releaseIndication: () => this.onReleaseRequest(),
        aborted: (kind, why) => {
          const fields = { ...this.ids(), why };
          if (kind === 'peer-abort')
            options.logger.info('association aborted by the peer', { event: 'DIMSE-1004', ...fields });
          else if (this.transportGone) {
            if (this.accepted)
              options.logger.warn('the peer closed the connection without releasing the association', {
                event: 'DIMSE-1005',
                ...fields,
              });
          } else options.logger.warn('association aborted: protocol error', { event: 'DIMSE-1006', ...fields });
          this.abandonIncoming();
        },
        closed: () => this.onClosed(),
      },
      // Every transition but the data transfer ones (one per P-DATA PDU, thousands per study).
      trace: (from, event, action, to) => {
        if (action !== 'DT-1' && action !== 'DT-2')
          options.logger.debug('upper layer', { associationId: this.id, from, upperLayerEvent: event, action, to });
      },
    });
    this.parser = new PduStreamParser(this.streamHandler(), (type, length) => this.guard.checkHeader(type, length));
    socket.on('data', (chunk: Buffer) =>
      this.safely(() => {
        const problem = this.parser.push(chunk);
        if (problem !== undefined) this.upper.invalidPdu(problem);
      }),
    );
    socket.on('error', (error: Error) =>
      options.logger.debug('DICOM connection error', { ...this.ids(), error: error.message }),
    );
    socket.on('timeout', () => this.safely(() => this.onIdle()));
    socket.on('close', () =>
      this.safely(() => {
        this.transportGone = true;
        this.upper.transportClosed();
      }),
    );
    this.upper.transportIndication();
  }

  get state(): string {
    return this.upper.state;
  }

  /** Whether a C-STORE is being received or made durable. */
  get busy(): boolean {
    return this.incoming !== undefined || this.completing.size > 0;
  }

  /** Resolves once every store in flight has been answered (or abandoned). */
  async settled(): Promise<void> {
    while (this.completing.size > 0) await Promise.all([...this.completing]);
  }

  /** Shutdown: A-ABORT (service user), flushed and half-closed; the caller destroys what is left. */
  shutdown(): void {
    this.safely(() => this.upper.abort('the gateway is shutting down'));
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Closes the connection at once (admission evicts idle sockets this way). */
  evict(why: string): void {
    this.options.logger.debug('connection closed to make room', { ...this.ids(), why });
    this.socket.destroy();
  }

  /** Runs a handler; anything it throws closes this connection (never the process). */
  safely(run: () => void): void {
    try {
      run();
    } catch (error) {
      this.options.logger.error('connection handling failed; closing the connection', {
        event: 'DIMSE-1010',
        ...this.ids(),
        error: describeError(error),
      });
      this.parser?.stop();
      this.socket.destroy();
    }
  }

  private ids(): Record<string, string> {
    return { associationId: this.id, peer: this.peerAddress, callingAe: this.callingAe, calledAe: this.calledAe };
  }

  private onAssociateRequest(request: AssociateRequest): void {
    this.callingAe = request.callingAe;
    this.calledAe = request.calledAe;
    this.peerMaxPdu = request.maxPduLength;
    const answer = this.options.owner.associate(this, request);
    if (!answer.accept) {
      this.upper.reject(answer.rj);
      return;
    }
    this.contexts = answer.contexts;
    this.accepted = true;
    this.options.owner.phaseChanged(this, 'associated');
    this.upper.accept(answer.ac);
    this.socket.setTimeout(this.options.idleTimeoutMs);
  }

  private onIdle(): void {
    if (this.upper.state === 'Sta6' && this.busy) return; // a store in progress: the sink answers in time
    this.options.logger.warn('association idle for too long; aborting it', {
      event: 'DIMSE-1007',
      ...this.ids(),
      idleSeconds: this.options.idleTimeoutMs / 1000,
    });
    this.upper.abort('idle timeout');
  }

  private onReleaseRequest(): void {
    this.releaseRequested = true;
    // A-RELEASE-RP only once every response is out (Sta8 still lets us send them).
    this.respondToReleaseWhenIdle();
  }

  private respondToReleaseWhenIdle(): void {
    if (!this.releaseRequested || this.incoming !== undefined) return;
    if (this.completing.size > 0) {
      void Promise.all([...this.completing]).then(() => this.safely(() => this.respondToReleaseWhenIdle()));
      return;
    }
    this.releaseRequested = false;
    this.upper.releaseResponse();
  }

  private onClosed(): void {
    this.closed = true;
    this.releasePause();
    this.abandonIncoming();
    const report = () => {
      if (this.finishedReported) return;
      this.finishedReported = true;
      this.options.owner.finished(this);
    };
    if (this.completing.size > 0) void this.settled().then(report, report);
    else report();
  }

  /** The peer went away (or was cut off) in the middle of a data set: nothing was acknowledged, remove it. */
  private abandonIncoming(): void {
    const incoming = this.incoming;
    this.incoming = undefined;
    this.releasePause();
    if (incoming?.transfer === undefined) return;
    const done = incoming.transfer.abandon().then(
      () => {
        this.options.logger.warn('peer went away during a C-STORE; the partial instance was discarded', {
          event: 'DIMSE-1024',
          ...this.ids(),
        });
      },
      (error: unknown) => {
        this.options.logger.error('could not discard a partial instance', {
          event: 'DIMSE-1025',
          ...this.ids(),
          error: describeError(error),
        });
      },
    );
    this.track(done);
  }

  private track(promise: Promise<void>): void {
    const tracked = promise.finally(() => this.completing.delete(tracked));
    this.completing.add(tracked);
  }

  private send(pdus: readonly Buffer[]): void {
    for (const pdu of pdus) this.upper.sendData(pdu);
  }

  private streamHandler(): PduStreamHandler {
    return {
      controlPdu: (pdu) => this.upper.receiveControlPdu(pdu),
      dataPduStart: () => {
        this.dataAllowed = this.upper.receiveDataPdu();
        if (!this.dataAllowed) this.parser.stop();
      },
      pdvStart: (pdv) => this.pdvStart(pdv),
      pdvValue: (slice) => this.pdvValue(slice),
      pdvEnd: (pdv) => this.pdvEnd(pdv),
      dataPduEnd: () => undefined,
    };
  }

  private protocolError(why: string): void {
    this.upper.invalidPdu(why, AbortReason.InvalidPduParameterValue);
  }

  private pdvStart(pdv: PdvHeader): void {
    if (!this.dataAllowed) return;
    if (!this.contexts.has(pdv.contextId)) {
      this.protocolError(`PDV on presentation context ${pdv.contextId}, which was not accepted`);
      return;
    }
    if (pdv.isCommand) {
      if (this.incoming !== undefined) {
        this.protocolError('a command fragment arrived before the data set of the previous command was complete');
        return;
      }
      if (this.commandParts.length > 0 && pdv.contextId !== this.commandContext) {
        this.protocolError('command fragments on different presentation contexts');
      }
      this.commandContext = pdv.contextId;
      return;
    }
    if (this.incoming === undefined) {
      this.protocolError('a data set fragment arrived without a command announcing it');
      return;
    }
    if (pdv.contextId !== this.incoming.contextId)
      this.protocolError('data set fragments on a presentation context other than their command');
  }

  private pdvValue(slice: Buffer): void {
    if (!this.dataAllowed) return;
    const incoming = this.incoming;
    if (incoming?.reportParts !== undefined) {
      incoming.reportLength = (incoming.reportLength ?? 0) + slice.length;
      if (incoming.reportLength > MAX_REPORT) {
        this.protocolError(`a storage commitment report longer than ${MAX_REPORT} bytes`);
        return;
      }
      incoming.reportParts.push(Buffer.from(slice));
      return;
    }
    if (incoming === undefined) {
      this.commandLength += slice.length;
      if (this.commandLength > MAX_COMMAND) {
        this.protocolError(`command set longer than ${MAX_COMMAND} bytes`);
        return;
      }
      this.commandParts.push(slice);
      return;
    }
    const target = incoming.transfer?.writable;
    // A store refused up front, or whose file failed, is read to its end into nothing; complete() reports it.
    if (target === undefined || target.destroyed) return;
    if (!target.write(slice) && this.pausedOn === undefined && !this.closed) {
      // Back-pressure: stop reading while the spool file is behind.
      this.pausedOn = target;
      target.once('drain', this.onDrain);
      target.once('close', this.onDrain);
      this.socket.pause();
    }
  }

  private readonly onDrain = (): void => this.releasePause();

  private releasePause(): void {
    const target = this.pausedOn;
    if (target === undefined) return;
    this.pausedOn = undefined;
    target.off('drain', this.onDrain);
    target.off('close', this.onDrain);
    if (!this.closed) this.socket.resume();
  }

  private pdvEnd(pdv: PdvHeader): void {
    if (!this.dataAllowed || !pdv.isLast) return;
    if (pdv.isCommand) {
      const bytes = Buffer.concat(this.commandParts, this.commandLength);
      this.commandParts = [];
      this.commandLength = 0;
      const command = parseCommand(bytes);
      if (command === undefined) {
        this.protocolError('a command set that is not a well-formed group 0000');
        return;
      }
      this.onCommand(pdv.contextId, command);
      return;
    }
    const incoming = this.incoming;
    this.incoming = undefined;
    this.releasePause();
    if (incoming !== undefined) this.onDatasetComplete(incoming);
  }

  private onCommand(contextId: number, command: Command): void {
    const field = command.commandField;
    if (field === undefined || (field & 0x8000) !== 0 || field === CommandField.CCancelRq) {
      // A response, or a C-CANCEL: neither is answered. A data set after one is a protocol error (pdvStart).
      this.options.logger.warn('DIMSE message ignored: not a request we answer', {
        event: 'DIMSE-1026',
        ...this.ids(),
        commandField: hex(field),
      });
      return;
    }
    if (field === CommandField.CStoreRq && command.hasDataset) {
      this.incoming = this.openStore(contextId, command);
      return;
    }
    if (field === CommandField.NEventReportRq && this.takesReports(contextId)) {
      if (command.hasDataset)
        this.incoming = { contextId, command, transfer: undefined, refusal: undefined, reportParts: [] };
      else this.answerReport(contextId, command, undefined);
      return;
    }
    if (command.hasDataset) {
      // Read the data set (a C-FIND identifier, say) into nothing, then answer.
      this.incoming = { contextId, command, transfer: undefined, refusal: undefined };
      return;
    }
    this.answer(contextId, command);
  }

  private openStore(contextId: number, command: Command): Incoming {
    const context = this.contexts.get(contextId);
    const sopClassUid = command.affectedSopClassUid ?? '';
    if (context === undefined || context.abstractSyntax !== sopClassUid) {
      const message = `SOP class ${sopClassUid} was not negotiated on presentation context ${contextId}`;
      return { contextId, command, transfer: undefined, refusal: { kind: 'refused', reason: 'mismatch', message } };
    }
    const start = this.options.owner.beginStore(this, {
      sopClassUid,
      sopInstanceUid: command.affectedSopInstanceUid ?? '',
      transferSyntaxUid: context.transferSyntax,
    });
    if (start.kind === 'transfer') {
      // The sink reports a failed file through complete(); an unheard 'error' event would end the process.
      start.transfer.writable.on('error', () => undefined);
      return { contextId, command, transfer: start.transfer, refusal: undefined };
    }
    return { contextId, command, transfer: undefined, refusal: start };
  }

  /** Whether reports are taken here: a context negotiated for storage commitment, and an owner that takes them. */
  private takesReports(contextId: number): boolean {
    return (
      this.options.owner.commitmentReport !== undefined &&
      this.contexts.get(contextId)?.abstractSyntax === STORAGE_COMMITMENT_PUSH_MODEL
    );
  }

  private answerReport(contextId: number, command: Command, dataset: Buffer | undefined): void {
    const context = this.contexts.get(contextId);
    const owner = this.options.owner;
    if (context === undefined || owner.commitmentReport === undefined) return;
    const answer = owner.commitmentReport(this, { command, dataset, transferSyntaxUid: context.transferSyntax });
    this.send(
      encodeResponse(
        {
          contextId,
          requestCommandField: CommandField.NEventReportRq,
          messageIdBeingRespondedTo: command.messageId ?? 0,
          status: answer.status,
          affectedSopClassUid: answer.affectedSopClassUid,
          affectedSopInstanceUid: answer.affectedSopInstanceUid,
          ...(answer.errorComment === undefined ? {} : { errorComment: answer.errorComment }),
          extra: answer.extra,
        },
        this.peerMaxPdu,
      ),
    );
    this.respondToReleaseWhenIdle();
  }

  private onDatasetComplete(incoming: Incoming): void {
    const { command, contextId } = incoming;
    if (incoming.reportParts !== undefined) {
      this.answerReport(contextId, command, Buffer.concat(incoming.reportParts));
      return;
    }
    if (command.commandField !== CommandField.CStoreRq) {
      this.answer(contextId, command);
      return;
    }
    const transfer = incoming.transfer;
    if (transfer !== undefined && !transfer.writable.destroyed) transfer.writable.end();
    const outcome: Promise<IngestOutcome> =
      transfer !== undefined
        ? transfer.complete()
        : Promise.resolve(
            incoming.refusal ?? { kind: 'refused', reason: 'internal', message: 'no transfer in progress' },
          );
    const ids = { ...this.ids(), sopInstanceUid: command.affectedSopInstanceUid };
    this.track(
      outcome.then(
        (result) => this.safely(() => this.answerStore(contextId, command, result, ids)),
        (error: unknown) => {
          this.options.logger.error('C-STORE failed', { event: 'DIMSE-1023', ...ids, error: describeError(error) });
          this.safely(() =>
            this.respondStore(contextId, command, StoreStatus.ProcessingFailure, errorComment(describeError(error))),
          );
        },
      ),
    );
  }

  private answerStore(contextId: number, command: Command, outcome: IngestOutcome, ids: Record<string, unknown>): void {
    const status = statusForOutcome(outcome);
    if (outcome.kind === 'refused') {
      this.options.logger.warn('C-STORE refused', {
        event: 'DIMSE-1022',
        ...ids,
        status: `0x${status.toString(16)}`,
        why: outcome.message,
      });
      this.respondStore(contextId, command, status, errorComment(outcome.message));
      return;
    }
    this.options.logger.info(outcome.kind === 'stored' ? 'instance stored' : 'duplicate instance acknowledged', {
      event: outcome.kind === 'stored' ? 'DIMSE-1020' : 'DIMSE-1021',
      ...ids,
      studyInstanceUid: outcome.studyInstanceUid,
    });
    this.options.owner.stored?.(this, command.affectedSopClassUid ?? '', outcome.studyInstanceUid);
    this.respondStore(contextId, command, status, undefined);
  }

  private respondStore(contextId: number, command: Command, status: number, comment: string | undefined): void {
    this.respond(contextId, command, CommandField.CStoreRq, status, comment);
  }

  private respond(
    contextId: number,
    command: Command,
    requestCommandField: number,
    status: number,
    comment: string | undefined,
  ): void {
    this.send(
      encodeResponse(
        {
          contextId,
          requestCommandField,
          messageIdBeingRespondedTo: command.messageId ?? 0,
          status,
          ...(command.affectedSopClassUid === undefined ? {} : { affectedSopClassUid: command.affectedSopClassUid }),
          ...(command.affectedSopInstanceUid === undefined
            ? {}
            : { affectedSopInstanceUid: command.affectedSopInstanceUid }),
          ...(comment === undefined ? {} : { errorComment: comment }),
        },
        this.peerMaxPdu,
      ),
    );
    this.respondToReleaseWhenIdle();
  }

  /** Answers a request that is not a C-STORE with a data set: C-ECHO, or "unrecognized operation". */
  private answer(contextId: number, command: Command): void {
    const field = command.commandField ?? 0;
    let status: number = DimseStatus.UnrecognizedOperation;
    let comment: string | undefined = 'this SCP performs C-ECHO and C-STORE only';
    if (field === CommandField.CEchoRq) {
      const context = this.contexts.get(contextId);
      status = context?.abstractSyntax === VERIFICATION ? DimseStatus.Success : DimseStatus.SopClassNotSupported;
      comment = undefined;
    } else if (field === CommandField.CStoreRq) {
      status = DimseStatus.CannotUnderstand;
      comment = 'C-STORE request without a data set';
    } else {
      this.options.logger.warn('DIMSE request refused: unrecognized operation', {
        event: 'DIMSE-1027',
        ...this.ids(),
        commandField: hex(field),
        status: '0x0211',
      });
    }
    this.respond(contextId, command, field, status, comment);
  }
}

function hex(value: number | undefined): string {
  return value === undefined ? 'none' : `0x${value.toString(16).padStart(4, '0')}`;
}
