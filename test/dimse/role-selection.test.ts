import test from 'ava';
import {
  decodeAssociateAc,
  decodeAssociateRq,
  encodeAssociateAc,
  encodeAssociateRq,
} from '../../src/dimse/association-pdus.js';
import { STORAGE_COMMITMENT_PUSH_MODEL } from '../../src/dimse/storage-commitment.js';

// SCP/SCU Role Selection sub-items (0x54, PS3.7 D.3.3.4) in the user information of A-ASSOCIATE-RQ and -AC: what a
// PACS proposes when it opens an association to report a storage commitment result as the SCP.

const ELE = '1.2.840.10008.1.2.1';
const request = {
  calledAe: 'CXR_GATEWAY',
  callingAe: 'ORTHANC',
  contexts: [{ id: 1, abstractSyntax: STORAGE_COMMITMENT_PUSH_MODEL, transferSyntaxes: [ELE] }],
  maxPduLength: 16384,
  implementationClassUid: '1.2.3.4',
  implementationVersionName: 'TEST',
};

test('a role selection proposed in the request is read back, SOP class and both roles', (t) => {
  const pdu = encodeAssociateRq({
    ...request,
    roleSelections: [{ sopClassUid: STORAGE_COMMITMENT_PUSH_MODEL, scuRole: false, scpRole: true }],
  });
  const decoded = decodeAssociateRq(pdu);
  if (decoded.kind !== 'request') return t.fail(JSON.stringify(decoded));
  t.deepEqual(decoded.request.roleSelections, [
    { sopClassUid: STORAGE_COMMITMENT_PUSH_MODEL, scuRole: false, scpRole: true },
  ]);
  t.is(decoded.request.implementationVersionName, 'TEST', 'the sub-items after it are still read');
  const without = decodeAssociateRq(encodeAssociateRq(request));
  t.deepEqual(without.kind === 'request' ? without.request.roleSelections : undefined, []);
});

test('our answer in the A-ASSOCIATE-AC: the sub-item sits between the class UID and the version name', (t) => {
  const pdu = encodeAssociateAc({
    calledAe: 'CXR_GATEWAY',
    callingAe: 'ORTHANC',
    contexts: [{ id: 1, result: 0, transferSyntax: ELE }],
    maxPduLength: 16384,
    implementationClassUid: '1.2.3.4',
    implementationVersionName: 'TEST',
    roleSelections: [{ sopClassUid: STORAGE_COMMITMENT_PUSH_MODEL, scuRole: false, scpRole: true }],
  });
  const accept = decodeAssociateAc(pdu);
  if (typeof accept === 'string') return t.fail(accept);
  t.deepEqual(accept.roleSelections, [{ sopClassUid: STORAGE_COMMITMENT_PUSH_MODEL, scuRole: false, scpRole: true }]);
  // Item order (PS3.8 D.1 / PS3.7 D.3.3): 0x51, 0x52, 0x54, 0x55.
  const types: number[] = [];
  const userInfo = pdu.indexOf(Buffer.from([0x50, 0x00]), 6 + 68);
  let offset = userInfo + 4;
  while (offset < pdu.length) {
    types.push(pdu.readUInt8(offset));
    offset += 4 + pdu.readUInt16BE(offset + 2);
  }
  t.deepEqual(types, [0x51, 0x52, 0x54, 0x55]);
});

test('a role selection item whose UID length does not fit its item is a malformed request (A-ABORT)', (t) => {
  const pdu = encodeAssociateRq({
    ...request,
    roleSelections: [{ sopClassUid: STORAGE_COMMITMENT_PUSH_MODEL, scuRole: false, scpRole: true }],
  });
  // The UID length field of the 0x54 sub-item: one more than the UID it announces.
  const at =
    pdu.indexOf(Buffer.from(STORAGE_COMMITMENT_PUSH_MODEL, 'latin1'), pdu.indexOf(Buffer.from([0x54, 0x00]))) - 2;
  pdu.writeUInt16BE(pdu.readUInt16BE(at) + 1, at);
  const decoded = decodeAssociateRq(pdu);
  t.is(decoded.kind, 'invalid');
  t.regex(decoded.kind === 'invalid' ? decoded.reason : '', /role selection/);
});
