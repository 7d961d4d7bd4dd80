import test from 'ava';
import { PduGuard } from '../../src/dimse/pdu-guard.js';

const pdu = (type: number, length: number) => {
  const b = Buffer.alloc(6 + length);
  b.writeUInt8(type, 0);
  b.writeUInt32BE(length, 2);
  return b;
};

test('a well-formed stream passes, even when PDUs are split across chunks', (t) => {
  const guard = new PduGuard(16384);
  const stream = Buffer.concat([pdu(0x01, 200), pdu(0x04, 16384), pdu(0x05, 4)]);
  for (let i = 0; i < stream.length; i += 7) t.is(guard.inspect(stream.subarray(i, i + 7)), undefined);
});

test('a first PDU that is not an association request is garbage', (t) => {
  t.regex(new PduGuard(16384).inspect(Buffer.from('GET / HTTP/1.1\r\n')) ?? '', /not an A-ASSOCIATE-RQ/);
});

test('a P-DATA PDU larger than the negotiated maximum is refused at its header', (t) => {
  const guard = new PduGuard(16384);
  t.is(guard.inspect(pdu(0x01, 100)), undefined);
  const header = pdu(0x04, 0).subarray(0, 6);
  header.writeUInt32BE(0x7fffffff, 2);
  t.regex(guard.inspect(header) ?? '', /exceeds the limit of 16400/);
});

test('an unknown PDU type after the association is refused', (t) => {
  const guard = new PduGuard(16384);
  t.is(guard.inspect(pdu(0x01, 10)), undefined);
  t.regex(guard.inspect(pdu(0x09, 10)) ?? '', /unknown PDU type 0x09/);
});
