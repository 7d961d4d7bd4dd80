import test from 'ava';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { JobStore, type ReceivedInstance } from '../../src/store/job-store.js';

const file = () => path.join(mkdtempSync(path.join(os.tmpdir(), 'store-')), 'db', 'jobs.sqlite');
let n = 0;
function instance(studyInstanceUid: string, receivedAt: number, sopInstanceUid = `1.2.826.${(n += 1)}`): ReceivedInstance {
  return {
    sopInstanceUid,
    sopClassUid: '1.2.840.10008.5.1.4.1.1.1.1',
    studyInstanceUid,
    seriesInstanceUid: '1.2.3.9',
    transferSyntaxUid: '1.2.840.10008.1.2.1',
    path: `/spool/${studyInstanceUid}/${sopInstanceUid}.dcm`,
    sizeBytes: 100,
    callingAe: 'DX1',
    calledAe: 'CXR_GATEWAY',
    sourceIp: '127.0.0.1',
    associationId: 'a1',
    attributes: { modality: 'DX' },
    receivedAt,
  };
}

test('a study becomes one ready job only after its quiet period', (t) => {
  const store = JobStore.open(file());
  t.teardown(() => store.close());
  store.recordInstance(instance('1.1', 1000));
  store.recordInstance(instance('1.1', 5000));
  t.deepEqual(store.promoteQuietStudies(4999, 15000), []);
  const ready = store.promoteQuietStudies(5000, 15000);
  t.like(ready, [{ studyInstanceUid: '1.1', revision: 0, instanceCount: 2 }]);
  t.deepEqual(store.promoteQuietStudies(10_000, 20000), [], 'promoted once');
  t.like(store.listJobs(), [{ studyInstanceUid: '1.1', state: 'ready', instanceCount: 2 }]);
});

test('the same SOP instance twice is recorded once and does not reopen its study', (t) => {
  const store = JobStore.open(file());
  t.teardown(() => store.close());
  const first = instance('2.1', 1000, '2.1.1');
  t.like(store.recordInstance(first), { kind: 'stored' });
  store.promoteQuietStudies(2000, 2000);
  t.like(store.recordInstance({ ...first, receivedAt: 3000 }), { kind: 'duplicate', storedUnderStudy: '2.1' });
  t.like(store.listStudies(), [{ state: 'ready', instanceCount: 1, revision: 0 }]);
});

test('a new instance for a study with a job reopens it under the next revision', (t) => {
  const store = JobStore.open(file());
  t.teardown(() => store.close());
  store.recordInstance(instance('3.1', 1000));
  store.promoteQuietStudies(1000, 1000);
  t.like(store.recordInstance(instance('3.1', 9000)), { kind: 'stored', studyReopened: true });
  t.like(store.listStudies(), [{ state: 'receiving', revision: 1, instanceCount: 2 }]);
  t.like(store.promoteQuietStudies(9000, 9000), [{ revision: 1, instanceCount: 2 }]);
  t.is(store.listJobs().length, 2);
});

test('what is committed survives closing the file, and a read-only reader sees it while the writer is open', (t) => {
  const location = file();
  const writer = JobStore.open(location);
  writer.recordInstance(instance('4.1', 1000));
  const reader = JobStore.openReadOnly(location);
  t.like(reader.listStudies(), [{ studyInstanceUid: '4.1' }]);
  reader.close();
  writer.close();
  const reopened = JobStore.open(location);
  t.teardown(() => reopened.close());
  t.is(reopened.listInstances('4.1').length, 1);
  t.is(reopened.countStudies('receiving'), 1);
});
