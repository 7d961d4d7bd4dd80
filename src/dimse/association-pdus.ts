/**
 * The association PDUs of the DICOM upper layer (PS3.8 9.3.2-9.3.8): A-ASSOCIATE-RQ/AC/RJ, A-RELEASE-RQ/RP and
 * A-ABORT, decoded and encoded by us. Decoding validates what an attacker controls before anything is written
 * back: item lengths, presentation context IDs (odd, 1-255, unique) and how many contexts there are. dcmjs-dimse
 * numbered a repeated ID 255 as 256 and threw while writing the A-ASSOCIATE-AC, which took the daemon down.
 */

export const PduType = {
  AssociateRq: 0x01,
  AssociateAc: 0x02,
  AssociateRj: 0x03,
  PDataTf: 0x04,
  ReleaseRq: 0x05,
  ReleaseRp: 0x06,
  Abort: 0x07,
} as const;

export const APPLICATION_CONTEXT_NAME = '1.2.840.10008.3.1.1.1';
/** Presentation context IDs are odd numbers 1-255 (PS3.8 9.3.2.2), so no more than 128 can be unique. */
export const MAX_PRESENTATION_CONTEXTS = 128;

/** PS3.8 Table 9-18: the result of one presentation context. */
export const ContextResult = {
  Acceptance: 0,
  UserRejection: 1,
  ProviderRejection: 2,
  AbstractSyntaxNotSupported: 3,
  TransferSyntaxesNotSupported: 4,
} as const;

/** A-ABORT source (PS3.8 Table 9-26): 0 service user, 2 service provider. */
export const AbortSource = { ServiceUser: 0, ServiceProvider: 2 } as const;
/** A-ABORT reasons when the source is the service provider. */
export const AbortReason = {
  NotSpecified: 0,
  UnrecognizedPdu: 1,
  UnexpectedPdu: 2,
  UnrecognizedPduParameter: 4,
  UnexpectedPduParameter: 5,
  InvalidPduParameterValue: 6,
} as const;

export interface ProposedContext {
  id: number;
  /** Undefined when the item carried no abstract syntax sub-item (the context is then refused). */
  abstractSyntax: string | undefined;
  transferSyntaxes: string[];
}

export interface AssociateRequest {
  protocolVersion: number;
  calledAe: string;
  callingAe: string;
  applicationContext: string;
  contexts: ProposedContext[];
  /** The requestor's maximum PDU length (0x51); 0 means no limit. */
  maxPduLength: number;
  implementationClassUid: string | undefined;
  implementationVersionName: string | undefined;
  /** SCP/SCU Role Selection sub-items (0x54, PS3.7 D.3.3.4), by SOP class: the roles the requestor proposes for itself. */
  roleSelections: RoleSelection[];
}

/** One SCP/SCU Role Selection: whether the association requestor may act as SCU and as SCP of a SOP class. */
export interface RoleSelection {
  sopClassUid: string;
  scuRole: boolean;
  scpRole: boolean;
}

/** Why a request is refused at the upper layer, with the A-ASSOCIATE-RJ fields (PS3.8 9.3.4). */
export interface UpperLayerRejection {
  result: 1 | 2;
  source: 1 | 2 | 3;
  reason: number;
  explanation: string;
}

export type AssociateRqDecoding =
  | { kind: 'request'; request: AssociateRequest }
  /** Well-formed PDU whose content we refuse: answer A-ASSOCIATE-RJ. */
  | { kind: 'reject'; rejection: UpperLayerRejection; callingAe: string; calledAe: string }
  /** Not a well-formed A-ASSOCIATE-RQ at all: answer A-ABORT. */
  | { kind: 'invalid'; reason: string };

interface Item {
  type: number;
  value: Buffer;
}

/** Splits a run of items (1-byte type, 1 reserved, 2-byte length). Returns a string when the run is malformed. */
function items(buf: Buffer, start: number, end: number): Item[] | string {
  const out: Item[] = [];
  let offset = start;
  while (offset < end) {
    if (offset + 4 > end) return `item header truncated at byte ${offset}`;
    const type = buf.readUInt8(offset);
    const length = buf.readUInt16BE(offset + 2);
    if (offset + 4 + length > end) return `item 0x${type.toString(16)} of ${length} bytes overruns its PDU`;
    out.push({ type, value: buf.subarray(offset + 4, offset + 4 + length) });
    offset += 4 + length;
  }
  return out;
}

/** UIDs and AE titles are padded with NUL or spaces. */
function text(value: Buffer): string {
  return value
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .replace(/^ +/, '');
}

/** Decodes a whole A-ASSOCIATE-RQ PDU (header included) and judges it. */
export function decodeAssociateRq(pdu: Buffer): AssociateRqDecoding {
  if (pdu.length < 6 + 68)
    return { kind: 'invalid', reason: `A-ASSOCIATE-RQ of ${pdu.length} bytes is shorter than its fixed fields` };
  const body = pdu.subarray(6);
  const protocolVersion = body.readUInt16BE(0);
  const calledAe = text(body.subarray(4, 20));
  const callingAe = text(body.subarray(20, 36));
  const parsed = items(body, 68, body.length);
  if (typeof parsed === 'string') return { kind: 'invalid', reason: `A-ASSOCIATE-RQ: ${parsed}` };
  const reject = (rejection: UpperLayerRejection): AssociateRqDecoding => ({
    kind: 'reject',
    rejection,
    callingAe,
    calledAe,
  });
  if ((protocolVersion & 0x0001) === 0) {
    return reject({
      result: 1,
      source: 2,
      reason: 2,
      explanation: `protocol version 0x${protocolVersion.toString(16)} is not supported`,
    });
  }
  let applicationContext: string | undefined;
  const contexts: ProposedContext[] = [];
  let userInfo: Buffer | undefined;
  let contextItems = 0;
  for (const item of parsed) {
    if (item.type === 0x10) {
      if (applicationContext !== undefined)
        return { kind: 'invalid', reason: 'A-ASSOCIATE-RQ carries two application context items' };
      applicationContext = text(item.value);
    } else if (item.type === 0x20) {
      contextItems += 1;
      if (contextItems > MAX_PRESENTATION_CONTEXTS) continue; // judged below, without decoding the rest
      if (item.value.length < 4) return { kind: 'invalid', reason: 'presentation context item shorter than 4 bytes' };
      const subs = items(item.value, 4, item.value.length);
      if (typeof subs === 'string') return { kind: 'invalid', reason: `presentation context: ${subs}` };
      let abstractSyntax: string | undefined;
      const transferSyntaxes: string[] = [];
      for (const sub of subs) {
        if (sub.type === 0x30) abstractSyntax = abstractSyntax ?? text(sub.value);
        else if (sub.type === 0x40) transferSyntaxes.push(text(sub.value));
      }
      contexts.push({ id: item.value.readUInt8(0), abstractSyntax, transferSyntaxes });
    } else if (item.type === 0x50) {
      if (userInfo !== undefined)
        return { kind: 'invalid', reason: 'A-ASSOCIATE-RQ carries two user information items' };
      userInfo = item.value;
    }
    // Other item types are reserved and ignored (PS3.8 9.3.1: "shall not be tested").
  }
  if (contextItems > MAX_PRESENTATION_CONTEXTS) {
    return reject({
      result: 1,
      source: 2,
      reason: 1,
      explanation: `${contextItems} presentation contexts proposed; at most ${MAX_PRESENTATION_CONTEXTS} are possible (PS3.8 9.3.2.2)`,
    });
  }
  if (contexts.length === 0) {
    return reject({ result: 1, source: 2, reason: 1, explanation: 'no presentation context proposed' });
  }
  const seen = new Set<number>();
  for (const context of contexts) {
    if (context.id % 2 === 0 || context.id < 1 || context.id > 255) {
      return reject({
        result: 1,
        source: 2,
        reason: 1,
        explanation: `presentation context ID ${context.id} is not an odd number from 1 to 255`,
      });
    }
    if (seen.has(context.id)) {
      return reject({
        result: 1,
        source: 2,
        reason: 1,
        explanation: `presentation context ID ${context.id} is proposed twice`,
      });
    }
    seen.add(context.id);
  }
  if (applicationContext === undefined)
    return { kind: 'invalid', reason: 'A-ASSOCIATE-RQ has no application context item' };
  if (applicationContext !== APPLICATION_CONTEXT_NAME) {
    return reject({
      result: 1,
      source: 1,
      reason: 2,
      explanation: `application context '${applicationContext}' is not the DICOM one`,
    });
  }
  let maxPduLength = 0;
  let implementationClassUid: string | undefined;
  let implementationVersionName: string | undefined;
  const roleSelections: RoleSelection[] = [];
  if (userInfo !== undefined) {
    const subs = items(userInfo, 0, userInfo.length);
    if (typeof subs === 'string') return { kind: 'invalid', reason: `user information: ${subs}` };
    for (const sub of subs) {
      if (sub.type === 0x51 && sub.value.length === 4) maxPduLength = sub.value.readUInt32BE(0);
      else if (sub.type === 0x52) implementationClassUid = text(sub.value);
      else if (sub.type === 0x55) implementationVersionName = text(sub.value);
      else if (sub.type === 0x54) {
        const selection = decodeRoleSelection(sub.value);
        if (selection === undefined) return { kind: 'invalid', reason: 'a malformed SCP/SCU role selection item' };
        roleSelections.push(selection);
      }
    }
  }
  return {
    kind: 'request',
    request: {
      protocolVersion,
      calledAe,
      callingAe,
      applicationContext,
      contexts,
      maxPduLength,
      implementationClassUid,
      implementationVersionName,
      roleSelections,
    },
  };
}

/** The value of a 0x54 sub-item: UID length (2), UID, SCU role (1), SCP role (1). */
function decodeRoleSelection(value: Buffer): RoleSelection | undefined {
  if (value.length < 2) return undefined;
  const length = value.readUInt16BE(0);
  if (value.length !== 2 + length + 2) return undefined;
  return {
    sopClassUid: text(value.subarray(2, 2 + length)),
    scuRole: value.readUInt8(2 + length) === 1,
    scpRole: value.readUInt8(3 + length) === 1,
  };
}

function encodeRoleSelection(selection: RoleSelection): Buffer {
  const sopClass = uid(selection.sopClassUid);
  const length = Buffer.alloc(2);
  length.writeUInt16BE(sopClass.length, 0);
  return item(
    0x54,
    Buffer.concat([length, sopClass, Buffer.from([selection.scuRole ? 1 : 0, selection.scpRole ? 1 : 0])]),
  );
}

export interface AcceptedContext {
  id: number;
  result: number;
  /** The accepted transfer syntax; for a refused context, not significant (PS3.8 9.3.3.2). */
  transferSyntax: string;
}

export interface AssociateAcceptOptions {
  calledAe: string;
  callingAe: string;
  contexts: readonly AcceptedContext[];
  maxPduLength: number;
  implementationClassUid: string;
  implementationVersionName: string;
  /** Our answers to the requestor's SCP/SCU role selections (only for SOP classes it proposed one for). */
  roleSelections?: readonly RoleSelection[];
}

export interface AssociateRequestOptions {
  calledAe: string;
  callingAe: string;
  contexts: ReadonlyArray<{ id: number; abstractSyntax: string; transferSyntaxes: readonly string[] }>;
  maxPduLength: number;
  implementationClassUid: string;
  implementationVersionName: string;
  /** The roles we propose for ourselves, per SOP class (a test's stand-in PACS reporting as SCP uses it). */
  roleSelections?: readonly RoleSelection[];
}

function item(type: number, value: Buffer): Buffer {
  if (value.length > 0xffff)
    throw new RangeError(`item 0x${type.toString(16)} of ${value.length} bytes does not fit its 16-bit length`);
  const head = Buffer.alloc(4);
  head.writeUInt8(type, 0);
  head.writeUInt16BE(value.length, 2);
  return Buffer.concat([head, value]);
}

function pdu(type: number, body: Buffer): Buffer {
  const head = Buffer.alloc(6);
  head.writeUInt8(type, 0);
  head.writeUInt32BE(body.length, 2);
  return Buffer.concat([head, body]);
}

function aeField(title: string): Buffer {
  return Buffer.from(title.slice(0, 16).padEnd(16, ' '), 'latin1');
}

function uid(value: string): Buffer {
  return Buffer.from(value, 'latin1');
}

function fixedFields(calledAe: string, callingAe: string): Buffer {
  const fixed = Buffer.alloc(68);
  fixed.writeUInt16BE(0x0001, 0);
  aeField(calledAe).copy(fixed, 4);
  aeField(callingAe).copy(fixed, 20);
  return fixed;
}

function userInformation(
  maxPduLength: number,
  implementationClassUid: string,
  implementationVersionName: string,
  roleSelections: readonly RoleSelection[] = [],
): Buffer {
  const max = Buffer.alloc(4);
  max.writeUInt32BE(maxPduLength, 0);
  // PS3.8 D.1: 0x51, then 0x52, then the role selections (0x54), then 0x55.
  return item(
    0x50,
    Buffer.concat([
      item(0x51, max),
      item(0x52, uid(implementationClassUid)),
      ...roleSelections.map(encodeRoleSelection),
      item(0x55, uid(implementationVersionName.slice(0, 16))),
    ]),
  );
}

/** Encodes an A-ASSOCIATE-AC. Throws RangeError for a context ID out of 1-255 (never written half-way). */
export function encodeAssociateAc(options: AssociateAcceptOptions): Buffer {
  const parts = [fixedFields(options.calledAe, options.callingAe), item(0x10, uid(APPLICATION_CONTEXT_NAME))];
  for (const context of options.contexts) {
    if (!Number.isInteger(context.id) || context.id < 1 || context.id > 255)
      throw new RangeError(`presentation context ID ${context.id} out of range`);
    const head = Buffer.from([context.id, 0, context.result, 0]);
    parts.push(item(0x21, Buffer.concat([head, item(0x40, uid(context.transferSyntax))])));
  }
  parts.push(
    userInformation(
      options.maxPduLength,
      options.implementationClassUid,
      options.implementationVersionName,
      options.roleSelections,
    ),
  );
  return pdu(PduType.AssociateAc, Buffer.concat(parts));
}

export function encodeAssociateRq(options: AssociateRequestOptions): Buffer {
  const parts = [fixedFields(options.calledAe, options.callingAe), item(0x10, uid(APPLICATION_CONTEXT_NAME))];
  for (const context of options.contexts) {
    if (!Number.isInteger(context.id) || context.id < 1 || context.id > 255 || context.id % 2 === 0) {
      throw new RangeError(`presentation context ID ${context.id} is not odd 1-255`);
    }
    const subs = [
      item(0x30, uid(context.abstractSyntax)),
      ...context.transferSyntaxes.map((ts) => item(0x40, uid(ts))),
    ];
    parts.push(item(0x20, Buffer.concat([Buffer.from([context.id, 0, 0, 0]), ...subs])));
  }
  parts.push(
    userInformation(
      options.maxPduLength,
      options.implementationClassUid,
      options.implementationVersionName,
      options.roleSelections,
    ),
  );
  return pdu(PduType.AssociateRq, Buffer.concat(parts));
}

export function encodeAssociateRj(result: number, source: number, reason: number): Buffer {
  return pdu(PduType.AssociateRj, Buffer.from([0, result, source, reason]));
}

export function encodeReleaseRq(): Buffer {
  return pdu(PduType.ReleaseRq, Buffer.alloc(4));
}

export function encodeReleaseRp(): Buffer {
  return pdu(PduType.ReleaseRp, Buffer.alloc(4));
}

export function encodeAbort(source: number, reason: number): Buffer {
  return pdu(PduType.Abort, Buffer.from([0, 0, source, reason]));
}

/** A-ABORT and A-ASSOCIATE-RJ: the source/reason bytes (PS3.8 9.3.4, 9.3.8), or undefined when too short. */
export function decodeAbort(pdu: Buffer): { source: number; reason: number } | undefined {
  if (pdu.length < 10) return undefined;
  return { source: pdu.readUInt8(8), reason: pdu.readUInt8(9) };
}

export function decodeAssociateRj(pdu: Buffer): { result: number; source: number; reason: number } | undefined {
  if (pdu.length < 10) return undefined;
  return { result: pdu.readUInt8(7), source: pdu.readUInt8(8), reason: pdu.readUInt8(9) };
}

export interface AssociateAccept {
  contexts: Array<{ id: number; result: number; transferSyntax: string | undefined }>;
  maxPduLength: number;
  /** The acceptor's answers to our role selections. */
  roleSelections: RoleSelection[];
}

/** Decodes an A-ASSOCIATE-AC (for our SCU). Returns a string when it is malformed. */
export function decodeAssociateAc(pdu: Buffer): AssociateAccept | string {
  if (pdu.length < 6 + 68) return 'A-ASSOCIATE-AC shorter than its fixed fields';
  const body = pdu.subarray(6);
  const parsed = items(body, 68, body.length);
  if (typeof parsed === 'string') return `A-ASSOCIATE-AC: ${parsed}`;
  const accept: AssociateAccept = { contexts: [], maxPduLength: 0, roleSelections: [] };
  for (const entry of parsed) {
    if (entry.type === 0x21) {
      if (entry.value.length < 4) return 'A-ASSOCIATE-AC: presentation context item shorter than 4 bytes';
      const subs = items(entry.value, 4, entry.value.length);
      if (typeof subs === 'string') return `A-ASSOCIATE-AC: ${subs}`;
      const ts = subs.find((s) => s.type === 0x40);
      accept.contexts.push({
        id: entry.value.readUInt8(0),
        result: entry.value.readUInt8(2),
        transferSyntax: ts === undefined ? undefined : text(ts.value),
      });
    } else if (entry.type === 0x50) {
      const subs = items(entry.value, 0, entry.value.length);
      if (typeof subs === 'string') return `A-ASSOCIATE-AC: ${subs}`;
      for (const sub of subs) {
        if (sub.type === 0x51 && sub.value.length === 4) accept.maxPduLength = sub.value.readUInt32BE(0);
        if (sub.type === 0x54) {
          const selection = decodeRoleSelection(sub.value);
          if (selection !== undefined) accept.roleSelections.push(selection);
        }
      }
    }
  }
  return accept;
}
