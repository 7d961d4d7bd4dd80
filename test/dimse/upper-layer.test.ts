import test from 'ava';
import {
  encodeAssociateRq,
  encodeAbort,
  encodeReleaseRq,
  encodeReleaseRp,
  encodeAssociateRj,
} from '../../src/dimse/association-pdus.js';
import { UpperLayer, STATE_TABLE, type UpperLayerUser } from '../../src/dimse/upper-layer.js';

const DX = '1.2.840.10008.5.1.4.1.1.1.1';
const ELE = '1.2.840.10008.1.2.1';

function rq(ids: number[]): Buffer {
  // encodeAssociateRq refuses invalid IDs, so repeated ones are written by patching a valid request.
  const pdu = encodeAssociateRq({
    calledAe: 'CXR_GATEWAY',
    callingAe: 'PEER',
    contexts: ids.map((_, i) => ({ id: ((i * 2) % 256) + 1, abstractSyntax: DX, transferSyntaxes: [ELE] })),
    maxPduLength: 16384,
    implementationClassUid: '1.2.3',
    implementationVersionName: 'T',
  });
  let offset = 6 + 68;
  let n = 0;
  while (offset < pdu.length) {
    const type = pdu.readUInt8(offset);
    const length = pdu.readUInt16BE(offset + 2);
    if (type === 0x20) pdu.writeUInt8(ids[n++] ?? 1, offset + 4);
    offset += 4 + length;
  }
  return pdu;
}

/** A fake transport and a hand-driven ARTIM timer; records everything. */
function harness(role: 'acceptor' | 'requestor' = 'acceptor') {
  const log: string[] = [];
  const written: Buffer[] = [];
  let artim: (() => void) | undefined;
  const user: UpperLayerUser = {
    associateIndication: (request) => log.push(`indication ${request.callingAe} ${request.contexts.length}`),
    associateRefused: (why) => log.push(`refused: ${why}`),
    associateAccepted: () => log.push('accepted'),
    associateRejected: () => log.push('rejected'),
    releaseIndication: () => log.push('release indication'),
    releaseConfirmation: () => log.push('release confirmation'),
    aborted: (kind, why) => log.push(`${kind}: ${why}`),
    closed: () => log.push('closed'),
  };
  const upper = new UpperLayer({
    role,
    artimMs: 1000,
    schedule: (_ms, fire) => {
      artim = fire;
      return () => {
        artim = undefined;
      };
    },
    transport: {
      write: (bytes) => written.push(bytes),
      end: () => log.push('end'),
      destroy: () => log.push('destroy'),
      connect: () => log.push('connect'),
    },
    user,
  });
  return {
    upper,
    log,
    written,
    types: () => written.map((b) => b.readUInt8(0)),
    fireArtim: () => artim?.(),
    artimRunning: () => artim !== undefined,
  };
}

test('every cell of PS3.8 Table 9-10 that names an action names one of the 28', (t) => {
  const cells = Object.values(STATE_TABLE).flatMap((row) => Object.values(row));
  t.true(cells.length > 100);
  t.true(cells.every((a) => /^(AE-[1-8]|DT-[12]|AR-([1-9]|10)|AA-[1-8])$/.test(String(a))));
});

test('acceptor: request, accept, release: RP sent, transport half-closed, ARTIM closes it if the peer does not', (t) => {
  const h = harness();
  h.upper.transportIndication();
  t.is(h.upper.state, 'Sta2');
  t.true(h.artimRunning());
  h.upper.receiveControlPdu(rq([1]));
  t.is(h.upper.state, 'Sta3');
  t.false(h.artimRunning());
  h.upper.accept(Buffer.from([0x02, 0, 0, 0, 0, 0]));
  t.is(h.upper.state, 'Sta6');
  t.true(h.upper.receiveDataPdu());
  t.true(h.upper.sendData(Buffer.from([0x04, 0, 0, 0, 0, 0])));
  h.upper.receiveControlPdu(encodeReleaseRq());
  t.is(h.upper.state, 'Sta8');
  h.upper.releaseResponse();
  t.is(h.upper.state, 'Sta13');
  t.deepEqual(h.types(), [0x02, 0x04, 0x06]);
  t.deepEqual(h.log, ['indication PEER 1', 'release indication', 'end']);
  h.fireArtim();
  t.is(h.upper.state, 'Sta1');
  t.deepEqual(h.log.slice(-2), ['destroy', 'closed']);
});

test('a request that repeats a context ID is rejected before anything else is written, and nothing after it is read', (t) => {
  const h = harness();
  h.upper.transportIndication();
  h.upper.receiveControlPdu(rq([255, 255]));
  t.is(h.upper.state, 'Sta13');
  t.deepEqual(h.types(), [0x03]);
  t.deepEqual(h.written[0], encodeAssociateRj(1, 2, 1));
  t.true(h.log.some((l) => /^refused: .*ID 255 is proposed twice/.test(l)));
  t.true(h.log.includes('end'));
  // P-DATA after the rejection is ignored (AA-6), and so is a release request: nothing is written.
  t.false(h.upper.receiveDataPdu());
  h.upper.receiveControlPdu(encodeReleaseRq());
  t.false(h.upper.sendData(Buffer.from([0x04, 0, 0, 0, 0, 0])));
  t.is(h.written.length, 1);
  h.upper.transportClosed();
  t.is(h.upper.state, 'Sta1');
  t.false(h.artimRunning());
});

test('an even or zero context ID, and more than 128 contexts, are rejected too', (t) => {
  for (const ids of [[2], [0], Array.from({ length: 129 }, (_, i) => (i * 2 + 1) % 256)]) {
    const h = harness();
    h.upper.transportIndication();
    h.upper.receiveControlPdu(rq(ids));
    t.deepEqual(h.types(), [0x03], `ids ${ids.slice(0, 3).join(',')}`);
  }
});

test('A-ABORT received in an association closes the transport at once', (t) => {
  const h = harness();
  h.upper.transportIndication();
  h.upper.receiveControlPdu(rq([1]));
  h.upper.accept(Buffer.from([0x02, 0, 0, 0, 0, 0]));
  h.upper.receiveControlPdu(encodeAbort(0, 0));
  t.is(h.upper.state, 'Sta1');
  t.deepEqual(h.log.slice(1), ['destroy', 'peer-abort: A-ABORT received (source 0, reason 0)', 'closed']);
});

test('a second A-ASSOCIATE-RQ in Sta6 gets A-ABORT (provider, unexpected PDU) and the close', (t) => {
  const h = harness();
  h.upper.transportIndication();
  h.upper.receiveControlPdu(rq([1]));
  h.upper.accept(Buffer.from([0x02, 0, 0, 0, 0, 0]));
  h.upper.receiveControlPdu(rq([1]));
  t.is(h.upper.state, 'Sta13');
  t.deepEqual(h.written.at(-1), encodeAbort(2, 2));
  t.true(h.log.includes('end'));
  t.true(h.artimRunning());
});

test('before any request: a P-DATA gets A-ABORT, and silence ends with the ARTIM timer', (t) => {
  const silent = harness();
  silent.upper.transportIndication();
  silent.fireArtim();
  t.is(silent.upper.state, 'Sta1');
  t.deepEqual(silent.log, ['destroy', 'closed']);
  t.is(silent.written.length, 0);

  const early = harness();
  early.upper.transportIndication();
  t.false(early.upper.receiveDataPdu());
  t.deepEqual(early.types(), [0x07]);
  t.is(early.upper.state, 'Sta13');
});

test('an unknown PDU type and a stream that does not parse get A-ABORT with the provider reason', (t) => {
  const h = harness();
  h.upper.transportIndication();
  h.upper.receiveControlPdu(rq([1]));
  h.upper.accept(Buffer.from([0x02, 0, 0, 0, 0, 0]));
  h.upper.receiveControlPdu(Buffer.from([0x09, 0, 0, 0, 0, 0]));
  t.deepEqual(h.written.at(-1), encodeAbort(2, 1));
  const g = harness();
  g.upper.transportIndication();
  g.upper.invalidPdu('PDU too long');
  t.deepEqual(g.written.at(-1), encodeAbort(2, 6));
});

test('requestor: a rejection ends it at once; a release is confirmed and the transport closed', (t) => {
  const r = harness('requestor');
  r.upper.associateRequest(rq([1]));
  t.deepEqual(r.log, ['connect']);
  r.upper.transportConnected();
  t.is(r.upper.state, 'Sta5');
  t.deepEqual(r.types(), [0x01]);
  r.upper.receiveControlPdu(encodeAssociateRj(1, 1, 3));
  t.is(r.upper.state, 'Sta1');
  t.deepEqual(r.log.slice(1), ['end', 'rejected']);

  const ok = harness('requestor');
  ok.upper.associateRequest(rq([1]));
  ok.upper.transportConnected();
  ok.upper.receiveControlPdu(Buffer.concat([Buffer.from([0x02, 0, 0, 0, 0, 68]), Buffer.alloc(68)]));
  t.is(ok.upper.state, 'Sta6');
  ok.upper.releaseRequest();
  t.is(ok.upper.state, 'Sta7');
  ok.upper.receiveControlPdu(encodeReleaseRp());
  t.is(ok.upper.state, 'Sta1');
  t.deepEqual(ok.log.slice(-3), ['accepted', 'end', 'release confirmation']);
});

test('release collision: both sides request, both confirm, in the order PS3.8 gives', (t) => {
  const a = harness('acceptor');
  a.upper.transportIndication();
  a.upper.receiveControlPdu(rq([1]));
  a.upper.accept(Buffer.from([0x02, 0, 0, 0, 0, 0]));
  a.upper.releaseRequest();
  a.upper.receiveControlPdu(encodeReleaseRq());
  t.is(a.upper.state, 'Sta10');
  a.upper.receiveControlPdu(encodeReleaseRp());
  t.is(a.upper.state, 'Sta12');
  a.upper.releaseResponse();
  t.is(a.upper.state, 'Sta13');
  t.deepEqual(a.types().slice(-2), [0x05, 0x06]);
});

test('20,000 random events in both roles: the machine never throws, sends data only when established, and is silent once closed', (t) => {
  let s = 1414;
  const next = () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const pdus = [
    rq([1]),
    rq([255, 255]),
    encodeReleaseRq(),
    encodeReleaseRp(),
    encodeAbort(0, 0),
    encodeAssociateRj(1, 1, 3),
    Buffer.concat([Buffer.from([0x02, 0, 0, 0, 0, 68]), Buffer.alloc(68)]),
    Buffer.from([0x0a, 0, 0, 0, 0, 0]),
  ];
  const data = Buffer.from([0x04, 0, 0, 0, 0, 0]);
  for (let run = 0; run < 400; run += 1) {
    const role = run % 2 === 0 ? 'acceptor' : 'requestor';
    const h = harness(role);
    if (role === 'acceptor') h.upper.transportIndication();
    else h.upper.associateRequest(rq([1]));
    let destroyed = false;
    for (let step = 0; step < 50; step += 1) {
      const before = h.written.length;
      const state = h.upper.state;
      const pick = Math.floor(next() * 12);
      t.notThrows(() => {
        if (pick < 4) h.upper.receiveControlPdu(pdus[Math.floor(next() * pdus.length)] ?? data);
        else if (pick === 4) h.upper.receiveDataPdu();
        else if (pick === 5) h.upper.sendData(data);
        else if (pick === 6) h.upper.accept(Buffer.from([0x02, 0, 0, 0, 0, 0]));
        else if (pick === 7) h.upper.releaseRequest();
        else if (pick === 8) h.upper.releaseResponse();
        else if (pick === 9) h.upper.abort('test');
        else if (pick === 10) h.fireArtim();
        else if (role === 'requestor') h.upper.transportConnected();
        else h.upper.invalidPdu('garbage');
      });
      const wrote = h.written.slice(before);
      if (wrote.some((b) => b.readUInt8(0) === 0x04))
        t.true(state === 'Sta6' || state === 'Sta8', `P-DATA sent in ${state}`);
      if (destroyed) t.is(wrote.length, 0, 'wrote after the transport was destroyed');
      if (h.log.at(-1) === 'closed' || h.log.includes('destroy')) destroyed = h.log.includes('destroy');
      if (h.upper.state === 'Sta1' && h.log.includes('closed')) break;
    }
  }
});
