import net from 'node:net';
import tls from 'node:tls';
import { IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME } from '../dicom/implementation.js';
import type { DicomClientTlsConfig } from '../config/schema.js';
import { describeError } from '../errors.js';
import { clientOptions } from './dicom-tls.js';
import {
  PduType,
  decodeAbort,
  decodeAssociateAc,
  decodeAssociateRj,
  encodeAssociateRq,
  type AssociateAccept,
  type RoleSelection,
} from './association-pdus.js';
import { encodeResponse, framePdvs, parseCommand, type Command, type CommandValue } from './dimse-messages.js';
import { PduStreamParser, type PduStreamHandler } from './pdu-stream.js';
import { UpperLayer, type TimerScheduler } from './upper-layer.js';

/** The largest PDU we invite a peer to send us: responses are small, so this is generous. */
const OUR_MAX_PDU = 131072;
/** PDUs from a peer larger than this are a protocol error (control PDUs are small, P-DATA within our maximum). */
const PDU_LIMIT = OUR_MAX_PDU + 16;

export interface ScuAssociationOptions {
  host: string;
  port: number;
  callingAeTitle: string;
  calledAeTitle: string;
  contexts: ReadonlyArray<{ id: number; abstractSyntax: string; transferSyntaxes: readonly string[] }>;
  connectTimeoutMs: number;
  /** Bounds each wait for the peer: the association answer, each response, the release (ARTIM). */
  responseTimeoutMs: number;
  schedule?: TimerScheduler;
  /** DICOM TLS toward this peer (BCP 195; the server certificate verified unless verifyServer is false). */
  tls?: DicomClientTlsConfig;
  /**
   * Answers a request the peer sends us on this association (storage commitment's N-EVENT-REPORT); without it,
   * every such request is answered 0x0211 (unrecognized operation).
   */
  onRequest?: (request: PeerRequest) => PeerRequestAnswer;
  /** SCP/SCU role selections to propose (PS3.7 D.3.3.4); default roles when left out. */
  roleSelections?: readonly RoleSelection[];
}

/** A request the peer sent on our association, with its data set. */
export interface PeerRequest {
  contextId: number;
  command: Command;
  dataset: Buffer | undefined;
}

export interface PeerRequestAnswer {
  status: number;
  affectedSopClassUid?: string;
  affectedSopInstanceUid?: string;
  errorComment?: string;
  extra?: ReadonlyArray<readonly [number, CommandValue]>;
}

/** A data set the peer sends with a request is kept in memory: one larger than this is a protocol error. */
const MAX_REQUEST_DATASET = 16 * 1024 * 1024;

/** Why an association ended before its time, in terms the caller turns into a sentence for the admin. */
export type ScuFailure =
  | { kind: 'connection-refused' | 'connect-failed'; detail: string }
  /** TCP connected, but the TLS handshake failed: the peer's certificate is not trusted, or it refused ours. */
  | { kind: 'tls-failed'; detail: string }
  | { kind: 'connect-timeout' }
  | { kind: 'association-rejected'; result: number; source: number; reason: number }
  | { kind: 'association-timeout' }
  | { kind: 'association-aborted'; abort: { source: number; reason: number } }
  | { kind: 'connection-closed'; detail: string }
  | { kind: 'protocol-error'; detail: string }
  | { kind: 'response-timeout'; phase: 'associating' | 'transferring' }
  | { kind: 'stopped' };

const realTimers: TimerScheduler = (ms, fire) => {
  const timer = setTimeout(fire, ms);
  timer.unref();
  return () => clearTimeout(timer);
};

/**
 * The requesting side of one association (our SCU), driven by the same PS3.8 state machine as the SCP: an
 * A-ASSOCIATE-RJ or A-ABORT from the peer ends it at once, every wait on the peer is bounded, the release is
 * bounded by ARTIM, and the connection is always closed at the end. Messages are sent one at a time.
 */
export class ScuAssociation {
  accepted: AssociateAccept | undefined;
  private readonly socket: net.Socket;
  private readonly upper: UpperLayer;
  private readonly parser: PduStreamParser;
  private readonly schedule: TimerScheduler;
  private failure: ScuFailure | undefined;
  private phase: 'connecting' | 'associating' | 'established' | 'releasing' | 'done' = 'connecting';
  private waiter: { resolve: () => void; messageId?: number; response?: Command } | undefined;
  private commandParts: Buffer[] = [];
  private expectingDataset: Command | undefined;
  /** The data set of a peer's request, being received (undefined while a response's data set is dropped). */
  private datasetParts: Buffer[] | undefined;
  private datasetLength = 0;
  private lastAbort: { source: number; reason: number } = { source: 0, reason: 0 };

  private constructor(
    private readonly options: ScuAssociationOptions,
    tlsOptions: tls.ConnectionOptions | undefined,
  ) {
    this.schedule = options.schedule ?? realTimers;
    const raw = new net.Socket();
    // With TLS the association runs over a TLS socket wrapped around the TCP one; the handshake starts once TCP
    // has connected, and the association request goes out once it is done ('secureConnect').
    this.socket = tlsOptions === undefined ? raw : tls.connect({ ...tlsOptions, socket: raw });
    const socket = this.socket;
    let tcpConnected = false;
    raw.once('connect', () => (tcpConnected = true));
    this.upper = new UpperLayer({
      role: 'requestor',
      artimMs: options.responseTimeoutMs,
      schedule: this.schedule,
      transport: {
        connect: () => raw.connect({ host: options.host, port: options.port }),
        write: (bytes) => {
          if (!socket.destroyed && socket.writable) socket.write(bytes);
        },
        end: () => {
          this.parser.stop();
          if (!socket.destroyed) socket.end();
          // The peer should close too; if it does not, ARTIM's worth of waiting is all it gets.
          this.schedule(options.responseTimeoutMs, () => socket.destroy());
        },
        destroy: () => {
          this.parser.stop();
          socket.destroy();
        },
      },
      user: {
        associateAccepted: (pdu) => {
          const accept = decodeAssociateAc(pdu);
          if (typeof accept === 'string') {
            this.fail({ kind: 'protocol-error', detail: accept });
            this.upper.abort(accept, 2, 6);
            return;
          }
          this.accepted = accept;
          this.phase = 'established';
          this.wake();
        },
        associateRejected: (pdu) => {
          const rj = decodeAssociateRj(pdu) ?? { result: 0, source: 0, reason: 0 };
          this.fail({ kind: 'association-rejected', ...rj });
        },
        releaseIndication: () => {
          // The peer wants to end it: nothing of ours is answered any more.
          this.fail({ kind: 'connection-closed', detail: 'the peer released the association' });
          this.upper.releaseResponse();
        },
        releaseConfirmation: () => {
          this.phase = 'done';
          this.wake();
        },
        aborted: (kind, why) => {
          if (kind === 'peer-abort') this.fail({ kind: 'association-aborted', abort: this.lastAbort });
          else if (this.phase === 'connecting') this.fail({ kind: 'connect-failed', detail: why });
          else this.fail({ kind: 'protocol-error', detail: why });
        },
        closed: () => this.fail({ kind: 'connection-closed', detail: 'the connection closed' }),
      },
    });
    this.parser = new PduStreamParser(this.handler(), (type, length) => {
      if (type < 1 || type > 7) return `unknown PDU type 0x${type.toString(16)}`;
      if (length > PDU_LIMIT) return `PDU of ${length} bytes, more than the ${OUR_MAX_PDU} we announced`;
      return undefined;
    });
    socket.setNoDelay(true);
    socket.on(tlsOptions === undefined ? 'connect' : 'secureConnect', () => {
      this.phase = 'associating';
      this.upper.transportConnected();
      this.wake();
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        const problem = this.parser.push(chunk);
        if (problem !== undefined) this.upper.invalidPdu(problem);
      } catch (error) {
        this.fail({ kind: 'protocol-error', detail: describeError(error) });
        socket.destroy();
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (this.phase !== 'connecting') return;
      if (error.code === 'ECONNREFUSED') this.fail({ kind: 'connection-refused', detail: error.message });
      else if (tlsOptions !== undefined && tcpConnected) this.fail({ kind: 'tls-failed', detail: error.message });
      else this.fail({ kind: 'connect-failed', detail: error.message });
    });
    socket.on('close', () => this.upper.transportClosed());
  }

  /** Connects and negotiates. Resolves with the association, or with why there is none (its socket closed). */
  static async open(options: ScuAssociationOptions, signal?: AbortSignal): Promise<ScuAssociation | ScuFailure> {
    let tlsOptions: tls.ConnectionOptions | undefined;
    try {
      // The files are read per association, so a renewed certificate is used from the next delivery on.
      tlsOptions = options.tls === undefined ? undefined : clientOptions(options.tls, options.host);
    } catch (error) {
      return { kind: 'tls-failed', detail: describeError(error) };
    }
    const association = new ScuAssociation(options, tlsOptions);
    const onSignal = () => association.stop();
    signal?.addEventListener('abort', onSignal, { once: true });
    association.signalCleanup = () => signal?.removeEventListener('abort', onSignal);
    const rq = encodeAssociateRq({
      calledAe: options.calledAeTitle,
      callingAe: options.callingAeTitle,
      contexts: options.contexts,
      maxPduLength: OUR_MAX_PDU,
      implementationClassUid: IMPLEMENTATION_CLASS_UID,
      implementationVersionName: IMPLEMENTATION_VERSION_NAME,
      ...(options.roleSelections === undefined ? {} : { roleSelections: options.roleSelections }),
    });
    const connected = association.waitUntil(options.connectTimeoutMs, () => association.phase !== 'connecting', {
      kind: 'connect-timeout',
    });
    association.upper.associateRequest(rq);
    const failedToConnect = await connected;
    if (failedToConnect !== undefined) return failedToConnect;
    const answered = await association.waitUntil(options.responseTimeoutMs, () => association.phase === 'established', {
      kind: 'association-timeout',
    });
    return answered ?? association;
  }

  private signalCleanup: () => void = () => undefined;

  /** The failure that ended the association, if one did. */
  get failed(): ScuFailure | undefined {
    return this.failure;
  }

  /** The peer's maximum PDU length (0: no limit). */
  get peerMaxPdu(): number {
    return this.accepted?.maxPduLength ?? 0;
  }

  /**
   * Sends one request (command, then its data set) and waits for the response that names its message ID.
   * Resolves with the response command, or with the failure that ended the association.
   */
  async request(
    contextId: number,
    messageId: number,
    command: Buffer,
    dataset: Buffer | undefined,
  ): Promise<Command | ScuFailure> {
    if (this.failure !== undefined) return this.failure;
    const pdus = framePdvs(contextId, true, command, this.peerMaxPdu);
    if (dataset !== undefined) pdus.push(...framePdvs(contextId, false, dataset, this.peerMaxPdu));
    for (const [head, body] of pdus) {
      if (head === undefined || body === undefined) continue;
      if (!this.upper.sendData(Buffer.concat([head, body])))
        return this.failure ?? { kind: 'connection-closed', detail: 'the association is not open' };
    }
    // The response timeout runs from when the last byte is with the kernel, not from when it was queued.
    await new Promise<void>((resolve) =>
      this.socket.writable ? this.socket.write(Buffer.alloc(0), () => resolve()) : resolve(),
    );
    const waiter: { resolve: () => void; messageId?: number; response?: Command } = {
      resolve: () => undefined,
      messageId,
    };
    const failed = await this.waitUntil(
      this.options.responseTimeoutMs,
      () => waiter.response !== undefined,
      { kind: 'response-timeout', phase: 'transferring' },
      waiter,
    );
    if (failed !== undefined) return failed;
    return waiter.response ?? { kind: 'protocol-error', detail: 'no response' };
  }

  /** A-RELEASE, bounded by ARTIM; an unanswered release ends in an A-ABORT. The connection is closed after. */
  async release(): Promise<void> {
    if (this.failure !== undefined || this.phase !== 'established') {
      this.close();
      return;
    }
    this.phase = 'releasing';
    this.upper.releaseRequest();
    const failed = await this.waitUntil(this.options.responseTimeoutMs, () => this.phase === 'done', {
      kind: 'response-timeout',
      phase: 'transferring',
    });
    if (failed !== undefined) this.close();
    this.signalCleanup();
  }

  /** A-ABORT (the caller gives up, e.g. shutdown) and close. */
  stop(): void {
    this.fail({ kind: 'stopped' });
    this.close();
  }

  private close(): void {
    this.signalCleanup();
    if (this.socket.destroyed) return;
    if (this.upper.state === 'Sta1' || this.upper.state === 'Sta4') {
      this.socket.destroy();
      return;
    }
    this.upper.abort('the association is being given up');
    // The A-ABORT is queued and the socket half-closed; ARTIM bounds the rest, but nothing here waits for it.
  }

  private fail(failure: ScuFailure): void {
    if (this.failure === undefined && this.phase !== 'done') this.failure = failure;
    this.wake();
  }

  private wake(): void {
    const waiter = this.waiter;
    if (waiter !== undefined) waiter.resolve();
  }

  /** Waits until `done()` holds; resolves undefined then, or with the failure (a timeout included). */
  private waitUntil(
    ms: number,
    done: () => boolean,
    onTimeout: ScuFailure,
    waiter: { resolve: () => void; messageId?: number; response?: Command } = { resolve: () => undefined },
  ): Promise<ScuFailure | undefined> {
    return new Promise((resolve) => {
      const check = (): boolean => {
        if (done()) {
          finish(undefined);
          return true;
        }
        if (this.failure !== undefined) {
          finish(this.failure);
          return true;
        }
        return false;
      };
      const finish = (result: ScuFailure | undefined): void => {
        cancel();
        if (this.waiter === waiter) this.waiter = undefined;
        resolve(result);
      };
      const cancel = this.schedule(ms, () => {
        if (check()) return;
        this.failure = this.failure ?? onTimeout;
        finish(this.failure);
        this.close();
      });
      waiter.resolve = () => void check();
      this.waiter = waiter;
      check();
    });
  }

  private handler(): PduStreamHandler {
    let dataAllowed = false;
    return {
      controlPdu: (pdu) => {
        if (pdu.readUInt8(0) === PduType.Abort) this.lastAbort = decodeAbort(pdu) ?? { source: 0, reason: 0 };
        this.upper.receiveControlPdu(pdu);
      },
      dataPduStart: () => {
        dataAllowed = this.upper.receiveDataPdu();
      },
      pdvStart: () => undefined,
      pdvValue: (slice) => {
        if (!dataAllowed) return;
        if (this.expectingDataset === undefined) this.commandParts.push(Buffer.from(slice));
        else if (this.datasetParts !== undefined) {
          this.datasetLength += slice.length;
          if (this.datasetLength > MAX_REQUEST_DATASET) {
            this.datasetParts = undefined;
            this.upper.invalidPdu(`a request data set longer than ${MAX_REQUEST_DATASET} bytes`);
            return;
          }
          this.datasetParts.push(Buffer.from(slice));
        }
      },
      pdvEnd: (pdv) => {
        if (!dataAllowed || !pdv.isLast) return;
        if (!pdv.isCommand) {
          // A response's data set (not something C-STORE has) is read and dropped; a request's is handed on.
          const command = this.expectingDataset;
          const parts = this.datasetParts;
          this.expectingDataset = undefined;
          this.datasetParts = undefined;
          if (command !== undefined) this.deliver(pdv.contextId, command, parts && Buffer.concat(parts));
          return;
        }
        const command = parseCommand(Buffer.concat(this.commandParts));
        this.commandParts = [];
        if (command === undefined) {
          this.upper.invalidPdu('a response whose command set is not well formed');
          return;
        }
        if (command.hasDataset) {
          this.expectingDataset = command;
          this.datasetLength = 0;
          this.datasetParts = isRequest(command) ? [] : undefined;
        } else this.deliver(pdv.contextId, command, undefined);
      },
      dataPduEnd: () => undefined,
    };
  }

  private deliver(contextId: number, command: Command, dataset: Buffer | undefined): void {
    if (isRequest(command)) {
      this.answerPeerRequest(contextId, command, dataset);
      return;
    }
    const waiter = this.waiter;
    if (waiter?.messageId !== undefined && command.messageIdBeingRespondedTo === waiter.messageId) {
      waiter.response = command;
      waiter.resolve();
    }
  }

  private answerPeerRequest(contextId: number, command: Command, dataset: Buffer | undefined): void {
    const answer: PeerRequestAnswer = this.options.onRequest?.({ contextId, command, dataset }) ?? {
      status: 0x0211,
      errorComment: 'this SCU answers no requests on its associations',
    };
    const pdus = encodeResponse(
      {
        contextId,
        requestCommandField: command.commandField ?? 0,
        messageIdBeingRespondedTo: command.messageId ?? 0,
        status: answer.status,
        ...(answer.affectedSopClassUid === undefined ? {} : { affectedSopClassUid: answer.affectedSopClassUid }),
        ...(answer.affectedSopInstanceUid === undefined
          ? {}
          : { affectedSopInstanceUid: answer.affectedSopInstanceUid }),
        ...(answer.errorComment === undefined ? {} : { errorComment: answer.errorComment }),
        ...(answer.extra === undefined ? {} : { extra: answer.extra }),
      },
      this.peerMaxPdu,
    );
    for (const pdu of pdus) this.upper.sendData(pdu);
  }
}

/** A request (bit 15 of the command field clear) rather than a response; a C-CANCEL is neither and is ignored. */
function isRequest(command: Command): boolean {
  const field = command.commandField;
  return field !== undefined && (field & 0x8000) === 0 && field !== 0x0fff;
}
