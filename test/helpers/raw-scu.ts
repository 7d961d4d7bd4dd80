// A deliberately minimal DICOM Upper Layer (PS3.8) / DIMSE (PS3.7) client for tests.
//
// Unlike DCMTK's storescu or dcmjs-dimse, this client can misbehave on purpose: send a truncated
// dataset, a command whose SOP Instance UID differs from the dataset's, raw bytes, oversized PDUs, or
// vanish mid-transfer. It implements only what the tests need: association negotiation, C-ECHO,
// C-STORE, release and abort, plus the PDU encoders to build anything else by hand.
//
// Every wait has a timeout (default 10 s) that rejects with an Error naming what was awaited.

import net from 'node:net';

// ---------------------------------------------------------------------------------------------------
// Constants

export const APPLICATION_CONTEXT_UID = '1.2.840.10008.3.1.1.1';
export const VERIFICATION_SOP_CLASS_UID = '1.2.840.10008.1.1';
export const IMPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2';
export const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';
/** Implementation Class UID this helper announces (a 2.25 UUID-derived UID, test use only). */
export const RAW_SCU_IMPLEMENTATION_CLASS_UID = '2.25.190365923485737436409786283405316447711';
export const RAW_SCU_IMPLEMENTATION_VERSION_NAME = 'CXR_RAW_SCU_1';

export const PduType = {
  AssociateRq: 0x01,
  AssociateAc: 0x02,
  AssociateRj: 0x03,
  PDataTf: 0x04,
  ReleaseRq: 0x05,
  ReleaseRp: 0x06,
  Abort: 0x07,
} as const;

export const CommandField = {
  CStoreRq: 0x0001,
  CStoreRsp: 0x8001,
  CEchoRq: 0x0030,
  CEchoRsp: 0x8030,
} as const;

/** Command elements (group 0000) by element number. */
export const CommandTag = {
  GroupLength: 0x0000,
  AffectedSopClassUid: 0x0002,
  CommandField: 0x0100,
  MessageId: 0x0110,
  MessageIdBeingRespondedTo: 0x0120,
  Priority: 0x0700,
  CommandDataSetType: 0x0800,
  Status: 0x0900,
  ErrorComment: 0x0902,
  AffectedSopInstanceUid: 0x1000,
} as const;

/** (0000,0800) value meaning "no data set follows". */
export const NO_DATA_SET = 0x0101;

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_PDU_LENGTH = 16_384;
/** Bytes of a P-DATA-TF PDU's variable part taken by one PDV item header (length 4 + context id 1 + control 1). */
const PDV_OVERHEAD = 6;

// ---------------------------------------------------------------------------------------------------
// Small encoding helpers

/** Even-length ASCII; UIDs are padded with NUL, other strings with a space (PS3.5 6.2). */
function evenAscii(value: string, pad: 0x00 | 0x20): Buffer {
  const raw = Buffer.from(value, 'ascii');
  return raw.length % 2 === 0 ? raw : Buffer.concat([raw, Buffer.from([pad])]);
}

function aeTitle(value: string): Buffer {
  const out = Buffer.alloc(16, 0x20);
  out.write(value.slice(0, 16), 'ascii');
  return out;
}

/** An A-ASSOCIATE item / sub-item: type, reserved, 2-byte big endian length, value. */
export function encodeItem(type: number, value: Buffer): Buffer {
  if (value.length > 0xffff) throw new Error(`item 0x${type.toString(16)} value too long (${value.length} bytes)`);
  const header = Buffer.alloc(4);
  header.writeUInt8(type, 0);
  header.writeUInt16BE(value.length, 2);
  return Buffer.concat([header, value]);
}

/** A whole PDU: type, reserved, 4-byte big endian length, body. */
export function encodePdu(type: number, body: Buffer): Buffer {
  const header = Buffer.alloc(6);
  header.writeUInt8(type, 0);
  header.writeUInt32BE(body.length, 2);
  return Buffer.concat([header, body]);
}

function trimUid(buf: Buffer): string {
  return buf.toString('ascii').replace(/[\0 ]+$/, '');
}

// ---------------------------------------------------------------------------------------------------
// A-ASSOCIATE-RQ / AC / RJ, A-RELEASE, A-ABORT

export interface ProposedContext {
  abstractSyntax: string;
  transferSyntaxes: string[];
}

export interface AssociateRqOptions {
  callingAe: string;
  calledAe: string;
  /** Presentation contexts; they get IDs 1, 3, 5, ... in order unless `id` is given. */
  contexts: Array<ProposedContext & { id?: number }>;
  /** Max PDU length we can receive (0x51); 0 means unlimited. Default 16384. */
  maxPduLength?: number;
  /** null omits the 0x52 sub-item (which PS3.7 requires). */
  implementationClassUid?: string | null;
  /** null omits the 0x55 sub-item. */
  implementationVersionName?: string | null;
  applicationContext?: string;
}

export function encodeAssociateRq(opts: AssociateRqOptions): Buffer {
  const fixed = Buffer.alloc(68);
  fixed.writeUInt16BE(0x0001, 0); // protocol version
  aeTitle(opts.calledAe).copy(fixed, 4);
  aeTitle(opts.callingAe).copy(fixed, 20);
  const items: Buffer[] = [
    fixed,
    encodeItem(0x10, Buffer.from(opts.applicationContext ?? APPLICATION_CONTEXT_UID, 'ascii')),
  ];
  opts.contexts.forEach((pc, index) => {
    const head = Buffer.alloc(4);
    head.writeUInt8(pc.id ?? index * 2 + 1, 0);
    const sub = [encodeItem(0x30, Buffer.from(pc.abstractSyntax, 'ascii'))];
    for (const ts of pc.transferSyntaxes) sub.push(encodeItem(0x40, Buffer.from(ts, 'ascii')));
    items.push(encodeItem(0x20, Buffer.concat([head, ...sub])));
  });
  const maxLength = Buffer.alloc(4);
  maxLength.writeUInt32BE(opts.maxPduLength ?? DEFAULT_MAX_PDU_LENGTH, 0);
  const userInfo = [encodeItem(0x51, maxLength)];
  const implUid =
    opts.implementationClassUid === undefined ? RAW_SCU_IMPLEMENTATION_CLASS_UID : opts.implementationClassUid;
  if (implUid !== null) userInfo.push(encodeItem(0x52, Buffer.from(implUid, 'ascii')));
  const versionName =
    opts.implementationVersionName === undefined ? RAW_SCU_IMPLEMENTATION_VERSION_NAME : opts.implementationVersionName;
  if (versionName !== null) userInfo.push(encodeItem(0x55, Buffer.from(versionName, 'ascii')));
  items.push(encodeItem(0x50, Buffer.concat(userInfo)));
  return encodePdu(PduType.AssociateRq, Buffer.concat(items));
}

export interface AssociateAcInfo {
  calledAe: string;
  callingAe: string;
  applicationContext?: string;
  contexts: Array<{ id: number; result: number; transferSyntax?: string }>;
  /** 0x51 of the acceptor; 0 means unlimited (or absent). */
  maxPduLength: number;
  implementationClassUid?: string;
  implementationVersionName?: string;
}

/** Parses the body (after the 6-byte header) of an A-ASSOCIATE-AC. */
export function decodeAssociateAc(body: Buffer): AssociateAcInfo {
  if (body.length < 68) throw new Error(`A-ASSOCIATE-AC too short (${body.length} bytes)`);
  const info: AssociateAcInfo = {
    calledAe: body.toString('ascii', 4, 20).trim(),
    callingAe: body.toString('ascii', 20, 36).trim(),
    contexts: [],
    maxPduLength: 0,
  };
  for (const item of iterateItems(body, 68)) {
    if (item.type === 0x10) {
      info.applicationContext = trimUid(item.value);
    } else if (item.type === 0x21) {
      if (item.value.length < 4) throw new Error('presentation context item (0x21) too short');
      const pc: { id: number; result: number; transferSyntax?: string } = {
        id: item.value.readUInt8(0),
        result: item.value.readUInt8(2),
      };
      for (const sub of iterateItems(item.value, 4)) {
        if (sub.type === 0x40 && sub.value.length > 0) pc.transferSyntax = trimUid(sub.value);
      }
      info.contexts.push(pc);
    } else if (item.type === 0x50) {
      for (const sub of iterateItems(item.value, 0)) {
        if (sub.type === 0x51 && sub.value.length >= 4) info.maxPduLength = sub.value.readUInt32BE(0);
        else if (sub.type === 0x52) info.implementationClassUid = trimUid(sub.value);
        else if (sub.type === 0x55) info.implementationVersionName = sub.value.toString('ascii').trim();
      }
    }
  }
  return info;
}

function* iterateItems(buf: Buffer, start: number): Generator<{ type: number; value: Buffer }> {
  let offset = start;
  while (offset + 4 <= buf.length) {
    const type = buf.readUInt8(offset);
    const length = buf.readUInt16BE(offset + 2);
    if (offset + 4 + length > buf.length) throw new Error(`item 0x${type.toString(16)} overruns its PDU`);
    yield { type, value: buf.subarray(offset + 4, offset + 4 + length) };
    offset += 4 + length;
  }
}

export function encodeAssociateRj(result: number, source: number, reason: number): Buffer {
  return encodePdu(PduType.AssociateRj, Buffer.from([0, result, source, reason]));
}

export function encodeReleaseRq(): Buffer {
  return encodePdu(PduType.ReleaseRq, Buffer.alloc(4));
}

export function encodeReleaseRp(): Buffer {
  return encodePdu(PduType.ReleaseRp, Buffer.alloc(4));
}

/** A-ABORT; source 0 = service user, 2 = service provider. */
export function encodeAbort(source = 0, reason = 0): Buffer {
  return encodePdu(PduType.Abort, Buffer.from([0, 0, source, reason]));
}

// ---------------------------------------------------------------------------------------------------
// P-DATA-TF

export interface Pdv {
  contextId: number;
  isCommand: boolean;
  isLast: boolean;
  data: Buffer;
}

/** One P-DATA-TF PDU holding the given PDVs. */
export function encodePDataTf(pdvs: Pdv[]): Buffer {
  const parts: Buffer[] = [];
  for (const pdv of pdvs) {
    const head = Buffer.alloc(6);
    head.writeUInt32BE(pdv.data.length + 2, 0);
    head.writeUInt8(pdv.contextId, 4);
    head.writeUInt8((pdv.isCommand ? 0x01 : 0) | (pdv.isLast ? 0x02 : 0), 5);
    parts.push(head, pdv.data);
  }
  return encodePdu(PduType.PDataTf, Buffer.concat(parts));
}

export function decodePDataTf(body: Buffer): Pdv[] {
  const out: Pdv[] = [];
  let offset = 0;
  while (offset < body.length) {
    if (offset + 6 > body.length) throw new Error('truncated PDV item header in P-DATA-TF');
    const length = body.readUInt32BE(offset);
    if (length < 2 || offset + 4 + length > body.length)
      throw new Error(`PDV item length ${length} overruns P-DATA-TF`);
    const control = body.readUInt8(offset + 5);
    out.push({
      contextId: body.readUInt8(offset + 4),
      isCommand: (control & 0x01) !== 0,
      isLast: (control & 0x02) !== 0,
      data: body.subarray(offset + 6, offset + 4 + length),
    });
    offset += 4 + length;
  }
  return out;
}

/**
 * Splits a message (command or dataset) into P-DATA-TF PDUs, one PDV per PDU, each fragment at most
 * `fragmentSize` bytes. `lastFlag: false` leaves the last-fragment bit clear on every PDV.
 */
export function fragmentMessage(
  contextId: number,
  isCommand: boolean,
  bytes: Buffer,
  fragmentSize: number,
  lastFlag = true,
): Buffer[] {
  if (!Number.isInteger(fragmentSize) || fragmentSize < 1) throw new Error(`invalid PDV fragment size ${fragmentSize}`);
  const pdus: Buffer[] = [];
  if (bytes.length === 0) {
    return lastFlag ? [encodePDataTf([{ contextId, isCommand, isLast: true, data: bytes }])] : [];
  }
  for (let offset = 0; offset < bytes.length; offset += fragmentSize) {
    const data = bytes.subarray(offset, Math.min(bytes.length, offset + fragmentSize));
    const isLast = lastFlag && offset + fragmentSize >= bytes.length;
    pdus.push(encodePDataTf([{ contextId, isCommand, isLast, data }]));
  }
  return pdus;
}

// ---------------------------------------------------------------------------------------------------
// DIMSE command sets (always implicit VR little endian, group 0000)

export interface CommandElement {
  element: number;
  vr: 'UI' | 'US' | 'UL' | 'AE' | 'LO' | 'SH' | 'ST' | 'CS';
  value: string | number;
}

/** Encodes a command set; (0000,0000) group length is computed and prepended unless `groupLength: false`. */
export function encodeCommand(elements: CommandElement[], opts: { groupLength?: boolean } = {}): Buffer {
  const sorted = [...elements].filter((e) => e.element !== 0).sort((a, b) => a.element - b.element);
  const parts = sorted.map((e) => {
    let value: Buffer;
    if (e.vr === 'US') {
      value = Buffer.alloc(2);
      value.writeUInt16LE(Number(e.value), 0);
    } else if (e.vr === 'UL') {
      value = Buffer.alloc(4);
      value.writeUInt32LE(Number(e.value), 0);
    } else {
      value = evenAscii(String(e.value), e.vr === 'UI' ? 0x00 : 0x20);
    }
    return encodeImplicitElement(0x0000, e.element, value);
  });
  const body = Buffer.concat(parts);
  if (opts.groupLength === false) return body;
  const length = Buffer.alloc(4);
  length.writeUInt32LE(body.length, 0);
  return Buffer.concat([encodeImplicitElement(0x0000, 0x0000, length), body]);
}

function encodeImplicitElement(group: number, element: number, value: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt16LE(group, 0);
  head.writeUInt16LE(element, 2);
  head.writeUInt32LE(value.length, 4);
  return Buffer.concat([head, value]);
}

export function encodeCStoreRq(opts: {
  sopClassUid: string;
  sopInstanceUid: string;
  messageId: number;
  priority?: number;
}): Buffer {
  return encodeCommand([
    { element: CommandTag.AffectedSopClassUid, vr: 'UI', value: opts.sopClassUid },
    { element: CommandTag.CommandField, vr: 'US', value: CommandField.CStoreRq },
    { element: CommandTag.MessageId, vr: 'US', value: opts.messageId },
    { element: CommandTag.Priority, vr: 'US', value: opts.priority ?? 0 },
    { element: CommandTag.CommandDataSetType, vr: 'US', value: 0x0000 },
    { element: CommandTag.AffectedSopInstanceUid, vr: 'UI', value: opts.sopInstanceUid },
  ]);
}

export function encodeCEchoRq(messageId: number, sopClassUid = VERIFICATION_SOP_CLASS_UID): Buffer {
  return encodeCommand([
    { element: CommandTag.AffectedSopClassUid, vr: 'UI', value: sopClassUid },
    { element: CommandTag.CommandField, vr: 'US', value: CommandField.CEchoRq },
    { element: CommandTag.MessageId, vr: 'US', value: messageId },
    { element: CommandTag.CommandDataSetType, vr: 'US', value: NO_DATA_SET },
  ]);
}

/** Decodes an implicit VR little endian command set into element number -> raw value. */
export function decodeCommand(bytes: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let offset = 0;
  while (offset < bytes.length) {
    if (offset + 8 > bytes.length) throw new Error(`truncated command element header at offset ${offset}`);
    const group = bytes.readUInt16LE(offset);
    const element = bytes.readUInt16LE(offset + 2);
    const length = bytes.readUInt32LE(offset + 4);
    if (group !== 0x0000)
      throw new Error(`command set holds an element of group ${group.toString(16).padStart(4, '0')}`);
    if (offset + 8 + length > bytes.length)
      throw new Error(`command element (0000,${element.toString(16)}) overruns the command set`);
    out.set(element, bytes.subarray(offset + 8, offset + 8 + length));
    offset += 8 + length;
  }
  return out;
}

export function commandUS(command: Map<number, Buffer>, element: number): number | undefined {
  const v = command.get(element);
  return v && v.length >= 2 ? v.readUInt16LE(0) : undefined;
}

export function commandString(command: Map<number, Buffer>, element: number): string | undefined {
  const v = command.get(element);
  return v === undefined
    ? undefined
    : v
        .toString('latin1')
        .replace(/[\0 ]+$/, '')
        .replace(/^ +/, '');
}

// ---------------------------------------------------------------------------------------------------
// Incoming stream -> PDUs

export interface RawPdu {
  type: number;
  /** Everything after the 6-byte header. */
  body: Buffer;
}

/** Reassembles PDUs from TCP chunks: a PDU may span chunks, and a chunk may hold several PDUs. */
export class PduReader {
  private buffer: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): RawPdu[] {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const out: RawPdu[] = [];
    while (this.buffer.length >= 6) {
      const length = this.buffer.readUInt32BE(2);
      if (this.buffer.length < 6 + length) break;
      out.push({ type: this.buffer.readUInt8(0), body: Buffer.from(this.buffer.subarray(6, 6 + length)) });
      this.buffer = this.buffer.subarray(6 + length);
    }
    return out;
  }

  /** Bytes held back waiting for the rest of a PDU. */
  get pendingBytes(): number {
    return this.buffer.length;
  }
}

// ---------------------------------------------------------------------------------------------------
// Association

export interface AssociationRejected {
  rejected: true;
  result: number;
  source: number;
  reason: number;
}

export interface OpenAssociationOptions {
  host: string;
  port: number;
  callingAe: string;
  calledAe: string;
  /** IDs 1, 3, 5, ... in order unless `id` is given (a test may propose invalid or repeated IDs). */
  contexts: Array<ProposedContext & { id?: number }>;
  /** Source address to connect from (e.g. 127.0.0.2, to act as a second host on loopback). */
  localAddress?: string;
  /** Max PDU length we announce (0x51). Default 16384. */
  maxPduLength?: number;
  /** Timeout for each wait (connect, A-ASSOCIATE response, each DIMSE response, release). Default 10 s. */
  timeoutMs?: number;
  implementationClassUid?: string | null;
  implementationVersionName?: string | null;
}

export interface DimseMessage {
  contextId: number;
  command: Map<number, Buffer>;
  commandField: number | undefined;
  messageIdBeingRespondedTo: number | undefined;
  status: number | undefined;
  errorComment: string | undefined;
  /** Present when the command announced a data set. */
  dataset?: Buffer;
}

export interface StoreOptions {
  /** Default: the first accepted context whose abstract syntax is `sopClassUid`. */
  contextId?: number;
  sopClassUid: string;
  sopInstanceUid: string;
  /** Dataset bytes only (no Part 10 preamble/meta), already in the accepted transfer syntax. */
  dataset: Buffer;
  /** Default: an increasing counter starting at 1. */
  messageId?: number;
  /** Max dataset bytes per PDV (the command is not affected); capped so no PDU exceeds the peer's max length. */
  pdvSize?: number;
  /** Overrides the association's timeout for the response. */
  timeoutMs?: number;
}

interface Waiter {
  what: string;
  onlyTimeout: boolean;
  check: () => boolean;
  fail: (err: Error) => void;
}

/** Connects, negotiates, and returns the association or the A-ASSOCIATE-RJ fields. */
export async function openAssociation(opts: OpenAssociationOptions): Promise<RawAssociation | AssociationRejected> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const socket = await connect(opts.host, opts.port, timeoutMs, opts.localAddress);
  const assoc = new RawAssociation(socket, opts.contexts, timeoutMs);
  try {
    socket.write(
      encodeAssociateRq({
        callingAe: opts.callingAe,
        calledAe: opts.calledAe,
        contexts: opts.contexts,
        maxPduLength: opts.maxPduLength ?? DEFAULT_MAX_PDU_LENGTH,
        implementationClassUid: opts.implementationClassUid,
        implementationVersionName: opts.implementationVersionName,
      }),
    );
    const answer = await assoc.awaitAssociateResponse();
    if (answer !== null) {
      assoc.destroy();
      return answer;
    }
    return assoc;
  } catch (err) {
    assoc.destroy();
    throw err;
  }
}

/**
 * Opens a TCP connection and sends nothing: the idle socket an attacker holds. Optionally from `localAddress`.
 * The caller destroys it.
 */
export function connectIdle(
  host: string,
  port: number,
  options: { localAddress?: string; timeoutMs?: number } = {},
): Promise<net.Socket> {
  return connect(host, port, options.timeoutMs ?? DEFAULT_TIMEOUT_MS, options.localAddress);
}

function connect(host: string, port: number, timeoutMs: number, localAddress?: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(localAddress === undefined ? { host, port } : { host, port, localAddress });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for TCP connection to ${host}:${port}`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      socket.on('error', () => {}); // the owner installs its own handler; never crash on an unhandled 'error'
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(new Error(`TCP connection to ${host}:${port} failed: ${err.message}`));
    });
  });
}

export class RawAssociation {
  readonly rejected = false;
  /** Presentation contexts as the SCP answered them (abstract syntax filled in from our proposal). */
  contexts: Array<{ id: number; abstractSyntax: string; result: number; transferSyntax?: string }> = [];
  /** The acceptor's max PDU length (0x51); 0 means unlimited. */
  maxPduLengthOfPeer = 0;
  /** The whole A-ASSOCIATE-AC as decoded. */
  acceptInfo: AssociateAcInfo | undefined;
  /** Set when an A-ABORT arrives; we then close the connection (PS3.8 AA-3). */
  abortReceived?: { source: number; reason: number };
  /** Set when the peer sent an A-RELEASE-RQ (we answer it with A-RELEASE-RP). */
  releaseRequestedByPeer = false;
  /** Type and length of every PDU received, in order. */
  readonly pdusReceived: Array<{ type: number; length: number }> = [];
  /** Resolves when the socket closes, whichever side closed it. */
  readonly closed: Promise<void>;

  private readonly socket: net.Socket;
  private readonly proposed: Array<ProposedContext & { id?: number }>;
  private readonly timeoutMs: number;
  private readonly reader = new PduReader();
  private readonly messages: DimseMessage[] = [];
  private readonly waiters = new Set<Waiter>();
  private nextMessageId = 1;
  private isClosed = false;
  private closedLocally = false;
  private peerClosed = false;
  private releasePending = false;
  private releaseRpReceived = false;
  private associateAnswer: { kind: 'ac' } | { kind: 'rj'; rj: AssociationRejected } | undefined;
  private protocolError: Error | undefined;
  private socketError: Error | undefined;
  private commandFragments: Buffer[] = [];
  private dataFragments: Buffer[] = [];
  private awaitingDataset: DimseMessage | undefined;

  /** @internal Use openAssociation(). */
  constructor(socket: net.Socket, proposed: Array<ProposedContext & { id?: number }>, timeoutMs: number) {
    this.socket = socket;
    this.proposed = proposed;
    this.timeoutMs = timeoutMs;
    this.closed = new Promise((resolve) => {
      socket.once('close', () => {
        if (!this.closedLocally) this.peerClosed = true;
        this.isClosed = true;
        this.settleWaiters();
        resolve();
      });
    });
    socket.on('end', () => {
      if (!this.closedLocally) this.peerClosed = true;
    });
    socket.on('error', (err) => {
      if (!this.closedLocally) this.peerClosed = true;
      this.socketError = err;
    });
    socket.on('data', (chunk: Buffer) => {
      let pdus: RawPdu[];
      try {
        pdus = this.reader.push(chunk);
        for (const pdu of pdus) this.handlePdu(pdu);
      } catch (err) {
        this.protocolError = err instanceof Error ? err : new Error(String(err));
      }
      this.settleWaiters();
    });
  }

  /**
   * True when the peer closed TCP (FIN or reset) before we closed or destroyed the socket. We close it
   * ourselves on A-RELEASE-RP, abort(), destroy() and on receiving A-ABORT (see `abortReceived`).
   */
  closedByPeer(): boolean {
    return this.peerClosed;
  }

  /** Resolves when the socket has closed; rejects after `timeoutMs` (default: the association's). */
  async waitForClose(timeoutMs = this.timeoutMs): Promise<void> {
    await this.waitFor('the connection to close', timeoutMs, () => (this.isClosed ? true : undefined), true);
  }

  /** @internal Resolves null on A-ASSOCIATE-AC, the rejection on A-ASSOCIATE-RJ. */
  async awaitAssociateResponse(): Promise<AssociationRejected | null> {
    const answer = await this.waitFor('A-ASSOCIATE-AC/RJ', this.timeoutMs, () => this.associateAnswer);
    return answer.kind === 'rj' ? answer.rj : null;
  }

  /** C-ECHO; resolves with the response status. */
  async echo(contextId?: number): Promise<number> {
    const pcId = contextId ?? this.acceptedContextFor(VERIFICATION_SOP_CLASS_UID);
    const messageId = this.nextMessageId++;
    this.sendMessage(pcId, encodeCEchoRq(messageId));
    const rsp = await this.receiveMessage(`C-ECHO-RSP to message ${messageId}`);
    if (rsp.status === undefined) throw new Error('C-ECHO-RSP without a Status (0000,0900)');
    return rsp.status;
  }

  /** C-STORE; resolves with the response status and error comment. */
  async store(opts: StoreOptions): Promise<{ status: number; errorComment?: string }> {
    const pcId = this.sendStoreRequest(opts, opts.dataset.length, true);
    const rsp = await this.receiveMessage(`C-STORE-RSP (context ${pcId})`, opts.timeoutMs);
    if (rsp.status === undefined) throw new Error('C-STORE-RSP without a Status (0000,0900)');
    return rsp.errorComment === undefined
      ? { status: rsp.status }
      : { status: rsp.status, errorComment: rsp.errorComment };
  }

  /**
   * Sends the C-STORE-RQ command and only the first `bytesToSend` bytes of the dataset, none with the
   * last-fragment bit, then resolves once the bytes are handed to the OS. No response is awaited.
   */
  async sendCommandAndPartialDataset(opts: StoreOptions & { bytesToSend: number }): Promise<void> {
    this.sendStoreRequest(opts, Math.max(0, Math.min(opts.bytesToSend, opts.dataset.length)), false);
    await this.flush('partial C-STORE data to be written');
  }

  /** Writes bytes as they are. */
  sendRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Sends A-RELEASE-RQ, waits for A-RELEASE-RP, then closes the connection and waits for it to close. */
  async release(): Promise<void> {
    this.releasePending = true;
    this.socket.write(encodeReleaseRq());
    await this.waitFor('A-RELEASE-RP', this.timeoutMs, () => (this.releaseRpReceived ? true : undefined));
    // handlePdu already ended our side when the RP arrived; give the peer a chance to close its side too.
    await this.waitForClose().catch(() => undefined);
    this.socket.destroy();
    await this.closed;
  }

  /** Sends A-ABORT (source service user) and closes the connection. */
  abort(): void {
    this.closedLocally = true;
    if (this.socket.destroyed) return;
    const timer = setTimeout(() => this.socket.destroy(), 1000);
    timer.unref();
    this.socket.end(encodeAbort(0, 0), () => {
      clearTimeout(timer);
      this.socket.destroy();
    });
  }

  /** Vanishes: destroys the socket without sending any PDU. */
  destroy(): void {
    this.closedLocally = true;
    this.socket.destroy();
  }

  /** Next DIMSE message from the peer (command, plus dataset when one was announced). */
  receiveMessage(what = 'a DIMSE message', timeoutMs = this.timeoutMs): Promise<DimseMessage> {
    return this.waitFor(what, timeoutMs, () => this.messages.shift());
  }

  /** Sends a complete command set, then the data set if given (in PDVs of at most `pdvSize` bytes), within the peer's limit. */
  sendMessage(contextId: number, command: Buffer, dataset?: Buffer, pdvSize?: number): void {
    for (const pdu of fragmentMessage(contextId, true, command, this.fragmentSize())) this.socket.write(pdu);
    if (dataset === undefined) return;
    for (const pdu of fragmentMessage(contextId, false, dataset, this.fragmentSize(pdvSize))) this.socket.write(pdu);
  }

  /**
   * PDV payload size: the largest even size the peer's max PDU length allows, or `wanted` if smaller.
   * An odd `wanted` is used as given (PS3.5 7.5 wants even fragments; DCMTK aborts on odd ones).
   */
  fragmentSize(wanted?: number): number {
    const peerMax = this.maxPduLengthOfPeer > 0 ? this.maxPduLengthOfPeer : DEFAULT_MAX_PDU_LENGTH;
    const limit = (peerMax - PDV_OVERHEAD) & ~1;
    if (limit < 1) throw new Error(`peer's max PDU length ${peerMax} leaves no room for a PDV`);
    return wanted === undefined ? limit : Math.min(wanted, limit);
  }

  /** The ID of the first accepted context for an abstract syntax; throws if there is none. */
  acceptedContextFor(abstractSyntax: string): number {
    const pc = this.contexts.find((c) => c.result === 0 && c.abstractSyntax === abstractSyntax);
    if (pc === undefined) throw new Error(`no accepted presentation context for abstract syntax ${abstractSyntax}`);
    return pc.id;
  }

  // -------------------------------------------------------------------------------------------------

  private sendStoreRequest(opts: StoreOptions, datasetBytes: number, complete: boolean): number {
    const pcId = opts.contextId ?? this.acceptedContextFor(opts.sopClassUid);
    const messageId = opts.messageId ?? this.nextMessageId++;
    const command = encodeCStoreRq({ sopClassUid: opts.sopClassUid, sopInstanceUid: opts.sopInstanceUid, messageId });
    for (const pdu of fragmentMessage(pcId, true, command, this.fragmentSize())) this.socket.write(pdu);
    const data = opts.dataset.subarray(0, datasetBytes);
    for (const pdu of fragmentMessage(pcId, false, data, this.fragmentSize(opts.pdvSize), complete))
      this.socket.write(pdu);
    return pcId;
  }

  private flush(what: string): Promise<void> {
    return this.waitForCallback(what, (done) => this.socket.write(Buffer.alloc(0), () => done()));
  }

  private waitForCallback(what: string, start: (done: () => void) => void): Promise<void> {
    let finished = false;
    const p = this.waitFor(what, this.timeoutMs, () => (finished ? true : undefined), true);
    start(() => {
      finished = true;
      this.settleWaiters();
    });
    return p.then(() => undefined);
  }

  private handlePdu(pdu: RawPdu): void {
    this.pdusReceived.push({ type: pdu.type, length: pdu.body.length });
    switch (pdu.type) {
      case PduType.AssociateAc: {
        const info = decodeAssociateAc(pdu.body);
        this.acceptInfo = info;
        this.maxPduLengthOfPeer = info.maxPduLength;
        this.contexts = info.contexts.map((pc) => {
          const proposed = this.proposed.find((p, index) => (p.id ?? index * 2 + 1) === pc.id);
          const entry: { id: number; abstractSyntax: string; result: number; transferSyntax?: string } = {
            id: pc.id,
            abstractSyntax: proposed?.abstractSyntax ?? '',
            result: pc.result,
          };
          if (pc.transferSyntax !== undefined) entry.transferSyntax = pc.transferSyntax;
          return entry;
        });
        this.associateAnswer = { kind: 'ac' };
        break;
      }
      case PduType.AssociateRj: {
        const b = pdu.body;
        this.associateAnswer = {
          kind: 'rj',
          rj: { rejected: true, result: b.readUInt8(1), source: b.readUInt8(2), reason: b.readUInt8(3) },
        };
        break;
      }
      case PduType.PDataTf:
        for (const pdv of decodePDataTf(pdu.body)) this.handlePdv(pdv);
        break;
      case PduType.ReleaseRq:
        this.releaseRequestedByPeer = true;
        this.socket.write(encodeReleaseRp());
        break;
      case PduType.ReleaseRp:
        this.releaseRpReceived = true;
        if (this.releasePending) {
          // Close our side right away (PS3.8: the requestor closes the transport after A-RELEASE-RP).
          this.closedLocally = true;
          this.socket.end();
        }
        break;
      case PduType.Abort:
        this.abortReceived = { source: pdu.body.readUInt8(2), reason: pdu.body.readUInt8(3) };
        // PS3.8 AA-3: the receiver of an A-ABORT closes the transport connection (the sender waits for it).
        if (!this.peerClosed) this.closedLocally = true;
        this.socket.destroy();
        break;
      default:
        throw new Error(`unexpected PDU type 0x${pdu.type.toString(16).padStart(2, '0')}`);
    }
  }

  private handlePdv(pdv: Pdv): void {
    if (pdv.isCommand) {
      this.commandFragments.push(pdv.data);
      if (!pdv.isLast) return;
      const command = decodeCommand(Buffer.concat(this.commandFragments));
      this.commandFragments = [];
      const message: DimseMessage = {
        contextId: pdv.contextId,
        command,
        commandField: commandUS(command, CommandTag.CommandField),
        messageIdBeingRespondedTo: commandUS(command, CommandTag.MessageIdBeingRespondedTo),
        status: commandUS(command, CommandTag.Status),
        errorComment: commandString(command, CommandTag.ErrorComment),
      };
      const dataSetType = commandUS(command, CommandTag.CommandDataSetType);
      if (dataSetType !== undefined && dataSetType !== NO_DATA_SET) this.awaitingDataset = message;
      else this.messages.push(message);
    } else {
      this.dataFragments.push(pdv.data);
      if (!pdv.isLast) return;
      const dataset = Buffer.concat(this.dataFragments);
      this.dataFragments = [];
      if (this.awaitingDataset === undefined) throw new Error('data set received without a command announcing it');
      this.awaitingDataset.dataset = dataset;
      this.messages.push(this.awaitingDataset);
      this.awaitingDataset = undefined;
    }
  }

  /**
   * Resolves with `check()`'s first defined value, re-checked after every incoming chunk and on close.
   * Rejects on timeout and, unless `onlyTimeout`, on a protocol error, an A-ABORT or the connection closing.
   */
  private waitFor<T>(what: string, timeoutMs: number, check: () => T | undefined, onlyTimeout = false): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
      };
      const waiter: Waiter = {
        what,
        onlyTimeout,
        check: () => {
          const value = check();
          if (value === undefined) return false;
          finish();
          resolve(value);
          return true;
        },
        fail: (err) => {
          finish();
          reject(err);
        },
      };
      const timer = setTimeout(
        () => waiter.fail(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)),
        timeoutMs,
      );
      this.waiters.add(waiter);
      this.settleWaiter(waiter);
    });
  }

  private settleWaiter(waiter: Waiter): void {
    if (waiter.check() || waiter.onlyTimeout) return;
    if (this.protocolError) {
      waiter.fail(new Error(`protocol error while waiting for ${waiter.what}: ${this.protocolError.message}`));
    } else if (this.abortReceived) {
      const { source, reason } = this.abortReceived;
      waiter.fail(new Error(`A-ABORT (source ${source}, reason ${reason}) received while waiting for ${waiter.what}`));
    } else if (this.isClosed) {
      const detail = this.socketError ? ` (${this.socketError.message})` : '';
      waiter.fail(new Error(`connection closed${detail} while waiting for ${waiter.what}`));
    }
  }

  private settleWaiters(): void {
    for (const waiter of [...this.waiters]) this.settleWaiter(waiter);
  }
}

// ---------------------------------------------------------------------------------------------------
// Raw bytes

/**
 * Connects, writes `bytes`, and collects what comes back until the peer closes or `waitMs` (default
 * 10 s) passes, after which we close. Never rejects once connected.
 */
export async function sendGarbage(
  host: string,
  port: number,
  bytes: Buffer,
  waitMs = DEFAULT_TIMEOUT_MS,
): Promise<{ closedByPeer: boolean; received: Buffer }> {
  const socket = await connect(host, port, waitMs);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let closedLocally = false;
    let peerClosed = false;
    const timer = setTimeout(() => {
      closedLocally = true;
      socket.destroy();
    }, waitMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => {
      if (!closedLocally) peerClosed = true;
    });
    socket.on('error', () => {
      if (!closedLocally) peerClosed = true;
    });
    socket.once('close', () => {
      clearTimeout(timer);
      if (!closedLocally) peerClosed = true;
      resolve({ closedByPeer: peerClosed, received: Buffer.concat(chunks) });
    });
    socket.write(bytes);
  });
}

// ---------------------------------------------------------------------------------------------------
// Part 10 files

const LONG_LENGTH_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);

/**
 * Splits a DICOM Part 10 file into its transfer syntax and the dataset bytes that follow the file meta
 * information (group 0002, whose extent comes from (0002,0000) when present).
 */
export function datasetBytesOfPart10(file: Buffer): { transferSyntaxUid: string; dataset: Buffer } {
  if (file.length < 132 || file.toString('latin1', 128, 132) !== 'DICM') {
    throw new Error('not a DICOM Part 10 file: no "DICM" prefix after the 128-byte preamble');
  }
  let offset = 132;
  let end: number | undefined;
  let transferSyntaxUid: string | undefined;
  while (offset + 8 <= file.length && (end === undefined || offset < end)) {
    const group = file.readUInt16LE(offset);
    if (group !== 0x0002) break;
    const element = file.readUInt16LE(offset + 2);
    const vr = file.toString('latin1', offset + 4, offset + 6);
    let length: number;
    let headerLength: number;
    if (LONG_LENGTH_VRS.has(vr)) {
      if (offset + 12 > file.length) throw new Error('not a DICOM Part 10 file: truncated file meta information');
      length = file.readUInt32LE(offset + 8);
      headerLength = 12;
    } else {
      length = file.readUInt16LE(offset + 6);
      headerLength = 8;
    }
    const valueStart = offset + headerLength;
    if (valueStart + length > file.length)
      throw new Error('not a DICOM Part 10 file: file meta element overruns the file');
    const value = file.subarray(valueStart, valueStart + length);
    if (element === 0x0000 && length === 4) end = valueStart + 4 + value.readUInt32LE(0);
    if (element === 0x0010) transferSyntaxUid = trimUid(value);
    offset = valueStart + length;
  }
  if (end !== undefined) offset = end;
  if (transferSyntaxUid === undefined) throw new Error('not a DICOM Part 10 file: no (0002,0010) TransferSyntaxUID');
  if (offset > file.length) throw new Error('not a DICOM Part 10 file: (0002,0000) group length exceeds the file');
  return { transferSyntaxUid, dataset: file.subarray(offset) };
}
