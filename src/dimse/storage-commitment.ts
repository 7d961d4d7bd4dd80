import { randomUUID } from 'node:crypto';
import { TransferSyntax } from '../dicom/transfer-syntaxes.js';
import { GatewayError } from '../errors.js';

/**
 * The Storage Commitment Push Model (PS3.4 J): its SOP class and well-known instance, and the data sets of its
 * N-ACTION request and N-EVENT-REPORT (Transaction UID, Referenced SOP Sequence, Failed SOP Sequence with each
 * Failure Reason), encoded and decoded here in Explicit or Implicit VR Little Endian, the two syntaxes we
 * propose and accept for it.
 */
export const STORAGE_COMMITMENT_PUSH_MODEL = '1.2.840.10008.1.20.1';
export const STORAGE_COMMITMENT_INSTANCE = '1.2.840.10008.1.20.1.1';

/** N-ACTION Action Type ID 1: Request Storage Commitment (PS3.4 J.3.2). */
export const REQUEST_STORAGE_COMMITMENT = 1;
/** N-EVENT-REPORT Event Type IDs (PS3.4 J.3.3). */
export const CommitmentEvent = { AllCommitted: 1, FailuresExist: 2 } as const;

/** The syntaxes of the storage commitment context, ours preferred first. */
export const COMMITMENT_TRANSFER_SYNTAXES: readonly string[] = [
  TransferSyntax.ExplicitVRLittleEndian,
  TransferSyntax.ImplicitVRLittleEndian,
];

export interface SopReference {
  sopClassUid: string;
  sopInstanceUid: string;
}

export interface FailedSop extends SopReference {
  /** Failure Reason (0008,1197), PS3.3 C.14.1.1. */
  failureReason: number;
}

/** A storage commitment data set: the request (referenced only) or the result (committed and failed). */
export interface CommitmentDataset {
  transactionUid: string;
  referenced: SopReference[];
  failed: FailedSop[];
}

/** What the Failure Reason codes say (PS3.3 C.14.1.1), for the reason an admin reads. */
export function describeFailureReason(code: number): string {
  const hex = `0x${code.toString(16).toUpperCase().padStart(4, '0')}`;
  const meaning: Record<number, string> = {
    0x0110: 'processing failure',
    0x0112: 'no such object instance',
    0x0213: 'resource limitation',
    0x0122: 'referenced SOP class not supported',
    0x0119: 'class / instance conflict',
    0x0131: 'duplicate transaction UID',
  };
  return `${hex} ${meaning[code] ?? 'failure'}`;
}

/**
 * A fresh Transaction UID for one delivery attempt: 2.25 and a random UUID (PS3.5 B.2). Random rather than derived
 * from the batch: a report that arrives late for an earlier attempt of the same batch must not be taken for this
 * attempt's, which only a UID of its own guarantees; and a report is accepted from whoever can connect to our SCP,
 * so only a UID nobody can guess keeps a stray or forged report from committing a delivery.
 */
export function newTransactionUid(): string {
  return `2.25.${BigInt(`0x${randomUUID().replace(/-/g, '')}`).toString()}`;
}

const Tag = {
  ReferencedSopClassUid: 0x00081150,
  ReferencedSopInstanceUid: 0x00081155,
  FailureReason: 0x00081197,
  FailedSopSequence: 0x00081198,
  ReferencedSopSequence: 0x00081199,
  TransactionUid: 0x00081195,
} as const;

const ITEM = 0xfffee000;
const ITEM_END = 0xfffee00d;
const SEQUENCE_END = 0xfffee0dd;
const UNDEFINED = 0xffffffff;
/** The elements that are sequences, for Implicit VR where the data set does not say. */
const SEQUENCES: ReadonlySet<number> = new Set([Tag.FailedSopSequence, Tag.ReferencedSopSequence]);

function isExplicit(transferSyntaxUid: string): boolean {
  if (transferSyntaxUid === TransferSyntax.ExplicitVRLittleEndian) return true;
  if (transferSyntaxUid === TransferSyntax.ImplicitVRLittleEndian) return false;
  throw new GatewayError(
    'COMMITMENT_SYNTAX_UNSUPPORTED',
    `storage commitment data sets are read and written in Little Endian only, not ${transferSyntaxUid}`,
  );
}

/** Encodes a storage commitment data set (elements in tag order, defined lengths). */
export function encodeCommitmentDataset(dataset: CommitmentDataset, transferSyntaxUid: string): Buffer {
  const explicit = isExplicit(transferSyntaxUid);
  const element = (tag: number, vr: 'UI' | 'US' | 'SQ', value: Buffer): Buffer => {
    const group = tag >>> 16;
    const number = tag & 0xffff;
    if (!explicit) {
      const head = Buffer.alloc(8);
      head.writeUInt16LE(group, 0);
      head.writeUInt16LE(number, 2);
      head.writeUInt32LE(value.length, 4);
      return Buffer.concat([head, value]);
    }
    if (vr === 'SQ') {
      const head = Buffer.alloc(12);
      head.writeUInt16LE(group, 0);
      head.writeUInt16LE(number, 2);
      head.write('SQ', 4, 'latin1');
      head.writeUInt32LE(value.length, 8);
      return Buffer.concat([head, value]);
    }
    const head = Buffer.alloc(8);
    head.writeUInt16LE(group, 0);
    head.writeUInt16LE(number, 2);
    head.write(vr, 4, 'latin1');
    head.writeUInt16LE(value.length, 6);
    return Buffer.concat([head, value]);
  };
  const ui = (value: string): Buffer => {
    const raw = Buffer.from(value, 'latin1');
    return raw.length % 2 === 0 ? raw : Buffer.concat([raw, Buffer.from([0])]);
  };
  const us = (value: number): Buffer => {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(value & 0xffff, 0);
    return b;
  };
  const item = (elements: Buffer[]): Buffer => {
    const body = Buffer.concat(elements);
    const head = Buffer.alloc(8);
    head.writeUInt16LE(0xfffe, 0);
    head.writeUInt16LE(0xe000, 2);
    head.writeUInt32LE(body.length, 4);
    return Buffer.concat([head, body]);
  };
  const reference = (sop: SopReference, extra: Buffer[] = []): Buffer =>
    item([
      element(Tag.ReferencedSopClassUid, 'UI', ui(sop.sopClassUid)),
      element(Tag.ReferencedSopInstanceUid, 'UI', ui(sop.sopInstanceUid)),
      ...extra,
    ]);
  const parts = [element(Tag.TransactionUid, 'UI', ui(dataset.transactionUid))];
  if (dataset.failed.length > 0) {
    const items = dataset.failed.map((f) => reference(f, [element(Tag.FailureReason, 'US', us(f.failureReason))]));
    parts.push(element(Tag.FailedSopSequence, 'SQ', Buffer.concat(items)));
  }
  if (dataset.referenced.length > 0 || dataset.failed.length === 0) {
    parts.push(element(Tag.ReferencedSopSequence, 'SQ', Buffer.concat(dataset.referenced.map((r) => reference(r)))));
  }
  return Buffer.concat(parts);
}

type Value = Buffer | ParsedItem[];
type ParsedItem = Map<number, Value>;

/** VRs whose explicit length is 4 bytes after 2 reserved ones (PS3.5 7.1.2). */
const LONG_VRS: ReadonlySet<string> = new Set([
  'OB',
  'OD',
  'OF',
  'OL',
  'OV',
  'OW',
  'SQ',
  'SV',
  'UC',
  'UN',
  'UR',
  'UT',
  'UV',
]);

/** Reads the elements of a data set (or an item) from `start` to `end`; nested sequences are read as items. */
function readElements(
  bytes: Buffer,
  start: number,
  end: number,
  explicit: boolean,
  depth: number,
): [ParsedItem, number] {
  if (depth > 8) throw new Error('sequences nested more than 8 deep');
  const out: ParsedItem = new Map();
  let offset = start;
  while (offset < end) {
    if (offset + 8 > end) throw new Error(`element header truncated at byte ${offset}`);
    const tag = ((bytes.readUInt16LE(offset) << 16) | bytes.readUInt16LE(offset + 2)) >>> 0;
    if (tag === ITEM_END) return [out, offset + 8];
    let vr: string | undefined;
    let length: number;
    let value: number;
    if (explicit) {
      vr = bytes.toString('latin1', offset + 4, offset + 6);
      if (LONG_VRS.has(vr)) {
        if (offset + 12 > end) throw new Error(`element header truncated at byte ${offset}`);
        length = bytes.readUInt32LE(offset + 8);
        value = offset + 12;
      } else {
        length = bytes.readUInt16LE(offset + 6);
        value = offset + 8;
      }
    } else {
      length = bytes.readUInt32LE(offset + 4);
      value = offset + 8;
    }
    const isSequence = explicit ? vr === 'SQ' : SEQUENCES.has(tag) || length === UNDEFINED;
    if (isSequence) {
      if (length !== UNDEFINED && value + length > end)
        throw new Error(`sequence (${hexTag(tag)}) of ${length} bytes overruns the data set`);
      const [items, next] = readItems(
        bytes,
        value,
        length === UNDEFINED ? end : value + length,
        length === UNDEFINED,
        explicit,
        depth,
      );
      out.set(tag, items);
      offset = next;
      continue;
    }
    if (length === UNDEFINED || value + length > end)
      throw new Error(`element (${hexTag(tag)}) of ${length} bytes overruns the data set`);
    out.set(tag, bytes.subarray(value, value + length));
    offset = value + length;
  }
  return [out, offset];
}

function readItems(
  bytes: Buffer,
  start: number,
  end: number,
  undefinedLength: boolean,
  explicit: boolean,
  depth: number,
): [ParsedItem[], number] {
  const items: ParsedItem[] = [];
  let offset = start;
  while (offset < end) {
    if (offset + 8 > end) throw new Error(`item header truncated at byte ${offset}`);
    const tag = ((bytes.readUInt16LE(offset) << 16) | bytes.readUInt16LE(offset + 2)) >>> 0;
    const length = bytes.readUInt32LE(offset + 4);
    if (tag === SEQUENCE_END) return [items, offset + 8];
    if (tag !== ITEM) throw new Error(`expected an item at byte ${offset}, found (${hexTag(tag)})`);
    const itemEnd = length === UNDEFINED ? end : offset + 8 + length;
    if (itemEnd > end) throw new Error(`item of ${length} bytes overruns its sequence`);
    const [item, next] = readElements(bytes, offset + 8, itemEnd, explicit, depth + 1);
    items.push(item);
    offset = length === UNDEFINED ? next : itemEnd;
  }
  if (undefinedLength) throw new Error('sequence of undefined length without its delimiter');
  return [items, offset];
}

function hexTag(tag: number): string {
  const h = tag.toString(16).toUpperCase().padStart(8, '0');
  return `${h.slice(0, 4)},${h.slice(4)}`;
}

function text(value: Value | undefined): string | undefined {
  if (value === undefined || !Buffer.isBuffer(value)) return undefined;
  const s = value.toString('latin1').replace(/[\0 ]+$/, '');
  return s === '' ? undefined : s;
}

/**
 * Decodes an N-ACTION or N-EVENT-REPORT data set; a string says why it cannot be read (not Little Endian, not
 * well formed, no Transaction UID, an item without its UIDs).
 */
export function decodeCommitmentDataset(bytes: Buffer, transferSyntaxUid: string): CommitmentDataset | string {
  let root: ParsedItem;
  try {
    root = readElements(bytes, 0, bytes.length, isExplicit(transferSyntaxUid), 0)[0];
  } catch (error) {
    return `the storage commitment data set cannot be read: ${error instanceof Error ? error.message : String(error)}`;
  }
  const transactionUid = text(root.get(Tag.TransactionUid));
  if (transactionUid === undefined) return 'the storage commitment data set has no Transaction UID (0008,1195)';
  const references = (tag: number): Array<SopReference & { item: ParsedItem }> | string => {
    const value = root.get(tag);
    if (value === undefined) return [];
    if (Buffer.isBuffer(value)) return `(${hexTag(tag)}) is not a sequence`;
    const out: Array<SopReference & { item: ParsedItem }> = [];
    for (const item of value) {
      const sopClassUid = text(item.get(Tag.ReferencedSopClassUid));
      const sopInstanceUid = text(item.get(Tag.ReferencedSopInstanceUid));
      if (sopClassUid === undefined || sopInstanceUid === undefined)
        return `an item of (${hexTag(tag)}) lacks its Referenced SOP Class or Instance UID`;
      out.push({ sopClassUid, sopInstanceUid, item });
    }
    return out;
  };
  const referenced = references(Tag.ReferencedSopSequence);
  if (typeof referenced === 'string') return referenced;
  const failed = references(Tag.FailedSopSequence);
  if (typeof failed === 'string') return failed;
  return {
    transactionUid,
    referenced: referenced.map(({ sopClassUid, sopInstanceUid }) => ({ sopClassUid, sopInstanceUid })),
    failed: failed.map(({ sopClassUid, sopInstanceUid, item }) => {
      const reason = item.get(Tag.FailureReason);
      // A failed item without its reason is still a failure: 0x0110 (processing failure) says no more than that.
      const failureReason = Buffer.isBuffer(reason) && reason.length >= 2 ? reason.readUInt16LE(0) : 0x0110;
      return { sopClassUid, sopInstanceUid, failureReason };
    }),
  };
}
