import test from 'ava';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { purgeFinishedStudies } from '../../src/maintenance/retention.js';
import { StoreRefusal } from '../../src/store/console-queries.js';
import { HELD_BACK, PARKED_JOB } from '../../src/store/pipeline-store.js';
import { ACTOR, consoleFixture, deliver, type ConsoleFixture } from './console-fixtures.js';
import { engineTests } from './engines.js';

const forEachEngine = engineTests(test);

const PAGE = { offset: 0, limit: 50 };

/** A job whose PACS delivery parked (its RIS report held back with it). */
function parkedJob(f: ConsoleFixture, uid: string, at: number, pacs = 'pacs') {
  const job = f.study({ uid, at, accession: `ACC-${uid}`, pacs: [pacs] });
  const pacsId = job.deliveries[`pacs:${pacs}`] ?? -1;
  const risId = job.deliveries['ris:ris'] ?? -1;
  deliver(f, pacsId, { kind: 'parked', reason: 'pacs-refused-object: the PACS answered 0xA900' }, at + 10);
  return { ...job, pacsId, risId };
}

function refusal(t: import('ava').ExecutionContext, fn: () => unknown, status: number, code: string): StoreRefusal {
  const error = t.throws(fn, { instanceOf: StoreRefusal });
  t.like(error, { status, code });
  return error as StoreRefusal;
}

forEachEngine(
  'recordDelivery writes one attempt row per outcome; a parked PACS delivery parks its RIS report with a row saying why',
  (t, location) => {
    const f = consoleFixture('console-store-', { location });
    t.teardown(() => f.store.close());
    const { deliveries } = f.study({ uid: '1.1', at: 1000 });
    const pacs = deliveries['pacs:pacs'] ?? -1;
    const ris = deliveries['ris:ris'] ?? -1;
    deliver(f, pacs, { kind: 'retry', reason: 'connection-refused: the PACS refused', nextAttemptAt: 2000 }, 1100);
    deliver(f, pacs, { kind: 'parked', reason: 'pacs-refused-object: 0xA900' }, 2100);
    const story = f.console.studyRows('1.1');
    const [job] = story?.jobs ?? [];
    t.like(job, { state: 'parked', lastError: PARKED_JOB });
    const byId = new Map(job?.deliveries.map((d) => [d.id, d]));
    t.deepEqual(
      byId.get(pacs)?.history.map((h) => [h.attempt, h.at, h.outcome, h.detail]),
      [
        [1, 1100, 'retry', 'connection-refused: the PACS refused'],
        [2, 2100, 'parked', 'pacs-refused-object: 0xA900'],
      ],
    );
    t.deepEqual(
      byId.get(ris)?.history.map((h) => [h.attempt, h.outcome, h.detail]),
      [[0, 'parked', HELD_BACK]],
    );

    const other = f.study({ uid: '1.2', at: 3000, ris: [] });
    deliver(f, other.deliveries['pacs:pacs'] ?? -1, { kind: 'delivered' }, 3100);
    t.like(f.console.delivery(other.deliveries['pacs:pacs'] ?? -1), { state: 'delivered', attempts: 1 });
    t.like(f.console.studyRows('1.2')?.jobs[0]?.deliveries[0]?.history, [
      { attempt: 1, outcome: 'delivered', detail: null },
    ]);
  },
);

forEachEngine(
  'studies, jobs and deliveries filter in SQL (state, destination, AE, accession, time) and page with the total',
  (t, location) => {
    const f = consoleFixture('console-store-', { location });
    t.teardown(() => f.store.close());
    for (let i = 0; i < 5; i += 1)
      f.study({ uid: `2.${i}`, at: 1000 + i * 100, ae: i < 3 ? 'DX1' : 'CR2', accession: `A${i}` });
    const parked = parkedJob(f, '2.9', 5000, 'pacs-b');

    const dx = f.console.studies({ ...PAGE, ae: 'DX1' });
    t.is(dx.total, 4);
    t.deepEqual(
      dx.items.map((s) => s.studyInstanceUid),
      ['2.9', '2.2', '2.1', '2.0'],
      'newest first',
    );
    t.like(dx.items[1], {
      accessionNumber: 'A2',
      modality: 'DX',
      studyDate: '20261206',
      callingAe: 'DX1',
      latestJob: { state: 'delivering', rule: 'chest', revision: 0 },
    });
    t.regex(dx.items[1]?.latestJob?.firstResult ?? '', /abnormal/);
    t.deepEqual(
      f.console.studies({ ...PAGE, accession: 'A4' }).items.map((s) => s.studyInstanceUid),
      ['2.4'],
    );
    const paged = f.console.studies({ offset: 2, limit: 2 });
    t.like(paged, { total: 6, offset: 2, limit: 2 });
    t.deepEqual(
      paged.items.map((s) => s.studyInstanceUid),
      ['2.3', '2.2'],
    );
    t.is(f.console.studies({ ...PAGE, since: 1200, until: 1400 }).total, 2);

    const parkedJobs = f.console.jobs({ ...PAGE, state: 'parked' });
    t.is(parkedJobs.total, 1);
    t.like(parkedJobs.items[0], {
      id: parked.jobId,
      accessionNumber: 'ACC-2.9',
      callingAe: 'DX1',
      deliveries: { pending: 0, delivered: 0, parked: 2, discarded: 0 },
    });
    t.is(f.console.jobs({ ...PAGE, destination: 'pacs-b' }).total, 1);
    t.is(f.console.jobs({ ...PAGE, destination: 'pacs' }).total, 5);
    t.is(f.console.jobs({ ...PAGE, ae: 'CR2', accession: 'A3' }).total, 1);
    t.is(f.console.jobs({ ...PAGE, ae: 'CR2', accession: 'A0' }).total, 0);
    t.is(f.console.jobs({ ...PAGE, studyInstanceUid: '2.1' }).items[0]?.studyInstanceUid, '2.1');
    t.is(f.console.jobs({ offset: 0, limit: 2 }).items.length, 2);

    t.deepEqual(
      f.console.deliveries({ ...PAGE, state: 'parked' }).items.map((d) => [d.id, d.kind, d.destination]),
      [
        [parked.risId, 'ris', 'ris'],
        [parked.pacsId, 'pacs', 'pacs-b'],
      ],
    );
    t.is(f.console.deliveries({ ...PAGE, kind: 'ris' }).total, 6);
    t.is(f.console.deliveries({ ...PAGE, destination: 'pacs-b', state: 'parked' }).total, 1);
    t.is(f.console.deliveries({ ...PAGE, studyInstanceUid: '2.0' }).total, 2);
    t.is(f.console.deliveries({ ...PAGE, since: 5010 }).total, 2, 'updated when parked');
    t.is(f.console.delivery(999), undefined);
  },
);

forEachEngine(
  'releasing a parked PACS delivery makes it and its held-back report due now, the job delivering again, with attempt rows and one audit entry',
  (t, location) => {
    const f = consoleFixture('console-store-', { location });
    t.teardown(() => f.store.close());
    const job = parkedJob(f, '3.1', 1000);
    const released = f.console.releaseDelivery(job.pacsId, ACTOR, 9000);
    t.deepEqual(
      released.map((d) => [d.id, d.state, d.nextAttemptAt]),
      [
        [job.pacsId, 'pending', 9000],
        [job.risId, 'pending', 9000],
      ],
    );
    t.is(released[0]?.attempts, 1, 'the count of tries is kept');
    const [story] = f.console.studyRows('3.1')?.jobs ?? [];
    t.like(story, { state: 'delivering', finishedAt: null, lastError: null });
    t.like(story?.deliveries.find((d) => d.id === job.pacsId)?.history.at(-1), {
      outcome: 'released',
      at: 9000,
      detail: 'released by alice (10.0.0.7)',
    });
    t.regex(story?.deliveries.find((d) => d.id === job.risId)?.history.at(-1)?.detail ?? '', /with PACS delivery/);
    t.deepEqual(
      f.pipeline.dueDeliveries(9000).map((d) => d.id),
      [job.pacsId],
      'the report waits for the PACS',
    );
    deliver(f, job.pacsId, { kind: 'delivered' }, 9100);
    t.deepEqual(
      f.pipeline.dueDeliveries(9100).map((d) => d.id),
      [job.risId],
    );
    deliver(f, job.risId, { kind: 'delivered' }, 9200);
    t.like(f.store.listJobs()[0], { state: 'done', lastError: null });

    const audit = f.audit.list({ offset: 0, limit: 10 });
    t.is(audit.total, 1);
    t.like(audit.items[0], {
      at: 9000,
      category: 'admin',
      action: 'delivery.release',
      user: 'alice',
      role: 'admin',
      address: '10.0.0.7',
      target: `delivery ${job.pacsId}`,
      outcome: 'success',
    });
    t.like(JSON.parse(audit.items[0]?.before ?? 'null'), { state: 'parked', attempts: 1 });
    t.deepEqual(JSON.parse(audit.items[0]?.after ?? 'null'), { state: 'pending', released: [job.pacsId, job.risId] });
  },
);

forEachEngine(
  'release refuses an unknown id (404), a delivery that is not parked (409, naming its state) and a report held back by a parked PACS delivery (409); nothing changes',
  (t, location) => {
    const f = consoleFixture('console-store-', { location });
    t.teardown(() => f.store.close());
    const job = parkedJob(f, '4.1', 1000);
    const done = f.study({ uid: '4.2', at: 2000, ris: [] });
    deliver(f, done.deliveries['pacs:pacs'] ?? -1, { kind: 'delivered' }, 2100);
    const before = f.dump();
    refusal(t, () => f.console.releaseDelivery(999, ACTOR, 9000), 404, 'DELIVERY_NOT_FOUND');
    const notParked = refusal(
      t,
      () => f.console.releaseDelivery(done.deliveries['pacs:pacs'] ?? -1, ACTOR, 9000),
      409,
      'DELIVERY_NOT_PARKED',
    );
    t.regex(notParked.message, /is delivered, not parked/);
    const held = refusal(t, () => f.console.releaseDelivery(job.risId, ACTOR, 9000), 409, 'DELIVERY_HELD_BACK');
    t.regex(held.message, new RegExp(`release delivery ${job.pacsId}`));
    refusal(t, () => f.console.discardDelivery(999, 'gone', ACTOR, 9000), 404, 'DELIVERY_NOT_FOUND');
    refusal(
      t,
      () => f.console.discardDelivery(done.deliveries['pacs:pacs'] ?? -1, 'x', ACTOR, 9000),
      409,
      'DELIVERY_NOT_PARKED',
    );
    refusal(t, () => f.console.discardDelivery(job.pacsId, '   ', ACTOR, 9000), 400, 'REASON_REQUIRED');
    refusal(t, () => f.console.discardDelivery(job.pacsId, 'x'.repeat(501), ACTOR, 9000), 400, 'REASON_REQUIRED');
    t.is(f.dump(), before, 'no row of any table changed, the audit trail included');
  },
);

forEachEngine(
  'releasing a destination releases every parked delivery to it (reports with their PACS delivery) in one audit entry; none parked: []',
  (t, location) => {
    const f = consoleFixture('console-store-', { location });
    t.teardown(() => f.store.close());
    const a = parkedJob(f, '5.1', 1000);
    const b = parkedJob(f, '5.2', 2000);
    const elsewhere = parkedJob(f, '5.3', 3000, 'pacs-b');
    // The RIS destination: its only parked reports are held back by parked PACS deliveries, so none is released.
    t.deepEqual(f.console.releaseDestination('ris', ACTOR, 8000), []);
    const before = f.dump();
    t.deepEqual(f.console.releaseDestination('nowhere', ACTOR, 8000), []);
    t.is(f.dump(), before, 'nothing to release: not even an audit entry');

    const released = f.console.releaseDestination('pacs', ACTOR, 9000);
    t.deepEqual(
      released.map((d) => d.id),
      [a.pacsId, a.risId, b.pacsId, b.risId],
    );
    t.like(f.console.delivery(elsewhere.pacsId), { state: 'parked' });
    const audit = f.audit.list({ offset: 0, limit: 10 });
    t.is(audit.total, 1);
    t.like(audit.items[0], { action: 'delivery.release-destination', target: 'destination pacs' });
    t.deepEqual(JSON.parse(audit.items[0]?.after ?? 'null'), { released: [a.pacsId, a.risId, b.pacsId, b.risId] });
    t.deepEqual(
      f.console
        .jobs({ ...PAGE, state: 'delivering' })
        .items.map((j) => j.id)
        .sort(),
      [a.jobId, b.jobId].sort(),
    );
  },
);

forEachEngine(
  'discarding settles the job: parked while a report is still held back, then done with the job saying what was discarded and why',
  (t, location) => {
    const f = consoleFixture('console-store-', { location });
    t.teardown(() => f.store.close());
    const job = parkedJob(f, '6.1', 1000);
    const pacs = f.console.discardDelivery(job.pacsId, '  sent by hand from the modality  ', ACTOR, 9000);
    t.like(pacs, { state: 'discarded', lastError: 'discarded by alice: sent by hand from the modality', attempts: 1 });
    t.like(f.store.listJobs()[0], { state: 'parked' });
    t.like(
      f.console
        .studyRows('6.1')
        ?.jobs[0]?.deliveries.find((d) => d.id === job.pacsId)
        ?.history.at(-1),
      {
        outcome: 'discarded',
        detail: 'discarded by alice: sent by hand from the modality',
      },
    );
    const audit = f.audit.list({ offset: 0, limit: 10, action: 'delivery.discard' });
    t.like(audit.items[0], { target: `delivery ${job.pacsId}`, detail: 'sent by hand from the modality' });
    t.like(JSON.parse(audit.items[0]?.after ?? 'null'), { state: 'discarded', job: 'parked' });

    f.console.discardDelivery(job.risId, 'report typed in the RIS', ACTOR, 9100);
    const [settled] = f.store.listJobs();
    t.like(settled, { state: 'done', finishedAt: 9100 });
    t.is(settled?.lastError, `delivery ${job.risId} (ris to 'ris') discarded by alice: report typed in the RIS`);
    t.deepEqual(f.pipeline.dueDeliveries(10_000), []);
    t.like(f.console.jobs({ ...PAGE }).items[0], { deliveries: { discarded: 2, parked: 0 } });
    // Settled means settled: retention may purge the study like one whose deliveries all went out.
    t.deepEqual(purgeFinishedStudies(f.store.connection, mkdtempSync(path.join(os.tmpdir(), 'spool-')), 10_000), {
      studiesPurged: 1,
    });
  },
);

forEachEngine(
  'a report whose PACS delivery was discarded can be released and goes out (nothing parked stays stuck)',
  (t, location) => {
    const f = consoleFixture('console-store-', { location });
    t.teardown(() => f.store.close());
    const job = parkedJob(f, '7.1', 1000);
    f.console.discardDelivery(job.pacsId, 'images sent by hand', ACTOR, 9000);
    f.console.releaseDelivery(job.risId, ACTOR, 9100);
    t.deepEqual(
      f.pipeline.dueDeliveries(9100).map((d) => d.id),
      [job.risId],
    );
    deliver(f, job.risId, { kind: 'delivered' }, 9200);
    t.like(f.store.listJobs()[0], { state: 'done' });
  },
);

forEachEngine(
  'reprocess makes a ready job of the next revision; refuses an unknown (404), purged (409), receiving or running (409) study, changing nothing',
  (t, location) => {
    const f = consoleFixture('console-store-', { location });
    t.teardown(() => f.store.close());
    const done = f.study({ uid: '8.1', at: 1000, ris: [] });
    deliver(f, done.deliveries['pacs:pacs'] ?? -1, { kind: 'delivered' }, 1100);
    f.study({ uid: '8.2', at: 2000 }); // delivering
    f.study({ uid: '8.3', at: 3000, processingOnly: true }); // processing
    const purged = f.study({ uid: '8.4', at: 4000, ris: [] });
    deliver(f, purged.deliveries['pacs:pacs'] ?? -1, { kind: 'delivered' }, 4100);
    f.store.connection.prepare(`UPDATE studies SET state = 'purged' WHERE study_instance_uid = '8.4'`).run();
    f.store.recordInstance({
      sopInstanceUid: '8.5.1',
      sopClassUid: '1.2.840.10008.5.1.4.1.1.1.1',
      studyInstanceUid: '8.5',
      seriesInstanceUid: undefined,
      transferSyntaxUid: '1.2.840.10008.1.2.1',
      path: '/spool/8.5.1.dcm',
      sizeBytes: 1,
      callingAe: 'DX1',
      calledAe: 'CXR_GATEWAY',
      sourceIp: '10.1.1.1',
      associationId: 'a2',
      attributes: { modality: 'DX' },
      receivedAt: 5000,
    });

    const before = f.dump();
    refusal(t, () => f.console.reprocessStudy('9.9.9', ACTOR, 9000), 404, 'STUDY_NOT_FOUND');
    refusal(t, () => f.console.reprocessStudy('8.4', ACTOR, 9000), 409, 'STUDY_PURGED');
    t.regex(
      refusal(t, () => f.console.reprocessStudy('8.2', ACTOR, 9000), 409, 'STUDY_BUSY').message,
      /still delivering/,
    );
    t.regex(
      refusal(t, () => f.console.reprocessStudy('8.3', ACTOR, 9000), 409, 'STUDY_BUSY').message,
      /still processing/,
    );
    t.regex(
      refusal(t, () => f.console.reprocessStudy('8.5', ACTOR, 9000), 409, 'STUDY_BUSY').message,
      /still receiving/,
    );
    t.is(f.dump(), before);

    const again = f.console.reprocessStudy('8.1', ACTOR, 9000);
    t.is(again.revision, 1);
    t.deepEqual(f.pipeline.jobsToRoute(), [{ jobId: again.jobId, studyInstanceUid: '8.1', revision: 1 }]);
    const story = f.console.studyRows('8.1');
    t.like(story?.study, { revision: 1, state: 'ready' });
    t.deepEqual(
      story?.jobs.map((j) => [j.revision, j.state]),
      [
        [1, 'ready'],
        [0, 'done'],
      ],
    );
    const [entry] = f.audit.list({ offset: 0, limit: 10, action: 'study.reprocess' }).items;
    t.like(entry, { target: 'study 8.1', user: 'alice' });
    t.deepEqual(JSON.parse(entry?.after ?? 'null'), { revision: 1, jobId: again.jobId });
    t.is(
      f.store.promoteQuietStudies(100_000, 100_000).length,
      1,
      'only the receiving study 8.5: 8.1 is not promoted twice',
    );
  },
);

forEachEngine(
  "one study's rows: instances, jobs newest first with images, deliveries and their history; unknown: undefined",
  (t, location) => {
    const f = consoleFixture('console-store-', { location });
    t.teardown(() => f.store.close());
    const job = parkedJob(f, '9.1', 1000);
    t.is(f.console.studyRows('nope'), undefined);
    t.is(f.console.studyOfJob(job.jobId), '9.1');
    t.is(f.console.studyOfJob(job.jobId + 1000), undefined);
    t.is(f.console.deliveries({ offset: 0, limit: 10 }).items[0]?.accessionNumber, 'ACC-9.1');
    const story = f.console.studyRows('9.1');
    t.like(story?.study, { studyInstanceUid: '9.1', accessionNumber: 'ACC-9.1', instanceCount: 1, state: 'ready' });
    t.like(story?.instances, [{ sopInstanceUid: '9.1.1', callingAe: 'DX1', sourceIp: '10.1.1.1' }]);
    t.regex(story?.instances[0]?.attributes ?? '', /"viewPosition":"PA"/);
    t.like(story?.jobs[0], { id: job.jobId, rule: 'chest', images: [{ sopInstanceUid: '9.1.1', state: 'written' }] });
    t.regex(story?.jobs[0]?.action ?? '', /"pacs":\["pacs"\]/);
    t.deepEqual(
      story?.jobs[0]?.deliveries.map((d) => [d.kind, d.state, d.history.length]),
      [
        ['pacs', 'parked', 1],
        ['ris', 'parked', 1],
      ],
    );
  },
);

forEachEngine(
  'destination activity and throughput: last success and failure per destination, pending and parked counts',
  (t, location) => {
    const f = consoleFixture('console-store-', { location });
    t.teardown(() => f.store.close());
    const ok = f.study({ uid: '10.1', at: 1000, ris: [] });
    deliver(f, ok.deliveries['pacs:pacs'] ?? -1, { kind: 'delivered' }, 1500);
    const failing = f.study({ uid: '10.2', at: 2000, ris: [] });
    deliver(
      f,
      failing.deliveries['pacs:pacs'] ?? -1,
      { kind: 'retry', reason: 'timeout: no answer', nextAttemptAt: 3000 },
      2500,
    );
    parkedJob(f, '10.3', 4000, 'pacs-b');
    const activity = f.console.destinationActivity();
    t.deepEqual(activity, [
      {
        destination: 'pacs',
        kind: 'pacs',
        lastSuccessAt: 1500,
        lastFailureAt: 2500,
        lastFailure: 'timeout: no answer',
        pending: 1,
        parked: 0,
      },
      {
        destination: 'pacs-b',
        kind: 'pacs',
        lastSuccessAt: null,
        lastFailureAt: 4010,
        lastFailure: 'pacs-refused-object: the PACS answered 0xA900',
        pending: 0,
        parked: 1,
      },
      {
        destination: 'ris',
        kind: 'ris',
        lastSuccessAt: null,
        lastFailureAt: null,
        lastFailure: null,
        pending: 0,
        parked: 1,
      },
    ]);
    t.deepEqual(f.console.throughput(1500), { studiesReceived: 2, instancesReceived: 2, jobsFinished: 1 });
    t.deepEqual(f.console.throughput(0), { studiesReceived: 3, instancesReceived: 3, jobsFinished: 1 });
  },
);

forEachEngine('recent studies: the newest that still have their files, with their instances', (t, location) => {
  const f = consoleFixture('console-store-', { location });
  t.teardown(() => f.store.close());
  for (let i = 0; i < 4; i += 1) f.study({ uid: `11.${i}`, at: 1000 + i, ris: [] });
  f.store.connection.prepare(`UPDATE studies SET state = 'purged' WHERE study_instance_uid = '11.3'`).run();
  const recent = f.console.recentStudies(2);
  t.deepEqual(
    recent.map((r) => [r.study.studyInstanceUid, r.instances.length]),
    [
      ['11.2', 1],
      ['11.1', 1],
    ],
  );
});

forEachEngine(
  'a discard on a job still delivering its other results notes itself on the job, and the note stays when it settles',
  (t, location) => {
    const f = consoleFixture('console-store-', { location });
    t.teardown(() => f.store.close());
    const job = f.study({ uid: '12.1', at: 1000, pacs: ['pacs', 'pacs-b'], ris: [] });
    deliver(f, job.deliveries['pacs:pacs'] ?? -1, { kind: 'parked', reason: 'pacs-refused-object: 0xA900' }, 1100);
    t.like(f.store.listJobs()[0], { state: 'delivering' });
    f.console.discardDelivery(job.deliveries['pacs:pacs'] ?? -1, 'duplicate of a study already there', ACTOR, 1200);
    const note = `delivery ${job.deliveries['pacs:pacs']} (pacs to 'pacs') discarded by alice: duplicate of a study already there`;
    t.like(f.store.listJobs()[0], { state: 'delivering', lastError: note });
    deliver(f, job.deliveries['pacs:pacs-b'] ?? -1, { kind: 'delivered' }, 1300);
    t.like(f.store.listJobs()[0], { state: 'done', lastError: note });
  },
);

forEachEngine(
  'the accession filter matches the whole value, case and all, whatever characters it holds (no prefix, no LIKE wildcards)',
  (t, location) => {
    const f = consoleFixture('console-store-', { location });
    t.teardown(() => f.store.close());
    const accessions = ['A12', 'a1', 'X"1', 'P%_\\', 'Q"accessionNumber":"A1'];
    accessions.forEach((accession, i) => f.study({ uid: `12.${i}`, at: 1000 + i, accession }));
    const found = (accession: string) => f.console.studies({ ...PAGE, accession }).items.map((s) => s.studyInstanceUid);
    t.deepEqual(found('A12'), ['12.0']);
    t.deepEqual(found('a1'), ['12.1']);
    t.deepEqual(found('A1'), [], 'neither a prefix of A12, nor a1 in another case, nor the text inside another value');
    t.deepEqual(found('X"1'), ['12.2']);
    t.deepEqual(found('P%_\\'), ['12.3']);
    t.deepEqual(found('P%'), []);
    t.deepEqual(found('%'), []);
    t.is(f.console.jobs({ ...PAGE, accession: 'A12' }).total, 1);
    t.is(f.console.jobs({ ...PAGE, accession: 'a12' }).total, 0);
    t.is(f.console.deliveries({ ...PAGE, studyInstanceUid: '12.2' }).items[0]?.accessionNumber, 'X"1');
  },
);

forEachEngine(
  "a delivery's story keeps its order within one millisecond: the try, then the admin's release, the next try, the discard",
  (t, location) => {
    const f = consoleFixture('console-store-', { location });
    t.teardown(() => f.store.close());
    const { pacsId } = parkedJob(f, '13.1', 1000);
    f.console.releaseDelivery(pacsId, ACTOR, 1010);
    deliver(f, pacsId, { kind: 'parked', reason: 'pacs-refused-object: again' }, 1010);
    f.console.discardDelivery(pacsId, 'the PACS will never take it', ACTOR, 1010);
    t.deepEqual(
      f.console
        .studyRows('13.1')
        ?.jobs[0]?.deliveries.find((d) => d.id === pacsId)
        ?.history.map((h) => [h.attempt, h.outcome]),
      [
        [1, 'parked'],
        [1, 'released'],
        [2, 'parked'],
        [2, 'discarded'],
      ],
    );
  },
);
