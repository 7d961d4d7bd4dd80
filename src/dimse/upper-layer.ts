/**
 * The DICOM upper layer state machine (PS3.8 9.2: states Sta1-Sta13, events Evt1-Evt19, the actions of
 * Table 9-7 to 9-9 and the state table 9-10), for one connection, in either role. It sees every PDU before
 * anything else does: what the user (our SCP or SCU) is told, and what is written back, follows from the table
 * and from nothing else. Pure: the transport and the ARTIM timer are injected, so the whole table can be driven
 * in a test without a socket or a clock.
 *
 * Where PS3.8 leaves it to the implementation, this one closes rather than waits: after sending an
 * A-ASSOCIATE-RJ, A-RELEASE-RP or A-ABORT (entering Sta13) it half-closes the transport at once (the PDU is
 * flushed first) and the ARTIM timer bounds the wait for the peer's close; an A-ABORT received closes at once.
 * A peer that keeps a rejected or released connection open therefore costs us at most one ARTIM period.
 */
import {
  AbortReason,
  AbortSource,
  PduType,
  decodeAssociateRq,
  encodeAbort,
  encodeAssociateRj,
  type AssociateRequest,
} from './association-pdus.js';

export type State =
  | 'Sta1'
  | 'Sta2'
  | 'Sta3'
  | 'Sta4'
  | 'Sta5'
  | 'Sta6'
  | 'Sta7'
  | 'Sta8'
  | 'Sta9'
  | 'Sta10'
  | 'Sta11'
  | 'Sta12'
  | 'Sta13';

export type EventName =
  | 'Evt1' // A-ASSOCIATE request (local user)
  | 'Evt2' // transport connect confirmation
  | 'Evt3' // A-ASSOCIATE-AC PDU received
  | 'Evt4' // A-ASSOCIATE-RJ PDU received
  | 'Evt5' // transport connection indication
  | 'Evt6' // A-ASSOCIATE-RQ PDU received
  | 'Evt7' // A-ASSOCIATE response primitive (accept)
  | 'Evt8' // A-ASSOCIATE response primitive (reject)
  | 'Evt9' // P-DATA request primitive
  | 'Evt10' // P-DATA-TF PDU received
  | 'Evt11' // A-RELEASE request primitive
  | 'Evt12' // A-RELEASE-RQ PDU received
  | 'Evt13' // A-RELEASE-RP PDU received
  | 'Evt14' // A-RELEASE response primitive
  | 'Evt15' // A-ABORT request primitive
  | 'Evt16' // A-ABORT PDU received
  | 'Evt17' // transport connection closed indication
  | 'Evt18' // ARTIM timer expired
  | 'Evt19'; // unrecognized or invalid PDU received

type Action =
  | 'AE-1'
  | 'AE-2'
  | 'AE-3'
  | 'AE-4'
  | 'AE-5'
  | 'AE-6'
  | 'AE-7'
  | 'AE-8'
  | 'DT-1'
  | 'DT-2'
  | 'AR-1'
  | 'AR-2'
  | 'AR-3'
  | 'AR-4'
  | 'AR-5'
  | 'AR-6'
  | 'AR-7'
  | 'AR-8'
  | 'AR-9'
  | 'AR-10'
  | 'AA-1'
  | 'AA-2'
  | 'AA-3'
  | 'AA-4'
  | 'AA-5'
  | 'AA-6'
  | 'AA-7'
  | 'AA-8';

const ESTABLISHED_AND_RELEASING: readonly State[] = ['Sta6', 'Sta7', 'Sta8', 'Sta9', 'Sta10', 'Sta11', 'Sta12'];

function row(
  entries: Partial<Record<State, Action>>,
  ...groups: Array<[readonly State[], Action]>
): Partial<Record<State, Action>> {
  const out = { ...entries };
  for (const [states, action] of groups) for (const state of states) out[state] = action;
  return out;
}

/** PS3.8 Table 9-10. A missing cell is an event that cannot occur in that state (a local misuse): see `misuse`. */
export const STATE_TABLE: Readonly<Record<EventName, Partial<Record<State, Action>>>> = {
  Evt1: { Sta1: 'AE-1' },
  Evt2: { Sta4: 'AE-2' },
  Evt3: row({ Sta2: 'AA-1', Sta3: 'AA-8', Sta5: 'AE-3', Sta13: 'AA-6' }, [ESTABLISHED_AND_RELEASING, 'AA-8']),
  Evt4: row({ Sta2: 'AA-1', Sta3: 'AA-8', Sta5: 'AE-4', Sta13: 'AA-6' }, [ESTABLISHED_AND_RELEASING, 'AA-8']),
  Evt5: { Sta1: 'AE-5' },
  Evt6: row({ Sta2: 'AE-6', Sta3: 'AA-8', Sta5: 'AA-8', Sta13: 'AA-7' }, [ESTABLISHED_AND_RELEASING, 'AA-8']),
  Evt7: { Sta3: 'AE-7' },
  Evt8: { Sta3: 'AE-8' },
  Evt9: { Sta6: 'DT-1', Sta8: 'AR-7' },
  Evt10: row({ Sta2: 'AA-1', Sta3: 'AA-8', Sta5: 'AA-8', Sta6: 'DT-2', Sta7: 'AR-6', Sta13: 'AA-6' }, [
    ['Sta8', 'Sta9', 'Sta10', 'Sta11', 'Sta12'],
    'AA-8',
  ]),
  Evt11: { Sta6: 'AR-1' },
  Evt12: row({ Sta2: 'AA-1', Sta3: 'AA-8', Sta5: 'AA-8', Sta6: 'AR-2', Sta7: 'AR-8', Sta13: 'AA-6' }, [
    ['Sta8', 'Sta9', 'Sta10', 'Sta11', 'Sta12'],
    'AA-8',
  ]),
  Evt13: {
    Sta2: 'AA-1',
    Sta3: 'AA-8',
    Sta5: 'AA-8',
    Sta6: 'AA-8',
    Sta7: 'AR-3',
    Sta8: 'AA-8',
    Sta9: 'AA-8',
    Sta10: 'AR-10',
    Sta11: 'AR-3',
    Sta12: 'AA-8',
    Sta13: 'AA-6',
  },
  Evt14: { Sta8: 'AR-4', Sta9: 'AR-9', Sta12: 'AR-4' },
  Evt15: row({ Sta3: 'AA-1', Sta4: 'AA-2', Sta5: 'AA-1' }, [ESTABLISHED_AND_RELEASING, 'AA-1']),
  Evt16: row({ Sta2: 'AA-2', Sta3: 'AA-3', Sta5: 'AA-3', Sta13: 'AA-2' }, [ESTABLISHED_AND_RELEASING, 'AA-3']),
  Evt17: row({ Sta2: 'AA-5', Sta3: 'AA-4', Sta4: 'AA-4', Sta5: 'AA-4', Sta13: 'AR-5' }, [
    ESTABLISHED_AND_RELEASING,
    'AA-4',
  ]),
  Evt18: { Sta2: 'AA-2', Sta13: 'AA-2' },
  Evt19: row({ Sta2: 'AA-1', Sta3: 'AA-8', Sta5: 'AA-8', Sta13: 'AA-7' }, [ESTABLISHED_AND_RELEASING, 'AA-8']),
};

/** The transport, as the state machine drives it. */
export interface Transport {
  /** Queues bytes for the peer. */
  write(bytes: Buffer): void;
  /** Half-closes once everything written is flushed (FIN); reading goes on only to notice the peer's close. */
  end(): void;
  /** Closes at once. */
  destroy(): void;
  /** AE-1: opens the connection (requestor); the glue then reports Evt2 or Evt17. */
  connect?(): void;
}

/** Schedules the ARTIM timer; returns a cancel function. */
export type TimerScheduler = (ms: number, fire: () => void) => () => void;

/** How the user of the upper layer hears of what happened. Every member is optional. */
export interface UpperLayerUser {
  /** A-ASSOCIATE indication (acceptor): answer with accept() or reject(), now or later. */
  associateIndication?(request: AssociateRequest, pdu: Buffer): void;
  /** A-ASSOCIATE-RQ refused by the provider (invalid contexts etc.): already answered with A-ASSOCIATE-RJ. */
  associateRefused?(explanation: string, request: { callingAe: string; calledAe: string }): void;
  /** A-ASSOCIATE confirmation (requestor). */
  associateAccepted?(pdu: Buffer): void;
  associateRejected?(pdu: Buffer): void;
  /** A-RELEASE indication: answer with releaseResponse() once nothing more is to be sent. */
  releaseIndication?(): void;
  /** A-RELEASE confirmation (requestor). */
  releaseConfirmation?(): void;
  /** A-ABORT (from the peer's user) or A-P-ABORT (provider: protocol error, transport gone); `why` for the log. */
  aborted?(kind: 'peer-abort' | 'provider-abort', why: string): void;
  /** The transport is closed and the machine is back in Sta1: nothing more will happen on this connection. */
  closed?(): void;
}

export interface UpperLayerOptions {
  role: 'acceptor' | 'requestor';
  transport: Transport;
  schedule: TimerScheduler;
  artimMs: number;
  user: UpperLayerUser;
  /** Records each transition, for debug logging and tests. */
  trace?(from: State, event: EventName, action: Action | 'invalid', to: State): void;
}

export class UpperLayer {
  private current: State = 'Sta1';
  private cancelArtim: (() => void) | undefined;
  /** The PDU that carried the event being handled (Evt3/4/6). */
  private pdu: Buffer | undefined;
  private pendingWrite: Buffer | undefined;
  private why = '';
  private lastEvent: EventName = 'Evt5';
  private stateBefore: State = 'Sta1';
  private abortSent: { source: number; reason: number } = {
    source: AbortSource.ServiceProvider,
    reason: AbortReason.UnexpectedPdu,
  };

  constructor(private readonly options: UpperLayerOptions) {}

  get state(): State {
    return this.current;
  }

  // ---- events from the transport ----------------------------------------------------------------

  /** Evt5 (acceptor): a peer connected. */
  transportIndication(): void {
    this.handle('Evt5');
  }

  /** Evt2 (requestor): our connect completed. */
  transportConnected(): void {
    this.handle('Evt2');
  }

  /** Evt17: the transport closed, whoever closed it. */
  transportClosed(why = 'the connection closed'): void {
    this.why = why;
    this.handle('Evt17');
  }

  /**
   * A whole PDU other than P-DATA-TF (Evt3, 4, 6, 12, 13, 16), header included. Unknown types are Evt19.
   */
  receiveControlPdu(pdu: Buffer): void {
    const type = pdu.readUInt8(0);
    this.pdu = pdu;
    try {
      switch (type) {
        case PduType.AssociateAc:
          this.handle('Evt3');
          return;
        case PduType.AssociateRj:
          this.handle('Evt4');
          return;
        case PduType.AssociateRq:
          this.handle('Evt6');
          return;
        case PduType.ReleaseRq:
          this.handle('Evt12');
          return;
        case PduType.ReleaseRp:
          this.handle('Evt13');
          return;
        case PduType.Abort:
          this.why = describeReceivedAbort(pdu);
          this.handle('Evt16');
          return;
        default:
          this.invalidPdu(`unrecognized PDU type 0x${type.toString(16).padStart(2, '0')}`, AbortReason.UnrecognizedPdu);
          return;
      }
    } finally {
      this.pdu = undefined;
    }
  }

  /** Evt10: a P-DATA-TF header arrived. Returns whether its PDVs are to be handed to the user (DT-2, AR-6). */
  receiveDataPdu(): boolean {
    const action = this.handle('Evt10');
    return action === 'DT-2' || action === 'AR-6';
  }

  /** Evt19: the byte stream does not parse (bad header, oversized PDU, bad PDV). */
  invalidPdu(why: string, reason: number = AbortReason.InvalidPduParameterValue): void {
    this.why = why;
    this.abortSent = { source: AbortSource.ServiceProvider, reason };
    this.handle('Evt19');
  }

  // ---- primitives from the local user ----------------------------------------------------------

  /** Evt1 (requestor): start an association; `rq` is sent once the transport is up (AE-2). */
  associateRequest(rq: Buffer): void {
    this.pendingWrite = rq;
    this.handle('Evt1');
  }

  /** Evt7: accept with this A-ASSOCIATE-AC. */
  accept(ac: Buffer): void {
    this.pendingWrite = ac;
    this.handle('Evt7');
  }

  /** Evt8: reject with this A-ASSOCIATE-RJ. */
  reject(rj: Buffer): void {
    this.pendingWrite = rj;
    this.handle('Evt8');
  }

  /** Evt9: send a P-DATA-TF. Returns false when the state allows no data (the PDU is dropped). */
  sendData(pdu: Buffer): boolean {
    this.pendingWrite = pdu;
    const action = this.handle('Evt9');
    this.pendingWrite = undefined;
    return action === 'DT-1' || action === 'AR-7';
  }

  /** Evt11 (requestor): A-RELEASE request. */
  releaseRequest(): void {
    this.handle('Evt11');
  }

  /** Evt14: A-RELEASE response (after a release indication). */
  releaseResponse(): void {
    this.handle('Evt14');
  }

  /**
   * Evt15: A-ABORT request. `source`/`reason` go into the A-ABORT PDU: the service user (0) for a local
   * decision (shutdown, idle timeout), the provider (2) with a reason for a protocol error the user found.
   */
  abort(why: string, source: number = AbortSource.ServiceUser, reason: number = AbortReason.NotSpecified): void {
    this.why = why;
    this.abortSent = { source, reason };
    this.handle('Evt15');
  }

  // ---- the machine -----------------------------------------------------------------------------

  private handle(event: EventName): Action | undefined {
    const from = this.current;
    this.lastEvent = event;
    this.stateBefore = from;
    const action = STATE_TABLE[event][from];
    if (action === undefined) {
      this.options.trace?.(from, event, 'invalid', from);
      this.misuse(event);
      return undefined;
    }
    this.run(action);
    this.options.trace?.(from, event, action, this.current);
    return action;
  }

  /**
   * An event the table has no cell for: a local primitive at the wrong time (a programming error in the user,
   * e.g. sending data after the peer aborted), or a transport event after the close. Primitives that would
   * write are dropped; nothing else changes.
   */
  private misuse(_event: EventName): void {
    this.pendingWrite = undefined;
  }

  private run(action: Action): void {
    const { transport, user } = this.options;
    switch (action) {
      case 'AE-1':
        this.current = 'Sta4';
        transport.connect?.();
        return;
      case 'AE-2':
        this.current = 'Sta5';
        this.writePending();
        return;
      case 'AE-3':
        this.current = 'Sta6';
        if (this.pdu !== undefined) user.associateAccepted?.(this.pdu);
        return;
      case 'AE-4':
        this.current = 'Sta1';
        transport.end();
        if (this.pdu !== undefined) user.associateRejected?.(this.pdu);
        return;
      case 'AE-5':
        this.current = 'Sta2';
        this.startArtim();
        return;
      case 'AE-6': {
        this.stopArtim();
        const pdu = this.pdu;
        const decoded = pdu === undefined ? { kind: 'invalid' as const, reason: 'no PDU' } : decodeAssociateRq(pdu);
        if (decoded.kind === 'invalid') {
          // Not a well-formed request at all: as Evt19 in Sta2 (AA-1).
          this.why = decoded.reason;
          this.abortSent = { source: AbortSource.ServiceProvider, reason: AbortReason.InvalidPduParameterValue };
          this.run('AA-1');
          return;
        }
        if (decoded.kind === 'reject') {
          const { result, source, reason } = decoded.rejection;
          this.current = 'Sta13';
          this.closeAfter(encodeAssociateRj(result, source, reason));
          user.associateRefused?.(decoded.rejection.explanation, {
            callingAe: decoded.callingAe,
            calledAe: decoded.calledAe,
          });
          return;
        }
        this.current = 'Sta3';
        if (pdu !== undefined) user.associateIndication?.(decoded.request, pdu);
        return;
      }
      case 'AE-7':
        this.current = 'Sta6';
        this.writePending();
        return;
      case 'AE-8': {
        this.current = 'Sta13';
        const rj = this.pendingWrite;
        this.pendingWrite = undefined;
        if (rj !== undefined) this.closeAfter(rj);
        return;
      }
      case 'DT-1':
        this.current = 'Sta6';
        this.writePending();
        return;
      case 'DT-2':
        this.current = 'Sta6';
        return;
      case 'AR-1':
        this.current = 'Sta7';
        transport.write(encodeSimple(PduType.ReleaseRq));
        return;
      case 'AR-2':
        this.current = 'Sta8';
        user.releaseIndication?.();
        return;
      case 'AR-3':
        this.current = 'Sta1';
        transport.end();
        user.releaseConfirmation?.();
        return;
      case 'AR-4':
        this.current = 'Sta13';
        this.closeAfter(encodeSimple(PduType.ReleaseRp));
        return;
      case 'AR-5':
        this.stopArtim();
        this.current = 'Sta1';
        user.closed?.();
        return;
      case 'AR-6':
        this.current = 'Sta7';
        return;
      case 'AR-7':
        this.current = 'Sta8';
        this.writePending();
        return;
      case 'AR-8':
        this.current = this.options.role === 'requestor' ? 'Sta9' : 'Sta10';
        user.releaseIndication?.();
        return;
      case 'AR-9':
        this.current = 'Sta11';
        transport.write(encodeSimple(PduType.ReleaseRp));
        return;
      case 'AR-10':
        this.current = 'Sta12';
        user.releaseConfirmation?.();
        return;
      case 'AA-1': {
        this.current = 'Sta13';
        this.noteUnexpected();
        const { source, reason } = this.abortSent;
        this.closeAfter(encodeAbort(source, reason));
        // A local A-ABORT request is the user's own decision: nothing to indicate back.
        if (this.lastEvent !== 'Evt15') user.aborted?.('provider-abort', this.why);
        return;
      }
      case 'AA-2':
        this.stopArtim();
        this.current = 'Sta1';
        transport.destroy();
        user.closed?.();
        return;
      case 'AA-3':
        // PS3.8: the receiver of an A-ABORT closes the transport; we do it at once.
        this.stopArtim();
        this.current = 'Sta1';
        transport.destroy();
        user.aborted?.('peer-abort', this.why);
        user.closed?.();
        return;
      case 'AA-4':
        this.stopArtim();
        this.current = 'Sta1';
        user.aborted?.('provider-abort', this.why);
        user.closed?.();
        return;
      case 'AA-5':
        this.stopArtim();
        this.current = 'Sta1';
        user.closed?.();
        return;
      case 'AA-6':
        this.current = 'Sta13';
        return;
      case 'AA-7':
        this.current = 'Sta13';
        transport.write(encodeAbort(AbortSource.ServiceProvider, AbortReason.UnexpectedPdu));
        return;
      case 'AA-8': {
        this.current = 'Sta13';
        this.noteUnexpected();
        const { source, reason } = this.abortSent;
        this.closeAfter(encodeAbort(source, reason));
        user.aborted?.('provider-abort', this.why);
        return;
      }
    }
  }

  /** For an abort caused by a PDU that is valid but not expected now: provider source, reason "unexpected PDU". */
  private noteUnexpected(): void {
    if (this.lastEvent === 'Evt15' || this.lastEvent === 'Evt19') return;
    this.abortSent = { source: AbortSource.ServiceProvider, reason: AbortReason.UnexpectedPdu };
    this.why = `unexpected ${EVENT_PDU[this.lastEvent] ?? this.lastEvent} in ${this.stateBefore}`;
  }

  /** Sends a last PDU, half-closes, and lets ARTIM bound the wait for the peer's close (Sta13). */
  private closeAfter(pdu: Buffer): void {
    const { transport } = this.options;
    transport.write(pdu);
    transport.end();
    this.startArtim();
  }

  private writePending(): void {
    const bytes = this.pendingWrite;
    this.pendingWrite = undefined;
    if (bytes !== undefined) this.options.transport.write(bytes);
  }

  private startArtim(): void {
    this.stopArtim();
    this.cancelArtim = this.options.schedule(this.options.artimMs, () => {
      this.cancelArtim = undefined;
      this.why = 'ARTIM timer expired';
      this.handle('Evt18');
    });
  }

  private stopArtim(): void {
    const cancel = this.cancelArtim;
    this.cancelArtim = undefined;
    cancel?.();
  }
}

const EVENT_PDU: Partial<Record<EventName, string>> = {
  Evt3: 'A-ASSOCIATE-AC',
  Evt4: 'A-ASSOCIATE-RJ',
  Evt6: 'A-ASSOCIATE-RQ',
  Evt10: 'P-DATA-TF',
  Evt12: 'A-RELEASE-RQ',
  Evt13: 'A-RELEASE-RP',
};

function encodeSimple(type: number): Buffer {
  return Buffer.from([type, 0, 0, 0, 0, 4, 0, 0, 0, 0]);
}

function describeReceivedAbort(pdu: Buffer): string {
  if (pdu.length < 10) return 'A-ABORT received';
  const source = pdu.readUInt8(8);
  const reason = pdu.readUInt8(9);
  return `A-ABORT received (source ${source}, reason ${reason})`;
}
