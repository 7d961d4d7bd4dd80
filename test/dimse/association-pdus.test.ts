import test from 'ava';
import {
  ContextResult,
  decodeAssociateAc,
  decodeAssociateRq,
  encodeAssociateAc,
  encodeAssociateRq,
  type AssociateRequestOptions,
} from '../../src/dimse/association-pdus.js';

const DX = '1.2.840.10008.5.1.4.1.1.1.1';
const ELE = '1.2.840.10008.1.2.1';
const base: AssociateRequestOptions = {
  calledAe: 'CXR_GATEWAY',
  callingAe: 'MODALITY',
  contexts: [
    { id: 1, abstractSyntax: DX, transferSyntaxes: [ELE, '1.2.840.10008.1.2'] },
    { id: 3, abstractSyntax: '1.2.840.10008.1.1', transferSyntaxes: [ELE] },
  ],
  maxPduLength: 16384,
  implementationClassUid: '1.2.3.4.5',
  implementationVersionName: 'TEST',
};

test('a well-formed request decodes to what was encoded', (t) => {
  const decoded = decodeAssociateRq(encodeAssociateRq(base));
  if (decoded.kind !== 'request') return t.fail(decoded.kind);
  t.like(decoded.request, {
    calledAe: 'CXR_GATEWAY',
    callingAe: 'MODALITY',
    maxPduLength: 16384,
    implementationClassUid: '1.2.3.4.5',
    implementationVersionName: 'TEST',
  });
  t.deepEqual(decoded.request.contexts, [
    { id: 1, abstractSyntax: DX, transferSyntaxes: [ELE, '1.2.840.10008.1.2'] },
    { id: 3, abstractSyntax: '1.2.840.10008.1.1', transferSyntaxes: [ELE] },
  ]);
});

test('a foreign application context and an unsupported protocol version are rejected with their reasons', (t) => {
  const rq = encodeAssociateRq(base);
  rq.writeUInt16BE(0x0002, 6);
  t.like(decodeAssociateRq(rq), { kind: 'reject', rejection: { result: 1, source: 2, reason: 2 } });
  const other = Buffer.from(
    encodeAssociateRq(base).toString('latin1').replace('1.2.840.10008.3.1.1.1', '1.2.840.10008.3.1.1.9'),
    'latin1',
  );
  t.like(decodeAssociateRq(other), { kind: 'reject', rejection: { result: 1, source: 1, reason: 2 } });
});

test('an A-ASSOCIATE-AC cannot be encoded with a context ID outside 1-255: it throws before anything is written', (t) => {
  const ac = {
    calledAe: 'A',
    callingAe: 'B',
    maxPduLength: 0,
    implementationClassUid: '1.2',
    implementationVersionName: 'X',
  };
  t.throws(() => encodeAssociateAc({ ...ac, contexts: [{ id: 256, result: 0, transferSyntax: ELE }] }), {
    instanceOf: RangeError,
  });
  const decoded = decodeAssociateAc(
    encodeAssociateAc({ ...ac, contexts: [{ id: 255, result: ContextResult.Acceptance, transferSyntax: ELE }] }),
  );
  t.deepEqual(typeof decoded === 'string' ? decoded : decoded.contexts, [{ id: 255, result: 0, transferSyntax: ELE }]);
});

/** A small deterministic generator, so that a failure can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

test('5,000 mutated requests: decoding never throws, and whatever it accepts can be answered', (t) => {
  const next = random(14);
  const seedPdu = encodeAssociateRq({
    ...base,
    contexts: Array.from({ length: 6 }, (_, i) => ({ id: i * 2 + 1, abstractSyntax: DX, transferSyntaxes: [ELE] })),
  });
  const kinds = { request: 0, reject: 0, invalid: 0 };
  for (let round = 0; round < 5000; round += 1) {
    const pdu = Buffer.from(seedPdu);
    const mutations = 1 + Math.floor(next() * 6);
    for (let m = 0; m < mutations; m += 1) {
      // Bytes after the 68 fixed ones: item types, lengths, context IDs, UIDs.
      const at = 6 + Math.floor(next() * (pdu.length - 6));
      pdu.writeUInt8(
        next() < 0.3 ? ([0x00, 0x01, 0xfe, 0xff][Math.floor(next() * 4)] ?? 0) : Math.floor(next() * 256),
        at,
      );
    }
    const cut = next() < 0.1 ? pdu.subarray(0, Math.floor(next() * pdu.length)) : pdu;
    const decoded = decodeAssociateRq(cut);
    kinds[decoded.kind] += 1;
    if (decoded.kind !== 'request') continue;
    const ids = decoded.request.contexts.map((c) => c.id);
    t.true(
      ids.every((id) => id % 2 === 1 && id >= 1 && id <= 255) && new Set(ids).size === ids.length,
      `round ${round}: ${ids.join(',')}`,
    );
    t.notThrows(() =>
      encodeAssociateAc({
        calledAe: decoded.request.calledAe,
        callingAe: decoded.request.callingAe,
        contexts: decoded.request.contexts.map((c) => ({
          id: c.id,
          result: 0,
          transferSyntax: c.transferSyntaxes[0] ?? ELE,
        })),
        maxPduLength: 16384,
        implementationClassUid: '1.2',
        implementationVersionName: 'X',
      }),
    );
  }
  t.log(kinds);
  t.true(kinds.request > 0 && kinds.reject > 0 && kinds.invalid > 0);
});
