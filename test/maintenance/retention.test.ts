import test from 'ava';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { purgeFinishedStudies } from '../../src/maintenance/retention.js';
import { JobStore } from '../../src/store/job-store.js';
import { PipelineStore } from '../../src/store/pipeline-store.js';

function setup() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'retention-'));
  const store = JobStore.open(path.join(dir, 'db', 'jobs.sqlite'));
  const pipeline = new PipelineStore(store.connection);
  const spool = path.join(dir, 'spool');
  const addStudy = (uid: string, receivedAt: number) => {
    const file = path.join(spool, 'studies', uid, '1.2.dcm');
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, 'x');
    mkdirSync(path.join(spool, 'outputs', uid), { recursive: true });
    store.recordInstance({
      sopInstanceUid: `${uid}.1`,
      sopClassUid: '1.2.840.10008.5.1.4.1.1.1.1',
      studyInstanceUid: uid,
      seriesInstanceUid: undefined,
      transferSyntaxUid: '1.2.840.10008.1.2.1',
      path: file,
      sizeBytes: 1,
      callingAe: 'A',
      calledAe: 'B',
      sourceIp: '127.0.0.1',
      associationId: 'x',
      attributes: {},
      receivedAt,
    });
    const [job] = store.promoteQuietStudies(receivedAt, receivedAt);
    return job?.jobId ?? 0;
  };
  return { store, pipeline, spool, addStudy };
}

test('finished, delivered studies older than the cutoff are deleted; undelivered ones never are', (t) => {
  const { store, pipeline, spool, addStudy } = setup();
  t.teardown(() => store.close());
  const done = addStudy('1.1', 1000);
  pipeline.routeJob(done, { rule: 'r', action: '{}', priority: 'normal', images: [] }, 1000);
  pipeline.finishProcessing(done, { deliveries: [{ kind: 'pacs', destination: 'p', payload: '{}' }] }, 1000);
  const delivered = pipeline.deliveries(done)[0];
  pipeline.recordDelivery(delivered?.id ?? 0, { kind: 'delivered' }, 2000);

  const parked = addStudy('2.2', 1000);
  pipeline.routeJob(parked, { rule: 'r', action: '{}', priority: 'normal', images: [] }, 1000);
  pipeline.finishProcessing(parked, { deliveries: [{ kind: 'ris', destination: 'r', payload: '{}' }] }, 1000);
  pipeline.recordDelivery(pipeline.deliveries(parked)[0]?.id ?? 0, { kind: 'parked', reason: 'AR' }, 2000);

  const recent = addStudy('3.3', 1000);
  pipeline.routeJob(recent, { ignored: 'no rule' }, 50_000);

  t.deepEqual(purgeFinishedStudies(store.connection, spool, 10_000), { studiesPurged: 1 });
  t.false(existsSync(path.join(spool, 'studies', '1.1')));
  t.false(existsSync(path.join(spool, 'outputs', '1.1')));
  t.true(existsSync(path.join(spool, 'studies', '2.2')), 'a parked delivery keeps its study');
  t.true(existsSync(path.join(spool, 'studies', '3.3')), 'finished after the cutoff');
  t.is(store.listInstances('1.1').length, 0);
});
