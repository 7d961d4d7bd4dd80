import test from 'ava';
import { atnaMessage, type AuditEventRow } from '../../src/reporting/atna-message.js';
import { checkAtna, child, children, type XmlNode } from '../helpers/atna-check.js';

const SOURCE = { sourceId: 'CXR_GATEWAY', enterpriseSiteId: 'St Elsewhere', aeTitle: 'CXR_GATEWAY' };
const AT = Date.UTC(2026, 11, 6, 13, 30, 0, 123);
const STUDY = '1.2.826.0.1.3680043.8.498.1';
const CR = '1.2.840.10008.5.1.4.1.1.1';
const DX = '1.2.840.10008.5.1.4.1.1.1.1';

function row(
  partial: Partial<AuditEventRow> & Pick<AuditEventRow, 'category' | 'action'>,
  after?: unknown,
): AuditEventRow {
  return {
    id: 1,
    at: AT,
    user: null,
    role: null,
    address: null,
    target: null,
    outcome: 'success',
    detail: null,
    ...partial,
    after: after === undefined ? null : JSON.stringify(after),
  };
}

const ROWS = {
  accepted: row(
    {
      category: 'dicom',
      action: 'association.accepted',
      user: 'MODALITY1',
      address: '10.1.2.3',
      target: 'called CXR_GATEWAY',
    },
    {
      callingAe: 'MODALITY1',
      calledAe: 'CXR_GATEWAY',
      address: '10.1.2.3',
      tls: true,
      peerCertificateSubject: 'CN=MODALITY1',
    },
  ),
  rejected: row(
    {
      category: 'dicom',
      action: 'association.rejected',
      user: 'INTRUDER',
      address: '10.9.9.9',
      outcome: 'failure',
      detail: 'calling AE title not allowed',
    },
    { callingAe: 'INTRUDER', calledAe: 'CXR_GATEWAY', address: '10.9.9.9', tls: false },
  ),
  received: row(
    { category: 'dicom', action: 'study.received', user: 'MODALITY1', address: '10.1.2.3', target: `study ${STUDY}` },
    {
      studyInstanceUid: STUDY,
      sopClassUids: [DX],
      instances: 2,
      callingAe: 'MODALITY1',
      calledAe: 'CXR_GATEWAY',
      address: '10.1.2.3',
      associationId: 'a-17',
      patientName: 'DOE^JANE',
    },
  ),
  pacs: row(
    { category: 'dicom', action: 'pacs.sent', user: 'CXR_GATEWAY', address: '10.0.0.5:104', target: `study ${STUDY}` },
    {
      studyInstanceUid: STUDY,
      destination: 'pacs-main',
      sopInstanceUids: [`${STUDY}.7.1`, `${STUDY}.7.2`],
      peerAe: 'PACS',
      tls: true,
    },
  ),
  ris: row(
    { category: 'hl7', action: 'ris.sent', target: `study ${STUDY}`, outcome: 'failure', detail: 'AR: unknown order' },
    {
      studyInstanceUid: STUDY,
      destination: 'ris-main',
      controlId: 'CXR123',
      host: 'ris.example.org',
      port: 2575,
      tls: true,
    },
  ),
  tls: row(
    {
      category: 'security',
      action: 'tls.failed',
      address: '10.6.6.6',
      outcome: 'failure',
      detail: 'certificate signed by unknown authority',
    },
    { listener: 'dicom-tls', address: '10.6.6.6' },
  ),
  caller: row(
    {
      category: 'security',
      action: 'caller.rejected',
      user: 'MODALITY9',
      address: '10.6.6.7',
      outcome: 'failure',
      detail: 'certificate subject CN=X is not bound to MODALITY9',
    },
    { callingAe: 'MODALITY9', address: '10.6.6.7', listener: 'dicom-tls' },
  ),
  loginFailed: row({
    category: 'admin',
    action: 'user.login-failed',
    user: 'alice',
    address: '192.168.1.20',
    outcome: 'failure',
  }),
  logout: row({ category: 'admin', action: 'user.logout', user: 'alice', role: 'admin', address: '192.168.1.20' }),
  release: row({
    category: 'admin',
    action: 'delivery.release',
    user: 'alice',
    role: 'admin',
    address: 'local',
    target: 'delivery 12',
  }),
  reprocess: row({
    category: 'admin',
    action: 'study.reprocess',
    user: 'alice',
    role: 'admin',
    address: '::1',
    target: `study ${STUDY}`,
  }),
  userRemove: row({
    category: 'admin',
    action: 'user.remove',
    user: 'root',
    role: 'admin',
    address: 'local',
    target: 'user bob',
  }),
  rules: row({ category: 'admin', action: 'rules.apply', user: 'alice', role: 'admin', address: '192.168.1.20' }),
  unknown: row({ category: 'future', action: 'something.new', after: null } as never, '{not json'),
} as const;

function check(r: AuditEventRow): XmlNode {
  const xml = atnaMessage(r, SOURCE);
  const [result] = checkAtna([xml]);
  if (result === undefined || result.tree === null || result.errors.length > 0) {
    throw new Error(`${r.category}/${r.action}: ${JSON.stringify(result?.errors)}\n${xml}`);
  }
  return result.tree;
}

const eventId = (m: XmlNode) => child(child(m, 'EventIdentification'), 'EventID')?.attrs['csd-code'];
const eventType = (m: XmlNode) => child(child(m, 'EventIdentification'), 'EventTypeCode')?.attrs['csd-code'];
const role = (p: XmlNode) => child(p, 'RoleIDCode')?.attrs['csd-code'];

test('every mapped row is well-formed XML with every element and attribute the A.5.1.1 schema requires, in order', (t) => {
  const docs = Object.values(ROWS).map((r) => atnaMessage(r, SOURCE));
  const results = checkAtna(docs);
  for (const [i, r] of results.entries()) t.deepEqual(r.errors, [], `${Object.keys(ROWS)[i]}: ${docs[i]}`);
  t.is(results.length, Object.keys(ROWS).length);
});

test('the checker rejects what the schema forbids (so a passing check means something)', (t) => {
  const good = atnaMessage(ROWS.received, SOURCE);
  const [noUser, badOutcome, noSource, order, broken, noName] = checkAtna([
    good.replace(/UserID="MODALITY1" /, ''),
    good.replace('EventOutcomeIndicator="0"', 'EventOutcomeIndicator="1"'),
    good.replace(/<AuditSourceIdentification[\s\S]*<\/AuditSourceIdentification>\n/, ''),
    good.replace(/(<EventID [^>]*\/>)/, '<EventTypeCode csd-code="1" codeSystemName="X" originalText="x"/>$1'),
    good.replace('</AuditMessage>', ''),
    good.replace(/<ParticipantObjectName>[^<]*<\/ParticipantObjectName>\n/, ''),
  ]);
  t.true(noUser?.errors.some((e) => e.includes('UserID')));
  t.true(badOutcome?.errors.some((e) => e.includes('EventOutcomeIndicator')));
  t.true(noSource?.errors.some((e) => e.includes('AuditSourceIdentification')));
  t.true((order?.errors.length ?? 0) > 0);
  t.true(broken?.errors.some((e) => e.includes('well-formed')));
  t.true(noName?.errors.some((e) => e.includes('ParticipantObjectName')));
});

test('study.received: 110104 Instances Transferred, action C, the modality as Source and requestor, the gateway as Destination', (t) => {
  const m = check(ROWS.received);
  const ei = child(m, 'EventIdentification');
  t.is(eventId(m), '110104');
  t.like(ei?.attrs, { EventActionCode: 'C', EventOutcomeIndicator: '0', EventDateTime: '2026-12-06T13:30:00.123Z' });
  t.is(child(ei, 'EventID')?.attrs.codeSystemName, 'DCM');
  const [src, dst] = children(m, 'ActiveParticipant');
  t.like(src?.attrs, {
    UserID: 'MODALITY1',
    UserIsRequestor: 'true',
    NetworkAccessPointID: '10.1.2.3',
    NetworkAccessPointTypeCode: '2',
  });
  t.is(role(src as XmlNode), '110153');
  t.like(dst?.attrs, { UserID: 'CXR_GATEWAY', UserIsRequestor: 'false' });
  t.is(role(dst as XmlNode), '110152');
  const [study] = children(m, 'ParticipantObjectIdentification');
  t.like(study?.attrs, {
    ParticipantObjectID: STUDY,
    ParticipantObjectTypeCode: '2',
    ParticipantObjectTypeCodeRole: '3',
  });
  t.is(child(study, 'ParticipantObjectIDTypeCode')?.attrs['csd-code'], '110180');
  t.like(child(child(study, 'ParticipantObjectDescription'), 'SOPClass')?.attrs, { UID: DX, NumberOfInstances: '2' });
  t.like(child(m, 'AuditSourceIdentification')?.attrs, {
    AuditSourceID: 'CXR_GATEWAY',
    AuditEnterpriseSiteID: 'St Elsewhere',
  });
});

test('no patient name or ID reaches a message, even when a row carries one by mistake', (t) => {
  const xml = atnaMessage(ROWS.received, SOURCE);
  t.false(xml.includes('DOE'));
  t.false(/Patient|ParticipantObjectTypeCode="1"/.test(xml));
});

test('several SOP classes without per-class counts: one SOPClass without UID carries the total; with counts, one per class', (t) => {
  const after = JSON.parse(ROWS.received.after ?? '{}') as Record<string, unknown>;
  const mixed = check({ ...ROWS.received, after: JSON.stringify({ ...after, sopClassUids: [CR, DX], instances: 3 }) });
  const classes = children(
    child(child(mixed, 'ParticipantObjectIdentification'), 'ParticipantObjectDescription'),
    'SOPClass',
  );
  t.deepEqual(
    classes.map((c) => c.attrs),
    [{ NumberOfInstances: '3' }],
  );
  const counted = check({
    ...ROWS.received,
    after: JSON.stringify({
      ...after,
      sopClassUids: [CR, DX],
      instances: 3,
      instancesBySopClass: { [CR]: 1, [DX]: 2 },
    }),
  });
  const each = children(
    child(child(counted, 'ParticipantObjectIdentification'), 'ParticipantObjectDescription'),
    'SOPClass',
  );
  t.deepEqual(
    each.map((c) => c.attrs),
    [
      { UID: CR, NumberOfInstances: '1' },
      { UID: DX, NumberOfInstances: '2' },
    ],
  );
});

test('pacs.sent: 110104, the gateway as Source and requestor, the PACS AE at its host as Destination, the sent instances listed', (t) => {
  const m = check(ROWS.pacs);
  t.is(eventId(m), '110104');
  t.is(child(m, 'EventIdentification')?.attrs.EventActionCode, 'C');
  const [src, dst] = children(m, 'ActiveParticipant');
  t.like(src?.attrs, { UserID: 'CXR_GATEWAY', UserIsRequestor: 'true' });
  t.is(role(src as XmlNode), '110153');
  t.like(dst?.attrs, { UserID: 'PACS', UserIsRequestor: 'false', NetworkAccessPointID: '10.0.0.5' });
  t.is(role(dst as XmlNode), '110152');
  const sop = child(child(child(m, 'ParticipantObjectIdentification'), 'ParticipantObjectDescription'), 'SOPClass');
  t.is(sop?.attrs.NumberOfInstances, '2');
  t.deepEqual(
    children(sop, 'Instance').map((i) => i.attrs.UID),
    [`${STUDY}.7.1`, `${STUDY}.7.2`],
  );
});

test('ris.sent: 110106 Export, action R, a failure with its reason, the RIS by name at its host name', (t) => {
  const m = check(ROWS.ris);
  const ei = child(m, 'EventIdentification');
  t.is(eventId(m), '110106');
  t.like(ei?.attrs, { EventActionCode: 'R', EventOutcomeIndicator: '4' });
  t.is(child(ei, 'EventOutcomeDescription')?.text, 'AR: unknown order');
  const dst = children(m, 'ActiveParticipant')[1];
  t.like(dst?.attrs, { UserID: 'ris-main', NetworkAccessPointID: 'ris.example.org', NetworkAccessPointTypeCode: '1' });
  t.is(child(m, 'ParticipantObjectIdentification')?.attrs.ParticipantObjectID, STUDY);
});

test('associations: 110114 User Authentication / 110122 Login; a rejection fails with its reason', (t) => {
  const ok = check(ROWS.accepted);
  t.is(eventId(ok), '110114');
  t.is(eventType(ok), '110122');
  t.like(children(ok, 'ActiveParticipant')[0]?.attrs, {
    UserID: 'MODALITY1',
    UserIsRequestor: 'true',
    NetworkAccessPointID: '10.1.2.3',
  });
  const no = check(ROWS.rejected);
  t.is(child(no, 'EventIdentification')?.attrs.EventOutcomeIndicator, '4');
  t.is(child(child(no, 'EventIdentification'), 'EventOutcomeDescription')?.text, 'calling AE title not allowed');
});

test('security events: 110113 Security Alert / 110126 Node Authentication naming the peer and the listener', (t) => {
  for (const r of [ROWS.tls, ROWS.caller]) {
    const m = check(r);
    t.is(eventId(m), '110113');
    t.is(eventType(m), '110126');
    t.is(child(m, 'EventIdentification')?.attrs.EventOutcomeIndicator, '4');
    t.is(child(m, 'ParticipantObjectIdentification')?.attrs.ParticipantObjectID, 'dicom-tls');
  }
  t.like(children(check(ROWS.caller), 'ActiveParticipant')[1]?.attrs, {
    UserID: 'MODALITY9',
    NetworkAccessPointID: '10.6.6.7',
  });
});

test('admin actions: logins and logouts are User Authentication; changes are Security Alerts of the right type', (t) => {
  const failed = check(ROWS.loginFailed);
  t.is(eventId(failed), '110114');
  t.is(eventType(failed), '110122');
  t.is(child(failed, 'EventIdentification')?.attrs.EventOutcomeIndicator, '4');
  t.is(eventType(check(ROWS.logout)), '110123');
  const release = check(ROWS.release);
  t.is(eventId(release), '110113');
  t.is(eventType(release), '110132');
  // The CLI's 'local' is not a network access point.
  t.is(children(release, 'ActiveParticipant')[0]?.attrs.NetworkAccessPointID, undefined);
  const reprocess = check(ROWS.reprocess);
  t.is(
    child(child(reprocess, 'ParticipantObjectIdentification'), 'ParticipantObjectIDTypeCode')?.attrs['csd-code'],
    '110180',
  );
  t.is(children(reprocess, 'ActiveParticipant')[0]?.attrs.NetworkAccessPointTypeCode, '2');
  t.is(eventType(check(ROWS.userRemove)), '110137');
  t.is(eventType(check(ROWS.rules)), '110131');
  t.is(eventType(check(ROWS.unknown)), '110132');
});

test('text from peers is escaped: markup, quotes and control characters never break the document', (t) => {
  const hostile = 'x"/><Evil a="1">&amp; </EventOutcomeDescription>\u0001\u0000 ok';
  const m = check({
    ...ROWS.rejected,
    user: '<AE&"\'>',
    detail: hostile,
    after: JSON.stringify({ callingAe: 'A"<&>\tB' }),
  });
  t.is(
    child(child(m, 'EventIdentification'), 'EventOutcomeDescription')?.text,
    'x"/><Evil a="1">&amp; </EventOutcomeDescription>\uFFFD\uFFFD ok',
  );
  t.is(children(m, 'ActiveParticipant')[0]?.attrs.UserID, 'A"<&>\tB');
});
