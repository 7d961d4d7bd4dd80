import { Writable } from 'node:stream';
import { C_STORE_RQ, summariseCommand } from './command-set.js';
import type { PduStreamHandler, PdvHeader } from './pdu-stream.js';

/** What StoreBypass needs from the connection it sits on. */
export interface BypassLink {
  /** Hands one PDU to dcmjs-dimse, which acts on it (synchronously) before this returns. */
  deliver(pdu: Buffer): void;
  /** Stops reading from the peer while the spool file is behind, and starts again. */
  pause(): void;
  resume(): void;
  /** A PDU arrived. dcmjs-dimse's PDU timer only sees the PDUs delivered to it, so it is told of the others. */
  touch(): void;
  /** The connection is being torn down (by us or by the library): deliver nothing more. */
  isClosed(): boolean;
  /** The stream breaks the protocol in a way the library would mishandle: drop the connection. */
  fail(reason: string): void;
}

const PDATA_TF = 0x04;
const CONTROL_COMMAND = 0x01;
const CONTROL_LAST = 0x02;
/** Command sets are a few hundred bytes; past this we stop tracking one and leave it all to the library. */
const MAX_TRACKED_COMMAND = 64 * 1024;

/**
 * Takes the data set bytes of C-STORE requests off dcmjs-dimse's receive path and writes them straight into
 * the store's spool file, as slices of the socket's chunks. Everything else, commands included, still goes to
 * dcmjs-dimse unchanged, so it keeps doing association negotiation, release, abort and DIMSE command parsing
 * (only the C-STORE-RSP is encoded by our SCP, see store-response.ts).
 *
 * For a C-STORE the library is shown exactly two data PDVs, both with empty values: the first one (not
 * last) makes it call `createStoreWritableStream`, which is where our SCP asks the sink for a spool file and
 * hands it to `adoptStoreStream`; the second one, sent after the real last fragment has been written and the
 * file ended, carries the last-fragment flag and makes it call `cStoreRequest`. The data PDVs in between are
 * consumed here. The library (0.3.3) processes a delivered PDU synchronously: its accumulator emits 'pdu'
 * from the 'data' listener through an AsyncEventEmitter2, which calls a one-argument listener at once, and
 * `_processPDataTf` only awaits the store stream's 'drain' when a write to it returns false, which the
 * discard stream we give it never does. So the spool file exists as soon as `deliver` returns; if the library
 * did not open one, we drop the connection rather than guess (see pdvStart).
 *
 * Back-pressure: while the spool file has more than its high-water mark queued, the socket is paused, so
 * the disk writes run alongside the network receive instead of piling up in memory.
 */
export class StoreBypass implements PduStreamHandler {
  /** The P-DATA-TF being assembled for the library: PDV headers and value slices, in order. */
  private pending: Buffer[] = [];
  private pendingLength = 0;
  private command: Buffer[] = [];
  private commandLength = 0;
  private commandUntracked = false;
  /** 'expected': a C-STORE-RQ that announces a data set has been seen; 'active': its data is flowing. */
  private store: 'none' | 'expected' | 'active' = 'none';
  /** The current PDV: where its value goes. */
  private current: 'forward' | 'command' | 'bypass' = 'forward';
  /** True while the first data PDV of a C-STORE is being delivered, i.e. while the library opens its stream. */
  private announcing = false;
  private target: Writable | undefined;
  private pausedOn: Writable | undefined;
  private disposed = false;

  constructor(private readonly link: BypassLink) {}

  /**
   * Called (through the SCP's createStoreWritableStream) with the stream the sink opened for a C-STORE.
   * When the data set bypasses the library, we keep the stream and the library gets one that discards the
   * empty values it will see; otherwise (it opened a store we did not foresee) the library writes the
   * data set itself, as it always did.
   */
  adoptStoreStream(writable: Writable): Writable {
    if (!this.announcing) return writable;
    this.target = writable;
    return new Writable({ write: (_chunk: Buffer, _encoding, callback) => callback() });
  }

  /** The connection has closed: let go of the stream and never resume reading. */
  dispose(): void {
    this.disposed = true;
    this.releasePause();
    this.target = undefined;
    this.pending = [];
    this.command = [];
  }

  controlPdu(pdu: Buffer): void {
    this.link.touch();
    this.flush();
    if (!this.link.isClosed()) this.link.deliver(pdu);
  }

  dataPduStart(): void {
    this.link.touch();
  }

  pdvStart(pdv: PdvHeader): void {
    if (pdv.isCommand) {
      if (this.store !== 'none') {
        // The library would write this command into the data set's stream; PS3.8 9.3.1 forbids it.
        this.link.fail('a command fragment arrived before the data set of a C-STORE was complete');
        return;
      }
      this.current = 'command';
      this.queueHeader(pdv.contextId, CONTROL_COMMAND | (pdv.isLast ? CONTROL_LAST : 0), pdv.valueLength);
      return;
    }
    if (this.store === 'none') {
      this.current = 'forward';
      this.queueHeader(pdv.contextId, pdv.isLast ? CONTROL_LAST : 0, pdv.valueLength);
      return;
    }
    this.current = 'bypass';
    if (this.store === 'expected') {
      // Deliver everything before this PDV, then an empty first fragment that makes the library open the
      // store (and us receive the spool file through adoptStoreStream) before any byte of it is written.
      this.queueHeader(pdv.contextId, 0, 0);
      this.announcing = true;
      try {
        this.flush();
      } finally {
        this.announcing = false;
      }
      if (this.link.isClosed()) return;
      if (this.target === undefined) {
        this.link.fail('dcmjs-dimse did not open a store for the data set of a C-STORE');
        return;
      }
      this.store = 'active';
    }
  }

  pdvValue(slice: Buffer): void {
    if (this.current === 'bypass') {
      this.write(slice);
      return;
    }
    this.pending.push(slice);
    this.pendingLength += slice.length;
    if (this.current === 'command' && !this.commandUntracked) {
      if (this.commandLength + slice.length > MAX_TRACKED_COMMAND) {
        this.commandUntracked = true;
        this.command = [];
      } else {
        this.command.push(slice);
        this.commandLength += slice.length;
      }
    }
  }

  pdvEnd(pdv: PdvHeader): void {
    const was = this.current;
    this.current = 'forward';
    if (was === 'bypass') {
      if (!pdv.isLast) return;
      // The whole data set is in the file's queue: end it first, so that the sink's complete() (which the
      // library calls from cStoreRequest, while this delivery runs) finds it ended.
      this.endTarget();
      this.store = 'none';
      this.queueHeader(pdv.contextId, CONTROL_LAST, 0);
      this.flush();
      return;
    }
    if (was === 'command' && pdv.isLast) {
      const summary = this.commandUntracked ? undefined : summariseCommand(Buffer.concat(this.command, this.commandLength));
      this.command = [];
      this.commandLength = 0;
      this.commandUntracked = false;
      // A command we cannot read is left entirely to the library, which refuses it as it always did.
      if (summary !== undefined && summary.commandField === C_STORE_RQ && summary.hasDataset) this.store = 'expected';
    }
  }

  dataPduEnd(): void {
    // A C-STORE-RQ waiting for its data set goes to the library with the first (empty) data PDV, in one
    // delivery instead of two: each costs the library a PDU parse. Nothing is answered in between.
    if (this.store === 'expected') return;
    this.flush();
  }

  private queueHeader(contextId: number, control: number, valueLength: number): void {
    const header = Buffer.allocUnsafe(6);
    header.writeUInt32BE(valueLength + 2, 0);
    header.writeUInt8(contextId, 4);
    header.writeUInt8(control, 5);
    this.pending.push(header);
    // Counts the value too: the slices of a forwarded PDV follow its header in `pending`.
    this.pendingLength += 6;
  }

  /** Delivers the queued PDVs to the library as one P-DATA-TF. */
  private flush(): void {
    if (this.pending.length === 0) return;
    const header = Buffer.allocUnsafe(6);
    header.writeUInt8(PDATA_TF, 0);
    header.writeUInt8(0, 1);
    header.writeUInt32BE(this.pendingLength, 2);
    const pdu = Buffer.concat([header, ...this.pending], 6 + this.pendingLength);
    this.pending = [];
    this.pendingLength = 0;
    if (!this.link.isClosed()) this.link.deliver(pdu);
  }

  private write(slice: Buffer): void {
    const target = this.target;
    // A store refused up front, or whose file failed, is read to its end into nothing; complete() reports it.
    if (target === undefined || target.destroyed) return;
    if (!target.write(slice) && this.pausedOn === undefined && !this.disposed) {
      this.pausedOn = target;
      target.once('drain', this.onDrain);
      // A file that fails while we wait never drains.
      target.once('close', this.onDrain);
      this.link.pause();
    }
  }

  private readonly onDrain = (): void => {
    this.releasePause();
  };

  private releasePause(): void {
    const target = this.pausedOn;
    if (target === undefined) return;
    this.pausedOn = undefined;
    target.off('drain', this.onDrain);
    target.off('close', this.onDrain);
    if (!this.disposed) this.link.resume();
  }

  private endTarget(): void {
    const target = this.target;
    this.target = undefined;
    // An ending stream emits no 'drain'; nothing more is coming for it anyway.
    this.releasePause();
    if (target !== undefined && !target.destroyed) target.end();
  }
}
