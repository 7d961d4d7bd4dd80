/**
 * An incremental parser for the DICOM upper layer byte stream (PS3.8 9.3) that never concatenates socket
 * chunks. dcmjs-dimse buffers every PDU with Buffer.concat on each socket read, which for 8 MB datasets was a
 * fifth of our CPU and most of our garbage; this parser instead reports P-DATA-TF PDUs as a sequence of PDV
 * headers and value slices that are views into the chunk being parsed, so dataset bytes can go to disk
 * without being copied. Only PDUs other than P-DATA-TF (association set-up, release, abort: small, and
 * bounded by the header check) are assembled into one buffer.
 */

const PDATA_TF = 0x04;
const PDU_HEADER_LENGTH = 6;
/** A PDV item header: 4-byte item length, presentation context ID, message control header (PS3.8 9.3.5.1). */
const PDV_HEADER_LENGTH = 6;

/** One PDV item header inside a P-DATA-TF PDU. */
export interface PdvHeader {
  readonly contextId: number;
  /** Bit 0 of the message control header: a command fragment rather than a data set fragment. */
  readonly isCommand: boolean;
  /** Bit 1: the last fragment of its command or data set. */
  readonly isLast: boolean;
  /** Bytes of value after the header (the item length less the two header bytes it counts). */
  readonly valueLength: number;
}

/**
 * Receives what the parser finds, in stream order. Calls are synchronous; a handler that tears the
 * connection down calls `stop()` and hears nothing more.
 */
export interface PduStreamHandler {
  /** A whole PDU other than P-DATA-TF, its 6-byte header included. */
  controlPdu(pdu: Buffer): void;
  /** A P-DATA-TF header was read; its PDVs follow. */
  dataPduStart(bodyLength: number): void;
  pdvStart(header: PdvHeader): void;
  /**
   * Part of the current PDV's value: a view into the chunk given to `push`, valid as long as the handler
   * keeps a reference (Node never reuses a socket chunk), and never empty.
   */
  pdvValue(slice: Buffer): void;
  pdvEnd(header: PdvHeader): void;
  /** The last PDV of the P-DATA-TF has ended. */
  dataPduEnd(): void;
}

/** Judges a PDU header; returns why the stream must be dropped, or undefined. */
export type PduHeaderCheck = (type: number, length: number) => string | undefined;

type State = 'pdu-header' | 'control-body' | 'pdv-header' | 'pdv-value';

export class PduStreamParser {
  private state: State = 'pdu-header';
  /** PDU or PDV header bytes collected so far (headers may be split across chunks). */
  private readonly headerBytes = Buffer.alloc(Math.max(PDU_HEADER_LENGTH, PDV_HEADER_LENGTH));
  private headerFill = 0;
  private control: Buffer | undefined;
  private controlFill = 0;
  /** Bytes of the current P-DATA-TF body not yet parsed. */
  private pduRemaining = 0;
  /** Bytes of the current PDV value not yet reported. */
  private pdvRemaining = 0;
  private pdv: PdvHeader | undefined;
  private failure: string | undefined;
  private stopped = false;

  constructor(
    private readonly handler: PduStreamHandler,
    private readonly checkHeader: PduHeaderCheck,
  ) {}

  /** No further callbacks: the connection is going away. */
  stop(): void {
    this.stopped = true;
  }

  /**
   * Parses one chunk from the socket. Returns why the stream is malformed (it is then dead, and the
   * connection must be dropped), or undefined.
   */
  push(chunk: Buffer): string | undefined {
    if (this.failure !== undefined) return this.failure;
    let pos = 0;
    const end = chunk.length;
    while (pos < end && !this.stopped) {
      switch (this.state) {
        case 'pdu-header': {
          pos = this.fillHeader(chunk, pos, PDU_HEADER_LENGTH);
          if (this.headerFill < PDU_HEADER_LENGTH) break;
          this.headerFill = 0;
          const type = this.headerBytes.readUInt8(0);
          const length = this.headerBytes.readUInt32BE(2);
          const problem = this.checkHeader(type, length);
          if (problem !== undefined) return this.fail(problem);
          if (type === PDATA_TF) {
            this.pduRemaining = length;
            this.handler.dataPduStart(length);
            if (length === 0) this.endDataPdu();
            else this.state = 'pdv-header';
          } else {
            this.control = Buffer.allocUnsafe(PDU_HEADER_LENGTH + length);
            this.headerBytes.copy(this.control, 0, 0, PDU_HEADER_LENGTH);
            this.controlFill = PDU_HEADER_LENGTH;
            this.state = 'control-body';
            if (length === 0) this.endControlPdu();
          }
          break;
        }
        case 'control-body': {
          const control = this.control;
          if (control === undefined) return this.fail('internal: no PDU buffer');
          const take = Math.min(control.length - this.controlFill, end - pos);
          chunk.copy(control, this.controlFill, pos, pos + take);
          this.controlFill += take;
          pos += take;
          if (this.controlFill === control.length) this.endControlPdu();
          break;
        }
        case 'pdv-header': {
          if (this.headerFill === 0 && this.pduRemaining < PDV_HEADER_LENGTH) {
            return this.fail(`P-DATA-TF has ${this.pduRemaining} bytes left, too few for a PDV item header`);
          }
          pos = this.fillHeader(chunk, pos, PDV_HEADER_LENGTH);
          if (this.headerFill < PDV_HEADER_LENGTH) break;
          this.headerFill = 0;
          const itemLength = this.headerBytes.readUInt32BE(0);
          if (itemLength < 2) return this.fail(`PDV item length ${itemLength} is shorter than its own header`);
          // The item length counts the two header bytes after it, and the item must fit in the PDU.
          if (itemLength + 4 > this.pduRemaining) {
            return this.fail(
              `PDV item of ${itemLength + 4} bytes overruns its P-DATA-TF (${this.pduRemaining} bytes left)`,
            );
          }
          const control = this.headerBytes.readUInt8(5);
          const pdv: PdvHeader = {
            contextId: this.headerBytes.readUInt8(4),
            isCommand: (control & 0x01) !== 0,
            isLast: (control & 0x02) !== 0,
            valueLength: itemLength - 2,
          };
          this.pdv = pdv;
          this.pduRemaining -= PDV_HEADER_LENGTH;
          this.pdvRemaining = pdv.valueLength;
          this.handler.pdvStart(pdv);
          if (this.pdvRemaining === 0) this.endPdv(pdv);
          else this.state = 'pdv-value';
          break;
        }
        case 'pdv-value': {
          const take = Math.min(this.pdvRemaining, end - pos);
          const slice = pos === 0 && take === end ? chunk : chunk.subarray(pos, pos + take);
          pos += take;
          this.pdvRemaining -= take;
          this.pduRemaining -= take;
          this.handler.pdvValue(slice);
          if (this.pdvRemaining === 0) {
            const pdv = this.pdv;
            if (pdv === undefined) return this.fail('internal: no PDV in progress');
            this.endPdv(pdv);
          }
          break;
        }
      }
    }
    return undefined;
  }

  private fillHeader(chunk: Buffer, pos: number, size: number): number {
    const take = Math.min(size - this.headerFill, chunk.length - pos);
    chunk.copy(this.headerBytes, this.headerFill, pos, pos + take);
    this.headerFill += take;
    return pos + take;
  }

  private endControlPdu(): void {
    const control = this.control;
    this.control = undefined;
    this.controlFill = 0;
    this.state = 'pdu-header';
    if (control !== undefined) this.handler.controlPdu(control);
  }

  private endPdv(pdv: PdvHeader): void {
    this.pdv = undefined;
    if (this.stopped) return;
    this.handler.pdvEnd(pdv);
    if (this.pduRemaining === 0) this.endDataPdu();
    else this.state = 'pdv-header';
  }

  private endDataPdu(): void {
    this.state = 'pdu-header';
    if (!this.stopped) this.handler.dataPduEnd();
  }

  private fail(problem: string): string {
    this.failure = problem;
    this.stopped = true;
    return problem;
  }
}
