// The association and P-DATA streams of the PDU fuzzer. Each stream is a kind (what it attacks) played by a seeded
// RNG on a raw connection; it reports what the daemon did (answered, closed, accepted twice, let data through after a
// rejection) so the runner can total the figures. Stream i of a run with seed S uses the RNG seeded with
// streamSeed(S, i), so one stream can be replayed alone (--replay i).

import {
  CommandTag,
  EXPLICIT_VR_LITTLE_ENDIAN,
  IMPLICIT_VR_LITTLE_ENDIAN,
  PduType,
  VERIFICATION_SOP_CLASS_UID,
  datasetBytesOfPart10,
  encodeAbort,
  encodeAssociateRq,
  encodeCEchoRq,
  encodeCStoreRq,
  encodeCommand,
  encodePDataTf,
  encodeReleaseRp,
  encodeReleaseRq,
  fragmentMessage,
  type ProposedContext,
} from '../../test/helpers/raw-scu.js';
import { SOP_CLASS_UID, makeImageFile, newUid } from '../../test/helpers/dicom-factory.js';
import { Rng } from './harness.js';
import { Wire } from './wire.js';

export const ALLOWED_CALLING_AE = 'FUZZER';
export const REJECTED_CALLING_AE = 'INTRUDER';
export const CALLED_AE = 'CXR_GATEWAY';
const DX = SOP_CLASS_UID['dx-presentation'];

export const STREAM_KINDS = [
  'bit-flip',
  'truncate',
  'pdu-length',
  'item-length',
  'context-ids',
  'many-contexts',
  'rj-then-data',
  'double-rq',
  'release-abort-state',
  'garbage-after-abort',
  'pdata-garbage',
  'unknown-dimse',
  'random-bytes',
] as const;
export type StreamKind = (typeof STREAM_KINDS)[number];

/** Relative frequency of each kind in a run: the targeted cases are rarer than the blind mutations but all present. */
const WEIGHTS: Record<StreamKind, number> = {
  'bit-flip': 20,
  truncate: 10,
  'pdu-length': 10,
  'item-length': 10,
  'context-ids': 6,
  'many-contexts': 3,
  'rj-then-data': 6,
  'double-rq': 4,
  'release-abort-state': 12,
  'garbage-after-abort': 5,
  'pdata-garbage': 8,
  'unknown-dimse': 3,
  'random-bytes': 3,
};

export function streamSeed(runSeed: number, index: number): number {
  return (runSeed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
}

export function pickKind(rng: Rng): StreamKind {
  const total = STREAM_KINDS.reduce((s, k) => s + WEIGHTS[k], 0);
  let r = rng.next() * total;
  for (const k of STREAM_KINDS) {
    r -= WEIGHTS[k];
    if (r < 0) return k;
  }
  return 'bit-flip';
}

export interface StreamOutcome {
  kind: StreamKind;
  /** Sub-case, e.g. the state an abort was sent in. */
  variant: string;
  /** Any PDU came back. */
  answered: boolean;
  closedByPeer: boolean;
  /** The daemon should have closed within 2 s (after an abort, a release, a rejection) and did not. */
  leftOpenAfterEnd?: boolean;
  /** A second A-ASSOCIATE-AC on an association already established. */
  secondAccept?: boolean;
  /** C-STORE sent after A-ASSOCIATE-RJ: its SOP Instance UID, and whether a C-STORE-RSP came back. */
  afterRejection?: { sopInstanceUid: string; responded: boolean; rejected: boolean };
  /** An unknown or unsupported DIMSE command: the status that came back (undefined: none). */
  unknownCommandStatus?: number | 'none' | 'abort';
}

const CONTEXTS: ProposedContext[] = [
  { abstractSyntax: VERIFICATION_SOP_CLASS_UID, transferSyntaxes: [IMPLICIT_VR_LITTLE_ENDIAN] },
  { abstractSyntax: DX, transferSyntaxes: [EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN] },
];

function associateRq(
  callingAe = ALLOWED_CALLING_AE,
  contexts: Array<ProposedContext & { id?: number }> = CONTEXTS,
): Buffer {
  return encodeAssociateRq({ callingAe, calledAe: CALLED_AE, contexts, maxPduLength: 16384 });
}

function echoPdus(contextId = 1, messageId = 1): Buffer {
  return Buffer.concat(fragmentMessage(contextId, true, encodeCEchoRq(messageId), 16000));
}

/** A small DX instance (Explicit VR Little Endian dataset bytes) with a fresh SOP Instance UID. */
function smallInstance(rng: Rng): { sopInstanceUid: string; dataset: Buffer } {
  const file = makeImageFile({ rows: 16, columns: 16, seed: rng.int(1_000_000), studyInstanceUid: newUid() });
  const { dataset } = datasetBytesOfPart10(file.bytes);
  return { sopInstanceUid: file.sopInstanceUid, dataset };
}

function storePdus(contextId: number, instance: { sopInstanceUid: string; dataset: Buffer }, messageId = 1): Buffer {
  const command = encodeCStoreRq({ sopClassUid: DX, sopInstanceUid: instance.sopInstanceUid, messageId });
  return Buffer.concat([
    ...fragmentMessage(contextId, true, command, 16000),
    ...fragmentMessage(contextId, false, instance.dataset, 8000),
  ]);
}

/** A complete, valid conversation: associate, echo or store, release. */
function validStream(rng: Rng): Buffer[] {
  const body = rng.chance(0.5) ? echoPdus(1) : storePdus(3, smallInstance(rng));
  return [associateRq(), body, encodeReleaseRq()];
}

function randomBytes(rng: Rng, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i += 1) b[i] = rng.int(256);
  return b;
}

const HUGE_LENGTHS = [0, 1, 0xffffffff, 0x7fffffff, 0x10000000, 0x00ffffff];

function offLength(rng: Rng, length: number, max: number): number {
  const choice = rng.int(4);
  if (choice === 0) return Math.max(0, length - 1);
  if (choice === 1) return Math.min(max, length + 1);
  if (choice === 2) return max === 0xffff ? rng.pick([0, 1, 0xffff, 0xfffe]) : rng.pick(HUGE_LENGTHS);
  return rng.int(max + 1);
}

/** Offsets of the 2-byte length of every item and sub-item of an A-ASSOCIATE-RQ PDU. */
function itemLengthOffsets(rq: Buffer): number[] {
  const out: number[] = [];
  const walk = (start: number, end: number, nested: boolean): void => {
    let offset = start;
    while (offset + 4 <= end) {
      const type = rq.readUInt8(offset);
      const length = rq.readUInt16BE(offset + 2);
      out.push(offset + 2);
      if (nested && (type === 0x20 || type === 0x50))
        walk(offset + 4 + (type === 0x20 ? 4 : 0), Math.min(end, offset + 4 + length), false);
      offset += 4 + length;
    }
  };
  walk(6 + 68, rq.length, true);
  return out;
}

/** Sends the chunks (one write each, or all at once), waits for the daemon to go quiet, and reports. */
async function sendAndSettle(wire: Wire, chunks: Buffer[], rng: Rng): Promise<void> {
  if (rng.chance(0.5)) wire.write(Buffer.concat(chunks));
  else for (const c of chunks) wire.write(c);
  await wire.quiet(150, 1500);
}

async function established(wire: Wire, callingAe = ALLOWED_CALLING_AE): Promise<boolean> {
  wire.write(associateRq(callingAe));
  const answer = await wire.pdu(3000);
  return answer?.type === PduType.AssociateAc;
}

/** Fuzz streams come from 127.0.0.2: a per-source limit must not count them against the legitimate sender. */
export const FUZZ_SOURCE_ADDRESS = '127.0.0.2';

export async function playStream(port: number, kind: StreamKind, rng: Rng): Promise<StreamOutcome> {
  const wire = await Wire.connect(port, 5000, FUZZ_SOURCE_ADDRESS);
  const outcome: StreamOutcome = { kind, variant: '', answered: false, closedByPeer: false };
  try {
    await PLAYERS[kind](wire, rng, outcome);
  } finally {
    outcome.answered = wire.pdus.length > 0;
    outcome.closedByPeer = wire.closedByPeer;
    wire.destroy();
  }
  return outcome;
}

type Player = (wire: Wire, rng: Rng, out: StreamOutcome) => Promise<void>;

const PLAYERS: Record<StreamKind, Player> = {
  async 'bit-flip'(wire, rng, out) {
    const bytes = Buffer.concat(validStream(rng));
    const flips = 1 + rng.int(8);
    for (let i = 0; i < flips; i += 1) {
      const at = rng.int(rng.chance(0.6) ? Math.min(bytes.length, 400) : bytes.length);
      bytes[at] = (bytes[at] ?? 0) ^ (1 << rng.int(8));
    }
    out.variant = `${flips} bits`;
    await sendAndSettle(wire, [bytes], rng);
  },

  async truncate(wire, rng, out) {
    const bytes = Buffer.concat(validStream(rng));
    const at = rng.int(bytes.length);
    out.variant = at < 6 ? 'inside a PDU header' : 'mid-stream';
    await sendAndSettle(wire, [bytes.subarray(0, at)], rng);
  },

  async 'pdu-length'(wire, rng, out) {
    const pdus = validStream(rng).flatMap((chunk) => splitPdus(chunk));
    const i = rng.int(pdus.length);
    const pdu = Buffer.from(pdus[i] ?? Buffer.alloc(6));
    const length = offLength(rng, pdu.readUInt32BE(2), 0xffffffff);
    pdu.writeUInt32BE(length >>> 0, 2);
    pdus[i] = pdu;
    out.variant = `PDU ${i} type ${pdu[0]} length ${length}`;
    await sendAndSettle(wire, pdus, rng);
  },

  async 'item-length'(wire, rng, out) {
    const rq = associateRq();
    const offsets = itemLengthOffsets(rq);
    const at = rng.pick(offsets);
    const length = offLength(rng, rq.readUInt16BE(at), 0xffff);
    rq.writeUInt16BE(length, at);
    out.variant = `item at ${at} length ${length}`;
    await sendAndSettle(wire, [rq, echoPdus(1), encodeReleaseRq()], rng);
  },

  async 'context-ids'(wire, rng, out) {
    // Repeated, even, zero and near-255 presentation context IDs (issue 14 item 1: dcmjs-dimse numbers one 256).
    const schemes: Array<[string, () => number[]]> = [
      ['duplicate 255', () => Array.from({ length: 2 + rng.int(6) }, () => 255)],
      ['253, 255, 255', () => [253, 255, 255]],
      [
        'duplicate random odd',
        () => {
          const id = 1 + 2 * rng.int(128);
          return Array.from({ length: 2 + rng.int(4) }, () => id);
        },
      ],
      ['even or zero', () => Array.from({ length: 1 + rng.int(4) }, () => 2 * rng.int(128))],
      ['random bytes', () => Array.from({ length: 1 + rng.int(8) }, () => rng.int(256))],
    ];
    const [name, ids] = rng.pick(schemes);
    const list = ids();
    out.variant = name;
    const contexts = list.map((id, k) => ({ ...(CONTEXTS[k % 2] as ProposedContext), id }));
    wire.write(associateRq(ALLOWED_CALLING_AE, contexts));
    const answer = await wire.pdu(3000);
    if (answer?.type === PduType.AssociateAc) {
      wire.write(echoPdus(list.find((id) => id % 2 === 1) ?? 1));
      await wire.quiet(150, 1500);
      wire.write(encodeReleaseRq());
      await wire.quiet(150, 1000);
    }
  },

  async 'many-contexts'(wire, rng, out) {
    // More than 128 contexts: the odd IDs 1..255 run out and wrap (257 & 0xff = 1), or all take 255.
    const count = 129 + rng.int(128);
    const wrap = rng.chance(0.7);
    out.variant = `${count} contexts, ${wrap ? 'IDs wrapping' : 'IDs all 255'}`;
    const contexts = Array.from({ length: count }, (_, k) => ({
      ...(CONTEXTS[k % 2] as ProposedContext),
      id: wrap ? (2 * k + 1) & 0xff : 255,
    }));
    wire.write(associateRq(ALLOWED_CALLING_AE, contexts));
    const answer = await wire.pdu(3000);
    if (answer?.type === PduType.AssociateAc) {
      wire.write(echoPdus(1));
      await wire.quiet(150, 1500);
      wire.write(encodeReleaseRq());
      await wire.quiet(150, 1000);
    }
  },

  async 'rj-then-data'(wire, rng, out) {
    // A caller not on the allow-list is rejected; whatever it sends next must not be read (issue 14 item 2).
    wire.write(associateRq(REJECTED_CALLING_AE));
    const answer = await wire.pdu(3000);
    const rejected = answer?.type === PduType.AssociateRj;
    out.variant = rejected ? 'rejected' : `answered ${answer?.type ?? 'nothing'}`;
    const instance = smallInstance(rng);
    const seen = wire.pdus.length;
    wire.write(storePdus(3, instance));
    const rsp = await wire.pdu(1500, PduType.PDataTf, seen);
    out.afterRejection = { sopInstanceUid: instance.sopInstanceUid, responded: rsp !== undefined, rejected };
    out.leftOpenAfterEnd = rejected && !(await wire.closeWithin(2000));
  },

  async 'double-rq'(wire, _rng, out) {
    if (!(await established(wire))) {
      out.variant = 'first request not accepted';
      return;
    }
    const seen = wire.pdus.length;
    wire.write(associateRq());
    const second = await wire.pdu(1500, undefined, seen);
    out.variant = second ? `second answered with type ${second.type}` : 'second unanswered';
    out.secondAccept = second?.type === PduType.AssociateAc;
    wire.write(encodeAbort());
    await wire.closeWithin(2000);
  },

  async 'release-abort-state'(wire, rng, out) {
    // Release and abort in every state of PS3.8 that a requestor can put the acceptor in.
    const ending = rng.pick(['abort', 'release-rq', 'release-rp'] as const);
    const endPdu =
      ending === 'abort'
        ? encodeAbort(rng.pick([0, 2]), rng.int(7))
        : ending === 'release-rq'
          ? encodeReleaseRq()
          : encodeReleaseRp();
    const state = rng.pick([
      'idle',
      'with-request',
      'established',
      'mid-command',
      'mid-dataset',
      'after-release-rq',
    ] as const);
    out.variant = `${ending} ${state}`;
    if (state === 'idle') {
      wire.write(endPdu);
    } else if (state === 'with-request') {
      wire.write(Buffer.concat([associateRq(), endPdu]));
    } else {
      if (!(await established(wire))) {
        out.variant += ' (not accepted)';
        return;
      }
      if (state === 'mid-command') {
        const command = encodeCEchoRq(1);
        wire.write(encodePDataTf([{ contextId: 1, isCommand: true, isLast: false, data: command.subarray(0, 10) }]));
      } else if (state === 'mid-dataset') {
        const instance = smallInstance(rng);
        const pdus = splitPdus(storePdus(3, instance));
        wire.write(Buffer.concat(pdus.slice(0, 2)));
      } else if (state === 'after-release-rq') {
        wire.write(encodeReleaseRq());
        await wire.pdu(1000, PduType.ReleaseRp);
      }
      wire.write(endPdu);
    }
    // Must end within 2 s: an abort in any state, a release request once established (the RP then the close).
    const mustClose = ending === 'abort' || (ending === 'release-rq' && state !== 'idle' && state !== 'with-request');
    const closed = await wire.closeWithin(2000);
    if (mustClose) out.leftOpenAfterEnd = !closed;
  },

  async 'garbage-after-abort'(wire, rng, out) {
    const accepted = await established(wire);
    out.variant = accepted ? 'after an association' : 'before an association';
    wire.write(Buffer.concat([encodeAbort(), randomBytes(rng, 1 + rng.int(2000))]));
    out.leftOpenAfterEnd = !(await wire.closeWithin(2000));
  },

  async 'pdata-garbage'(wire, rng, out) {
    if (!(await established(wire))) {
      out.variant = 'not accepted';
      return;
    }
    const pdvs = Array.from({ length: 1 + rng.int(4) }, () => ({
      contextId: rng.pick([1, 3, 5, 0, 255, rng.int(256)]),
      isCommand: rng.chance(0.5),
      isLast: rng.chance(0.5),
      data: randomBytes(rng, rng.pick([0, 1, 7, 8, 64, rng.int(3000)])),
    }));
    let pdu = encodePDataTf(pdvs);
    if (rng.chance(0.3)) {
      // A PDV item length that overruns (or underruns) the PDU.
      pdu = Buffer.from(pdu);
      pdu.writeUInt32BE(offLength(rng, pdu.readUInt32BE(6), 0xffffffff) >>> 0, 6);
    }
    out.variant = `${pdvs.length} PDVs`;
    await sendAndSettle(wire, [pdu, encodeReleaseRq()], rng);
  },

  async 'unknown-dimse'(wire, rng, out) {
    // Unknown command fields and services we do not offer: C-FIND, C-GET, C-MOVE, N-ACTION, C-CANCEL (0x0FFF: no response).
    if (!(await established(wire))) {
      out.variant = 'not accepted';
      return;
    }
    const field = rng.pick([0x0020, 0x0010, 0x0021, 0x0130, 0x0fff, 0x7777]);
    out.variant = `command 0x${field.toString(16)}`;
    const command = encodeCommand([
      { element: CommandTag.AffectedSopClassUid, vr: 'UI', value: VERIFICATION_SOP_CLASS_UID },
      { element: CommandTag.CommandField, vr: 'US', value: field },
      { element: CommandTag.MessageId, vr: 'US', value: 7 },
      { element: CommandTag.CommandDataSetType, vr: 'US', value: 0x0101 },
    ]);
    const seen = wire.pdus.length;
    wire.write(Buffer.concat(fragmentMessage(1, true, command, 16000)));
    const rsp = await wire.pdu(1500, undefined, seen);
    out.unknownCommandStatus =
      rsp?.type === PduType.PDataTf ? statusOf(rsp.body) : rsp?.type === PduType.Abort ? 'abort' : 'none';
    wire.write(encodeReleaseRq());
    await wire.quiet(150, 1000);
  },

  async 'random-bytes'(wire, rng, out) {
    const bytes = randomBytes(rng, 1 + rng.int(4096));
    if (rng.chance(0.5)) bytes[0] = 1 + rng.int(7);
    if (rng.chance(0.3)) bytes[0] = 8 + rng.int(248);
    out.variant = `first byte ${bytes[0]}`;
    await sendAndSettle(wire, [bytes], rng);
  },
};

/** Splits a byte string of whole PDUs into them (used on our own well-formed output only). */
function splitPdus(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let offset = 0;
  while (offset + 6 <= bytes.length) {
    const end = offset + 6 + bytes.readUInt32BE(offset + 2);
    out.push(bytes.subarray(offset, end));
    offset = end;
  }
  return out;
}

/** The (0000,0900) Status of the command PDV in a P-DATA-TF body, if it carries one. */
function statusOf(body: Buffer): number | 'none' {
  if (body.length < 6) return 'none';
  const data = body.subarray(6, 4 + body.readUInt32BE(0));
  let offset = 0;
  while (offset + 8 <= data.length) {
    const element = data.readUInt16LE(offset + 2);
    const length = data.readUInt32LE(offset + 4);
    if (element === CommandTag.Status && length === 2) return data.readUInt16LE(offset + 8);
    offset += 8 + length;
  }
  return 'none';
}
