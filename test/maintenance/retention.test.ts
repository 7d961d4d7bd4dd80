import test from 'ava';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { purgeFinishedStudies, purgeStudy } from '../../src/maintenance/retention.js';
import { openStore, type StoreLocation } from '../../src/store/open-store.js';
import { PipelineStore } from '../../src/store/pipeline-store.js';
import { engineTests } from '../store/engines.js';
import { receivedInstance } from '../helpers/received-instance.js';
import { otherSession, startPostgres } from '../helpers/postgres.js';

const forEachEngine = engineTests(test);

function setup(location?: StoreLocation) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'retention-'));
  const { store } = openStore(location ?? { engine: 'sqlite', file: path.join(dir, 'db', 'jobs.sqlite') }, 'write');
  const pipeline = new PipelineStore(store.connection);
  const spool = path.join(dir, 'spool');
  const fileOf = (uid: string, sop: string) => {
    const file = path.join(spool, 'studies', uid, `${sop}.dcm`);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, 'x');
    return file;
  };
  const addStudy = (uid: string, receivedAt: number) => {
    store.recordInstance(
      receivedInstance(uid, receivedAt, { sopInstanceUid: `${uid}.1`, path: fileOf(uid, `${uid}.1`) }),
    );
    mkdirSync(path.join(spool, 'outputs', uid), { recursive: true });
    const [job] = store.promoteQuietStudies(receivedAt, receivedAt);
    return job?.jobId ?? 0;
  };
  /** A study whose one job is done and its one delivery delivered at 2000, with its outputs under r0. */
  const deliveredStudy = (uid: string) => {
    const jobId = addStudy(uid, 1000);
    pipeline.routeJob(jobId, { rule: 'r', action: '{}', priority: 'normal', images: [] }, 1000);
    pipeline.finishProcessing(jobId, { deliveries: [{ kind: 'pacs', destination: 'p', payload: '{}' }] }, 1000);
    pipeline.recordDelivery(pipeline.deliveries(jobId)[0]?.id ?? 0, { kind: 'delivered' }, 2000);
    const out = path.join(spool, 'outputs', uid, 'r0');
    mkdirSync(out, { recursive: true });
    writeFileSync(path.join(out, 'sc.dcm'), 'x');
    return jobId;
  };
  return { store, pipeline, spool, addStudy, fileOf, deliveredStudy };
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

// Images of a study may arrive while retention runs, on this node or, on a shared spool, on another one (issue 20).
forEachEngine(
  "an image renamed into the study's folder, its row not committed yet (being acknowledged), keeps its file; recorded after, it reopens the study",
  (t, location) => {
    const { store, spool, fileOf, deliveredStudy } = setup(location);
    t.teardown(() => store.close());
    deliveredStudy('4.4');
    const first = path.join(spool, 'studies', '4.4', '4.4.1.dcm');
    // Spool.commit renamed it into place; its recordInstance comes after the purge.
    const arriving = fileOf('4.4', '4.4.2');

    t.deepEqual(purgeFinishedStudies(store.connection, spool, 10_000), { studiesPurged: 1 });
    t.false(existsSync(first), "the purged row's file is gone");
    t.false(existsSync(path.join(spool, 'outputs', '4.4')), 'the outputs and their emptied folder are gone');
    t.true(existsSync(arriving), 'the file being acknowledged is kept, and its folder');

    const outcome = store.recordInstance(receivedInstance('4.4', 20_000, { sopInstanceUid: '4.4.2', path: arriving }));
    t.deepEqual(outcome, { kind: 'stored', studyReopened: true });
    t.deepEqual(
      store.listInstances('4.4').map((i) => i.path),
      [arriving],
    );
  },
);

forEachEngine(
  'a study an image reopened after retention read its candidates is left whole: checked again in the transaction',
  (t, location) => {
    const { store, spool, fileOf, deliveredStudy } = setup(location);
    t.teardown(() => store.close());
    deliveredStudy('5.5');
    const late = fileOf('5.5', '5.5.2');
    store.recordInstance(receivedInstance('5.5', 20_000, { sopInstanceUid: '5.5.2', path: late }));

    t.false(purgeStudy(store.connection, spool, '5.5', 10_000));
    t.is(store.listInstances('5.5').length, 2);
    t.true(existsSync(path.join(spool, 'studies', '5.5', '5.5.1.dcm')));
    t.true(existsSync(late));
    t.true(existsSync(path.join(spool, 'outputs', '5.5', 'r0', 'sc.dcm')));
    t.false(purgeStudy(store.connection, spool, '9.9.9', 10_000), 'an unknown study: nothing to purge');
  },
);

forEachEngine(
  "outputs go per revision of the purged jobs: a later revision's folder, and a row's file outside the spool, stay",
  (t, location) => {
    const { store, spool, deliveredStudy } = setup(location);
    t.teardown(() => store.close());
    deliveredStudy('6.6');
    const later = path.join(spool, 'outputs', '6.6', 'r1');
    mkdirSync(later, { recursive: true });
    const outside = path.join(mkdtempSync(path.join(os.tmpdir(), 'retention-outside-')), '6.6.9.dcm');
    writeFileSync(outside, 'x');
    store.recordInstance(receivedInstance('6.7', 1000, { sopInstanceUid: '6.7.1', path: outside }));
    store.promoteQuietStudies(1000, 1000);
    const [job] = store.listJobs().filter((j) => j.studyInstanceUid === '6.7');
    new PipelineStore(store.connection).routeJob(job?.id ?? 0, { ignored: 'no rule' }, 1500);

    t.deepEqual(purgeFinishedStudies(store.connection, spool, 10_000), { studiesPurged: 2 });
    t.false(existsSync(path.join(spool, 'outputs', '6.6', 'r0')));
    t.true(existsSync(later), 'r1 is not a revision retention purged');
    t.true(existsSync(outside), "not under the spool: not retention's to delete");
  },
);

// On PostgreSQL another node records an image of the study while this one purges it. Without the row lock the purge
// would read the study as still finished, wait for that node's commit only at its own UPDATE, and then mark the study
// purged over the reopened one: the new image's row kept, but its study never assembled again.
test('[postgres] a node recording an image of the study while another purges it: the purge waits for it and leaves the study whole', async (t) => {
  const cluster = await startPostgres();
  t.teardown(() => cluster.stop());
  const url = await cluster.createDatabase();
  const { store, spool, fileOf, deliveredStudy } = setup({
    engine: 'postgres',
    url,
    statementTimeoutMs: 30_000,
    connectTimeoutMs: 10_000,
  });
  t.teardown(() => store.close());
  deliveredStudy('7.7');
  const late = fileOf('7.7', '7.7.2');
  // The other node's recordInstance, its transaction held open for a moment (psql: another process, another session).
  const other = await otherSession(
    url,
    `INSERT INTO instances (sop_instance_uid, sop_class_uid, study_instance_uid, series_instance_uid,
       transfer_syntax_uid, path, size_bytes, calling_ae, called_ae, source_ip, association_id, attributes, received_at)
       VALUES ('7.7.2', '1.2.840.10008.5.1.4.1.1.1.1', '7.7', NULL, '1.2.840.10008.1.2.1', '${late}', 1, 'A', 'B',
         '127.0.0.1', 'y', '{}', 20000);
     UPDATE studies SET instance_count = instance_count + 1, last_received_at = 20000, state = 'receiving',
       revision = revision + 1 WHERE study_instance_uid = '7.7'`,
    { table: 'studies', holdSeconds: 1.5, db: store.connection },
  );

  t.false(purgeStudy(store.connection, spool, '7.7', 10_000), 'reopened by the time the purge holds the row');
  t.is(await other.exited, 0, other.stderr());
  t.like(
    store.listStudies().find((st) => st.studyInstanceUid === '7.7'),
    { state: 'receiving', revision: 1 },
  );
  t.is(store.listInstances('7.7').length, 2);
  t.true(existsSync(path.join(spool, 'studies', '7.7', '7.7.1.dcm')));
  t.true(existsSync(late));
});
