import test from 'ava';
import { PduGuard } from '../../src/dimse/pdu-guard.js';
import { PduStreamParser, type PduStreamHandler, type PdvHeader } from '../../src/dimse/pdu-stream.js';
import { PduType, encodePDataTf, encodePdu, encodeReleaseRq, type Pdv } from '../helpers/raw-scu.js';

/** What the parser reported, with each PDV's value slices joined, so that any chunking compares equal. */
type Event =
  | { kind: 'control'; pdu: string }
  | { kind: 'data-start'; length: number }
  | { kind: 'pdv'; contextId: number; isCommand: boolean; isLast: boolean; value: string }
  | { kind: 'data-end' };

class Recorder implements PduStreamHandler {
  readonly events: Event[] = [];
  slices = 0;
  private header: PdvHeader | undefined;
  private value: Buffer[] = [];
  constructor(private readonly onValue?: (slice: Buffer) => void) {}
  controlPdu(pdu: Buffer): void {
    this.events.push({ kind: 'control', pdu: pdu.toString('hex') });
  }
  dataPduStart(length: number): void {
    this.events.push({ kind: 'data-start', length });
  }
  pdvStart(header: PdvHeader): void {
    this.header = header;
    this.value = [];
  }
  pdvValue(slice: Buffer): void {
    if (slice.length === 0) throw new Error('empty slice');
    this.slices += 1;
    this.value.push(slice);
    this.onValue?.(slice);
  }
  pdvEnd(header: PdvHeader): void {
    if (header !== this.header) throw new Error('pdvEnd for another PDV');
    const value = Buffer.concat(this.value);
    if (value.length !== header.valueLength)
      throw new Error(`value of ${value.length} bytes, header said ${header.valueLength}`);
    this.events.push({
      kind: 'pdv',
      contextId: header.contextId,
      isCommand: header.isCommand,
      isLast: header.isLast,
      value: value.toString('hex'),
    });
  }
  dataPduEnd(): void {
    this.events.push({ kind: 'data-end' });
  }
}

const ASSOCIATE_RQ = encodePdu(PduType.AssociateRq, Buffer.alloc(68, 0x41));

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i += 1) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

function parser(recorder: Recorder, maxPdu = 16384): PduStreamParser {
  const guard = new PduGuard(maxPdu);
  return new PduStreamParser(recorder, (type, length) => guard.checkHeader(type, length));
}

/** Feeds `stream` in chunks of `size` bytes; returns the events, or throws on a reported problem. */
function parseInChunks(stream: Buffer, size: number): Recorder {
  const recorder = new Recorder();
  const p = parser(recorder);
  for (let i = 0; i < stream.length; i += size) {
    const problem = p.push(stream.subarray(i, i + size));
    if (problem !== undefined) throw new Error(problem);
  }
  return recorder;
}

const pdvs = (list: Array<Partial<Pdv> & { data: Buffer }>): Pdv[] =>
  list.map((p) => ({
    contextId: p.contextId ?? 1,
    isCommand: p.isCommand ?? false,
    isLast: p.isLast ?? false,
    data: p.data,
  }));

// An association's worth of traffic: PDUs with one and several PDVs, command and data PDVs sharing PDUs,
// an empty PDV value, and control PDUs between them.
const STREAM = Buffer.concat([
  ASSOCIATE_RQ,
  encodePDataTf(pdvs([{ isCommand: true, isLast: false, data: bytes(40, 1) }])),
  encodePDataTf(pdvs([{ isCommand: true, isLast: true, data: bytes(30, 2) }, { data: bytes(1000, 3) }])),
  encodePDataTf(pdvs([{ data: bytes(5000, 4) }, { data: Buffer.alloc(0) }, { data: bytes(777, 5), isLast: true }])),
  encodePDataTf(pdvs([{ contextId: 3, isCommand: true, isLast: true, data: bytes(64, 6) }])),
  encodeReleaseRq(),
]);

test('the same events whatever the chunking, split headers included', (t) => {
  const whole = parseInChunks(STREAM, STREAM.length).events;
  t.is(whole.filter((e) => e.kind === 'pdv').length, 7);
  t.deepEqual(whole[0], { kind: 'control', pdu: ASSOCIATE_RQ.toString('hex') });
  t.like(whole[whole.length - 1], { kind: 'control' });
  for (const size of [1, 2, 3, 5, 6, 7, 13, 64, 999, 4096]) {
    t.deepEqual(parseInChunks(STREAM, size).events, whole, `chunks of ${size}`);
  }
});

test('several PDUs in one chunk come out in order, and PDV values are views into the chunk', (t) => {
  const recorder = new Recorder((slice) => {
    // A view into STREAM's memory, not a copy.
    if (slice.buffer !== STREAM.buffer) throw new Error('value slice is a copy');
  });
  t.is(parser(recorder).push(STREAM), undefined);
  t.deepEqual(
    recorder.events.map((e) => e.kind),
    [
      'control',
      'data-start',
      'pdv',
      'data-end',
      'data-start',
      'pdv',
      'pdv',
      'data-end',
      'data-start',
      'pdv',
      'pdv',
      'pdv',
      'data-end',
      'data-start',
      'pdv',
      'data-end',
      'control',
    ],
  );
  const data = recorder.events.filter((e) => e.kind === 'pdv' && !e.isCommand);
  t.like(data[1], { value: bytes(5000, 4).toString('hex'), isLast: false });
  t.like(data[2], { value: '', isLast: false });
  t.like(data[3], { value: bytes(777, 5).toString('hex'), isLast: true });
});

test('a value split across chunks arrives as several slices that join up', (t) => {
  const stream = Buffer.concat([ASSOCIATE_RQ, encodePDataTf(pdvs([{ data: bytes(10_000, 9), isLast: true }]))]);
  const recorder = parseInChunks(stream, 1500);
  t.true(recorder.slices >= 6);
  t.like(
    recorder.events.find((e) => e.kind === 'pdv'),
    { value: bytes(10_000, 9).toString('hex') },
  );
});

test('an empty P-DATA-TF is reported as such', (t) => {
  const recorder = parseInChunks(Buffer.concat([ASSOCIATE_RQ, encodePdu(PduType.PDataTf, Buffer.alloc(0))]), 4);
  t.deepEqual(recorder.events.slice(1), [{ kind: 'data-start', length: 0 }, { kind: 'data-end' }]);
});

function pdvItem(itemLength: number, contextId = 1, control = 0, value = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(6);
  head.writeUInt32BE(itemLength, 0);
  head.writeUInt8(contextId, 4);
  head.writeUInt8(control, 5);
  return Buffer.concat([head, value]);
}

function problemOf(stream: Buffer, chunk = stream.length): string | undefined {
  const p = parser(new Recorder());
  for (let i = 0; i < stream.length; i += chunk) {
    const problem = p.push(stream.subarray(i, i + chunk));
    if (problem !== undefined) return problem;
  }
  return undefined;
}

test('malformed PDV lengths are refused, whatever the chunking', (t) => {
  const cases: Array<[string, Buffer, RegExp]> = [
    ['item length 1', encodePdu(PduType.PDataTf, pdvItem(1)), /shorter than its own header/],
    ['item length 0', encodePdu(PduType.PDataTf, pdvItem(0)), /shorter than its own header/],
    [
      'item overruns its PDU',
      encodePdu(PduType.PDataTf, pdvItem(100, 1, 0, Buffer.alloc(50))),
      /overruns its P-DATA-TF/,
    ],
    ['item length near 2^32', encodePdu(PduType.PDataTf, pdvItem(0xffffffff, 1, 0, Buffer.alloc(10))), /overruns/],
    [
      'bytes left over after the last PDV',
      encodePdu(PduType.PDataTf, Buffer.concat([pdvItem(4, 1, 0, Buffer.alloc(2)), Buffer.alloc(3)])),
      /too few for a PDV item header/,
    ],
  ];
  for (const [name, pdu, expected] of cases) {
    const stream = Buffer.concat([ASSOCIATE_RQ, pdu]);
    for (const chunk of [stream.length, 1, 5])
      t.regex(problemOf(stream, chunk) ?? '', expected, `${name}, chunks of ${chunk}`);
  }
});

test('PDU headers go through the guard: garbage and oversized PDUs are refused at their header', (t) => {
  t.regex(problemOf(Buffer.from('GET / HTTP/1.1\r\n')) ?? '', /not an A-ASSOCIATE-RQ/);
  const oversized = Buffer.from([0x04, 0x00, 0x7f, 0xff, 0xff, 0xff]);
  t.regex(problemOf(Buffer.concat([ASSOCIATE_RQ, oversized])) ?? '', /exceeds the limit/);
  t.regex(problemOf(Buffer.concat([ASSOCIATE_RQ, encodePdu(0x09, Buffer.alloc(4))])) ?? '', /unknown PDU type 0x09/);
});

test('once it has failed, or been stopped, the parser reports nothing more', (t) => {
  const recorder = new Recorder();
  const p = parser(recorder);
  const bad = encodePdu(PduType.PDataTf, pdvItem(1));
  const problem = p.push(Buffer.concat([ASSOCIATE_RQ, bad]));
  t.truthy(problem);
  t.is(p.push(encodeReleaseRq()), problem);
  t.is(recorder.events.length, 2); // the A-ASSOCIATE-RQ and the P-DATA-TF start

  const stopping = new Recorder();
  const q = parser(stopping);
  t.is(q.push(ASSOCIATE_RQ), undefined);
  q.stop();
  t.is(q.push(STREAM.subarray(ASSOCIATE_RQ.length)), undefined);
  t.is(stopping.events.length, 1);
});
