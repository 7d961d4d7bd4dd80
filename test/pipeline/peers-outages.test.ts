import test from 'ava';
import { resultControlId } from '../../src/reporting/hl7-control-id.js';
import { KEY_OBJECT_SELECTION_SOP_CLASS_UID } from '../../src/reporting/rejection-note.js';
import { newUid, writeImageFile } from '../helpers/dicom-factory.js';
import { storescu } from '../helpers/dcmtk.js';
import { startGateway, type GatewayUnderTest, type LogLine } from '../helpers/gateway-process.js';
import { startHl7Listener, type Hl7Listener } from '../helpers/hl7-listener.js';
import { startOrthanc, type OrthancUnderTest } from '../helpers/orthanc.js';
import { freePort } from '../helpers/ports.js';
import {
  PACS_NAME,
  RIS_NAME,
  deliveriesOfJob,
  inputDir,
  isLog,
  jobsOfStudy,
  logIndex,
  orthancStudyInstances,
  oruFields,
  peerConfig,
  writtenResults,
} from '../helpers/pipeline-peers.js';

// Peers that are away: a RIS that is down for a while (its deliveries wait and retry, then go out in order), and
// a PACS stopped for longer than the old retry window (retried until it is back, then delivered: a transient
// failure never parks). Each test has its own daemon, so they run side by side.

const cleanups: Array<() => Promise<unknown>> = [];
test.after.always(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

async function daemon(overrides: Parameters<typeof peerConfig>[0]): Promise<GatewayUnderTest> {
  const gateway = await startGateway(peerConfig(overrides));
  cleanups.push(() => gateway.stop());
  return gateway;
}

test('RIS down for a while, then up: the results of two revisions of a study reach it, each once, in order, after their objects reached the PACS', async (t) => {
  const orthanc: OrthancUnderTest = await startOrthanc();
  cleanups.push(() => orthanc.dispose());
  // Nothing listens on the RIS port until the listener is started below.
  const risPort = await freePort();
  const gateway = await daemon({ pacsPort: orthanc.dicomPort, risPort });
  const dir = inputDir();
  const studyInstanceUid = newUid();
  const first = await writeImageFile(dir, { studyInstanceUid, accessionNumber: 'ACC-RIS-DOWN', seed: 51 });
  t.is((await storescu(gateway.port, [first.path])).code, 0);
  const risFailure = (revision: number) => (l: LogLine) =>
    l.event === 'EXPORT-6003' &&
    l.studyInstanceUid === studyInstanceUid &&
    l.revision === revision &&
    l.destination === RIS_NAME;
  await gateway.waitForLog(isLog('EXPORT-6001', { studyInstanceUid, revision: 0 }), 'revision 0 in the PACS', 60_000);
  await gateway.waitForLog((l) => risFailure(0)(l) && l.attempt === 2, 'two failed RIS attempts', 30_000);

  // A late image while the RIS is still down: revision 1 (a re-run of the study) queues a corrected result.
  const late = await writeImageFile(dir, {
    studyInstanceUid,
    accessionNumber: 'ACC-RIS-DOWN',
    instanceNumber: 2,
    seed: 52,
  });
  t.is((await storescu(gateway.port, [late.path])).code, 0);
  await gateway.waitForLog(isLog('EXPORT-6001', { studyInstanceUid, revision: 1 }), 'revision 1 in the PACS', 60_000);

  const listener: Hl7Listener = await startHl7Listener({ responses: ['aa'], port: risPort });
  cleanups.push(() => listener.stop());
  await gateway.waitForLog(isLog('EXPORT-6002', { studyInstanceUid, revision: 1 }), 'revision 1 reported', 30_000);

  const jobs = jobsOfStudy(gateway.workDir, studyInstanceUid);
  t.deepEqual(
    jobs.map((j) => [j.revision, j.state]),
    [
      [0, 'done'],
      [1, 'done'],
    ],
  );
  // The RIS: revision 0's result (P), then revision 1's (C), each once, in that order.
  const ids = [resultControlId(studyInstanceUid, 0, RIS_NAME), resultControlId(studyInstanceUid, 1, RIS_NAME)];
  t.deepEqual(
    listener.received.map((m) => m.controlId),
    ids,
  );
  t.deepEqual(
    listener.received.map((m) => [oruFields(m).resultStatus, oruFields(m).accession, oruFields(m).studyInstanceUid]),
    [
      ['P', 'ACC-RIS-DOWN', studyInstanceUid],
      ['C', 'ACC-RIS-DOWN', studyInstanceUid],
    ],
  );
  // The RIS deliveries waited (several attempts each for revision 0); the PACS ones did not.
  const ris0 = deliveriesOfJob(gateway.workDir, jobs[0]?.id ?? -1).find((d) => d.kind === 'ris');
  t.true((ris0?.attempts ?? 0) >= 3, `revision 0's RIS delivery took ${ris0?.attempts} attempts`);
  t.regex(gateway.logs.find(risFailure(0))?.why as string, /refused|ECONNREFUSED/i);
  for (const job of jobs)
    t.like(
      deliveriesOfJob(gateway.workDir, job.id).find((d) => d.kind === 'pacs'),
      { state: 'delivered', attempts: 1 },
    );
  // Per revision: its objects were stored in the PACS before its result was reported; revision 0 before 1.
  const storedAt = (revision: number) => logIndex(gateway.logs, isLog('EXPORT-6001', { studyInstanceUid, revision }));
  const reportedAt = (revision: number) => logIndex(gateway.logs, isLog('EXPORT-6002', { studyInstanceUid, revision }));
  t.true(storedAt(0) < reportedAt(0) && storedAt(1) < reportedAt(1) && reportedAt(0) < reportedAt(1));
  // The PACS holds revision 0's SC and revision 1's two, each once, and revision 1's rejection note of revision 0.
  const scs = jobs.flatMap((j) =>
    writtenResults(gateway.workDir, j.id).flatMap((r) => r.outputs.map((o) => o.sopInstanceUid)),
  );
  t.is(scs.length, 3);
  const held = await orthancStudyInstances(orthanc, studyInstanceUid);
  const notes = held.filter((s) => s.sopClassUid === KEY_OBJECT_SELECTION_SOP_CLASS_UID);
  t.is(notes.length, 1);
  t.deepEqual(
    held
      .filter((s) => s.sopClassUid !== KEY_OBJECT_SELECTION_SOP_CLASS_UID)
      .map((s) => s.sopInstanceUid)
      .sort(),
    scs.sort(),
  );
});

test('PACS (Orthanc) stopped for longer than the old retry window (delivery.maxAttempts 3), then started: delivered with no admin action, never parked', async (t) => {
  const orthanc: OrthancUnderTest = await startOrthanc();
  cleanups.push(() => orthanc.dispose());
  await orthanc.stop();
  const listener: Hl7Listener = await startHl7Listener({ responses: ['aa'] });
  cleanups.push(() => listener.stop());
  // maxAttempts 3 used to park a connection failure at the third attempt; it now bounds unknown failures only.
  const gateway = await daemon({ pacsPort: orthanc.dicomPort, risPort: listener.port, delivery: { maxAttempts: 3 } });
  const image = await writeImageFile(inputDir(), {
    studyInstanceUid: newUid(),
    accessionNumber: 'ACC-PACS-DOWN',
    seed: 61,
  });
  const { studyInstanceUid } = image;
  t.is((await storescu(gateway.port, [image.path])).code, 0);
  const pacsFailure = (l: LogLine) => isLog('EXPORT-6003', { studyInstanceUid, destination: PACS_NAME })(l);
  await gateway.waitForLog(
    (l) => pacsFailure(l) && Number(l.attempt) >= 6,
    'six failed PACS attempts (twice the old limit)',
    60_000,
  );
  const [job] = jobsOfStudy(gateway.workDir, studyInstanceUid);
  if (job === undefined) return t.fail('no job');
  const waiting = deliveriesOfJob(gateway.workDir, job.id).find((d) => d.kind === 'pacs');
  t.like(waiting, { state: 'pending' });
  t.regex(
    waiting?.last_error ?? '',
    new RegExp(`^connection-refused: .*127\\.0\\.0\\.1:${orthanc.dicomPort}.*ECONNREFUSED`),
  );
  for (const l of gateway.logs.filter(pacsFailure))
    t.like(l, { level: 'warn', cause: 'connection-refused', failure: 'transient' });
  // The RIS report waits behind the PACS delivery: nothing went to the RIS yet.
  t.is(listener.received.length, 0);

  await orthanc.restart();
  await gateway.waitForLog(
    isLog('EXPORT-6001', { studyInstanceUid }),
    'the objects in the PACS after it came back',
    60_000,
  );
  await gateway.waitForLog(isLog('EXPORT-6002', { studyInstanceUid }), 'the RIS report', 30_000);
  const pacs = deliveriesOfJob(gateway.workDir, job.id).find((d) => d.kind === 'pacs');
  t.like(pacs, { state: 'delivered' });
  t.true((pacs?.attempts ?? 0) > 6, `attempts ${pacs?.attempts}`);
  t.false(gateway.logs.some((l) => l.event === 'EXPORT-6004'));
  t.is(jobsOfStudy(gateway.workDir, studyInstanceUid)[0]?.state, 'done');
  const scs = writtenResults(gateway.workDir, job.id).flatMap((r) => r.outputs.map((o) => o.sopInstanceUid));
  t.deepEqual((await orthancStudyInstances(orthanc, studyInstanceUid)).map((s) => s.sopInstanceUid).sort(), scs.sort());
  t.is(listener.countByControlId(resultControlId(studyInstanceUid, 0, RIS_NAME)), 1);
});
