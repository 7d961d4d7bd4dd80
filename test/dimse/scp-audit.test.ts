import test from 'ava';
import { PassThrough, Writable } from 'node:stream';
import { dicomSchema } from '../../src/config/schema.js';
import { StorageScp } from '../../src/dimse/storage-scp.js';
import { createLogger } from '../../src/logging/logger.js';
import type { AuditRecord, AuditRecorder } from '../../src/store/audit-trail.js';
import type { IngestOutcome, InstanceSink } from '../../src/store/instance-sink.js';
import { echoscu } from '../helpers/dcmtk.js';
import { makeImageFile } from '../helpers/dicom-factory.js';
import {
  EXPLICIT_VR_LITTLE_ENDIAN,
  datasetBytesOfPart10,
  openAssociation,
  type RawAssociation,
} from '../helpers/raw-scu.js';
import { waitUntil } from '../helpers/wait-until.js';

// The plain listener's audit events: a caller the policy does not know is a rejected association and a
// security event; a wrong called AE is only a rejected association; an audit trail that throws never fails DICOM.

const sink: InstanceSink = {
  begin: () => ({
    kind: 'transfer',
    transfer: {
      writable: new Writable({ write: (_chunk, _encoding, callback) => callback() }),
      complete: async (): Promise<IngestOutcome> => ({ kind: 'stored', studyInstanceUid: '1.2.3', path: '/dev/null' }),
      abandon: async () => undefined,
    },
  }),
};

async function scpWith(audit: AuditRecorder, log = new PassThrough()) {
  const config = {
    ...dicomSchema.parse({ host: '127.0.0.1', callers: { allowAny: false, allowed: [{ aeTitle: 'MODALITY1' }] } }),
    port: 0,
  };
  const scp = new StorageScp({
    config,
    sink,
    logger: createLogger({ level: 'warn', format: 'json', stream: log }),
    audit,
  });
  const { port } = await scp.start();
  return { scp, port };
}

test('a calling AE not in dicom.callers.allowed: association.rejected and security caller.rejected, tls false', async (t) => {
  const rows: AuditRecord[] = [];
  const { scp, port } = await scpWith({ record: (e) => rows.push(e) });
  t.teardown(() => scp.stop(0));
  const result = await echoscu(port, { callingAe: 'STRANGER' });
  t.not(result.code, 0);
  t.deepEqual(
    rows.map((r) => `${r.category}/${r.action}/${r.outcome}`),
    ['dicom/association.rejected/failure', 'security/caller.rejected/failure'],
  );
  t.like(rows[0], { user: 'STRANGER', address: '127.0.0.1', target: 'called CXR_GATEWAY' });
  t.deepEqual(rows[0]?.after, { callingAe: 'STRANGER', calledAe: 'CXR_GATEWAY', address: '127.0.0.1', tls: false });
  t.regex(rows[1]?.detail ?? '', /not in dicom\.callers\.allowed/);
});

test('a wrong called AE is a rejected association, not a security event', async (t) => {
  const rows: AuditRecord[] = [];
  const { scp, port } = await scpWith({ record: (e) => rows.push(e) });
  t.teardown(() => scp.stop(0));
  const result = await echoscu(port, { callingAe: 'MODALITY1', calledAe: 'SOMEONE_ELSE' });
  t.not(result.code, 0);
  t.deepEqual(
    rows.map((r) => r.action),
    ['association.rejected'],
  );
  t.regex(rows[0]?.detail ?? '', /called AE 'SOMEONE_ELSE' is not ours/);
});

test('an audit trail that throws is logged (DIMSE-1404) and the association goes on', async (t) => {
  const log = new PassThrough();
  let text = '';
  log.on('data', (d: Buffer) => (text += d.toString()));
  const { scp, port } = await scpWith(
    {
      record: () => {
        throw new Error('database is locked');
      },
    },
    log,
  );
  t.teardown(() => scp.stop(0));
  const result = await echoscu(port, { callingAe: 'MODALITY1' });
  t.is(result.code, 0, result.stderr);
  t.regex(text, /"event":"DIMSE-1404"/);
  t.regex(text, /database is locked/);
});

test('an association aborted after one stored instance still gets its study.received row', async (t) => {
  const rows: AuditRecord[] = [];
  const { scp, port } = await scpWith({ record: (e) => rows.push(e) });
  t.teardown(() => scp.stop(0));
  const image = makeImageFile({});
  const association = (await openAssociation({
    host: '127.0.0.1',
    port,
    callingAe: 'MODALITY1',
    calledAe: 'CXR_GATEWAY',
    contexts: [{ abstractSyntax: image.sopClassUid, transferSyntaxes: [EXPLICIT_VR_LITTLE_ENDIAN] }],
  })) as RawAssociation;
  const stored = await association.store({
    sopClassUid: image.sopClassUid,
    sopInstanceUid: image.sopInstanceUid,
    dataset: datasetBytesOfPart10(image.bytes).dataset,
  });
  t.is(stored.status, 0);
  association.abort();
  await waitUntil(() => rows.some((r) => r.action === 'study.received'), 'the study.received row');
  t.like(
    rows.find((r) => r.action === 'study.received'),
    { target: 'study 1.2.3', after: { instances: 1, sopClassUids: [image.sopClassUid], callingAe: 'MODALITY1' } },
  );
});
