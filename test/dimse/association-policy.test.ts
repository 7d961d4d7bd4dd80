import test from 'ava';
import { decideAssociation, type AssociationPolicy } from '../../src/dimse/association-policy.js';

const open: AssociationPolicy = {
  aeTitle: 'CXR_GATEWAY',
  callers: { allowAny: true, allowed: [] },
  maxAssociations: 4,
};
const listed: AssociationPolicy = {
  aeTitle: 'CXR_GATEWAY',
  callers: { allowAny: false, allowed: [{ aeTitle: 'CR01' }, { aeTitle: 'DX02', host: '10.0.0.7' }] },
  maxAssociations: 4,
};
const request = (callingAe: string, peerAddress = '10.0.0.7', calledAe = 'CXR_GATEWAY') => ({
  callingAe,
  calledAe,
  peerAddress,
});

test('accepts any caller when the allow-list is open', (t) => {
  t.deepEqual(decideAssociation(request('ANYTHING'), open, 0), { accept: true });
});

test('rejects a wrong called AE permanently with reason 7 (called AE not recognized)', (t) => {
  const d = decideAssociation(request('CR01', '10.0.0.7', 'PACS'), open, 0);
  t.like(d, { accept: false, result: 1, source: 1, reason: 7 });
});

test('called AE comparison ignores the space padding of the wire format', (t) => {
  t.true(decideAssociation(request('CR01', '10.0.0.7', 'CXR_GATEWAY     '), open, 0).accept);
});

test('rejects an unknown calling AE with reason 3 and names the config key', (t) => {
  const d = decideAssociation(request('CT01'), listed, 0);
  t.like(d, { accept: false, result: 1, source: 1, reason: 3 });
  if (!d.accept) t.regex(d.explanation, /calling AE 'CT01' is not in dicom\.callers\.allowed/);
});

test('a caller bound to a host is accepted from that host only (IPv4-mapped addresses count)', (t) => {
  t.true(decideAssociation(request('DX02', '::ffff:10.0.0.7'), listed, 0).accept);
  const d = decideAssociation(request('DX02', '10.0.0.8'), listed, 0);
  t.like(d, { accept: false, reason: 3 });
  if (!d.accept) t.regex(d.explanation, /connected from 10\.0\.0\.8/);
  t.true(decideAssociation(request('CR01', '192.0.2.1'), listed, 0).accept);
});

test('over the association limit: rejected transient, local limit exceeded', (t) => {
  t.like(decideAssociation(request('CR01'), listed, 4), { accept: false, result: 2, source: 3, reason: 2 });
  t.true(decideAssociation(request('CR01'), listed, 3).accept);
});
