import test, { type ExecutionContext } from 'ava';
import { resultControlId } from '../../src/reporting/hl7-control-id.js';
import { newUid, writeImageFile, type SyntheticImageFile } from '../helpers/dicom-factory.js';
import { storescu } from '../helpers/dcmtk.js';
import { listJobs, startGateway, writeGatewayConfig, type GatewayUnderTest } from '../helpers/gateway-process.js';
import { startHl7Listener, type Hl7Listener } from '../helpers/hl7-listener.js';
import { startOrthanc, type OrthancUnderTest } from '../helpers/orthanc.js';
import {
  PACS_NAME,
  RIS_NAME,
  SECONDARY_CAPTURE,
  deliveriesOfJob,
  inputDir,
  isLog,
  jobsOfStudy,
  orthancStudyInstances,
  oruFields,
  peerConfig,
  receivedWithControlId,
  studyState,
  writtenResults,
} from '../helpers/pipeline-peers.js';

// kill -9 of the daemon at three points of a study's trip, each time restarted on the same config and work
// folder: every study still ends `done` exactly once: one job, its SCs in Orthanc once each (counted by SOP
// Instance UID), its ORU at the RIS under its control ID (the same control ID twice only where the crash fell
// between sending the ORU and recording its ACK). The tests share the daemon's work folder, so they run in order.

let orthanc: OrthancUnderTest;
let risPort: number;
/** Every listener started on risPort, in order; messages are counted over all of them. */
const listeners: Hl7Listener[] = [];
let setup: { workDir: string; configPath: string; port: number };
let gateway: GatewayUnderTest | undefined;
const dir = inputDir();
/** The studies of the tests that ran, with the SC count each should end with and whether a resent ORU is allowed. */
const finished: Array<{ label: string; image: SyntheticImageFile; frontal: number; resendAllowed: boolean }> = [];

test.before(async () => {
  const first = await startHl7Listener({ responses: ['aa'] });
  listeners.push(first);
  risPort = first.port;
  orthanc = await startOrthanc();
  setup = await writeGatewayConfig(peerConfig({ pacsPort: orthanc.dicomPort, risPort, ackTimeoutSeconds: 1 }));
  gateway = await startGateway({}, setup);
});

test.after.always(async () => {
  await gateway?.stop();
  await Promise.all([orthanc?.dispose(), ...listeners.map((l) => l.stop())]);
});

async function restart(): Promise<GatewayUnderTest> {
  gateway = await startGateway({}, setup);
  return gateway;
}

/** The study's one job is done; Orthanc holds exactly its SCs (one per frontal image); the RIS got its ORU. */
async function assertDoneOnce(
  t: ExecutionContext,
  label: string,
  image: SyntheticImageFile,
  frontal: number,
  resendAllowed: boolean,
): Promise<void> {
  const jobs = jobsOfStudy(setup.workDir, image.studyInstanceUid);
  t.is(jobs.length, 1, `${label}: one job`);
  const job = jobs[0];
  if (job === undefined) return;
  t.is(job.state, 'done', `${label}: job done (last error: ${job.last_error ?? 'none'})`);
  t.deepEqual(
    deliveriesOfJob(setup.workDir, job.id).map((d) => [d.kind, d.destination, d.state]),
    [
      ['pacs', PACS_NAME, 'delivered'],
      ['ris', RIS_NAME, 'delivered'],
    ],
    `${label}: one PACS and one RIS delivery, both delivered`,
  );
  const results = writtenResults(setup.workDir, job.id);
  const expectedScs = results
    .flatMap((r) => r.outputs.filter((o) => o.kind === 'sc').map((o) => o.sopInstanceUid))
    .sort();
  t.is(expectedScs.length, frontal, `${label}: one SC per frontal image`);
  const stored = await orthancStudyInstances(orthanc, image.studyInstanceUid);
  const storedUids = stored.map((s) => s.sopInstanceUid).sort();
  t.deepEqual(storedUids, expectedScs, `${label}: Orthanc holds exactly the job's SCs, each once`);
  t.is(new Set(storedUids).size, storedUids.length, `${label}: no SOP Instance UID twice`);
  for (const s of stored)
    t.like(s, { sopClassUid: SECONDARY_CAPTURE, modality: 'OT', studyInstanceUid: image.studyInstanceUid }, label);

  const controlId = resultControlId(image.studyInstanceUid, 0, RIS_NAME);
  const received = receivedWithControlId(listeners, controlId);
  t.true(received.length >= 1, `${label}: the RIS received ${controlId}`);
  if (resendAllowed) {
    if (received.length > 1)
      t.log(
        `${label}: ${controlId} reached the RIS ${received.length} times (the same message resent after the crash; allowed here)`,
      );
  } else {
    t.is(received.length, 1, `${label}: ${controlId} reached the RIS exactly once`);
  }
  const last = received[received.length - 1];
  if (last) {
    const oru = oruFields(last);
    t.is(oru.studyInstanceUid, image.studyInstanceUid, label);
    t.is(oru.accession, `ACC-${label}`, label);
    // The study's result is the image with the strongest finding: the lowest probability of 'normal'.
    const normal = (r: (typeof results)[number]) =>
      r.classification.probabilities[r.classification.classes.indexOf('normal')] ?? 1;
    const studyResult = [...results].sort((x, y) => normal(x) - normal(y))[0];
    t.is(oru.predicted, studyResult?.classification.predicted, label);
    t.is(oru.probabilities.normal, Number(normal(studyResult as (typeof results)[number]).toFixed(4)), label);
    // A resent message is the same message.
    for (const r of received) t.is(r.raw, last.raw, `${label}: every copy of ${controlId} is identical`);
  }
}

test.serial(
  '(a) killed right after the C-STORE succeeded, before assembly: after restart the study is assembled, processed and delivered once',
  async (t) => {
    const running = gateway as GatewayUnderTest;
    const image = await writeImageFile(dir, { studyInstanceUid: newUid(), accessionNumber: 'ACC-a', seed: 41 });
    const sent = await storescu(running.port, [image.path]);
    t.is(sent.code, 0, sent.stderr);
    await running.kill9();
    const stateAtKill = studyState(setup.workDir, image.studyInstanceUid);
    t.not(stateAtKill, undefined, 'an acknowledged instance survives kill -9');
    if (stateAtKill !== 'receiving')
      t.log(`the study had already been assembled (${stateAtKill}) when the kill landed`);

    const restarted = await restart();
    await restarted.waitForLog(
      isLog('EXPORT-6002', { studyInstanceUid: image.studyInstanceUid }),
      'the study reported after restart',
      60_000,
    );
    finished.push({ label: 'a', image, frontal: 1, resendAllowed: false });
    await assertDoneOnce(t, 'a', image, 1, false);
  },
);

test.serial(
  '(b) killed during inference (after "job routed"): after restart the job resumes and its objects and ORU are delivered once',
  async (t) => {
    const running = gateway as GatewayUnderTest;
    const studyInstanceUid = newUid();
    // Two large frontal images, so that inference is still running when the kill lands.
    const image = await writeImageFile(dir, {
      studyInstanceUid,
      rows: 1024,
      columns: 1024,
      accessionNumber: 'ACC-b',
      seed: 42,
    });
    const second = await writeImageFile(dir, {
      studyInstanceUid,
      rows: 1024,
      columns: 1024,
      accessionNumber: 'ACC-b',
      instanceNumber: 2,
      seed: 43,
    });
    const sent = await storescu(running.port, [image.path, second.path]);
    t.is(sent.code, 0, sent.stderr);
    await running.waitForLog(isLog('PIPELINE-4001', { studyInstanceUid }), 'the job routed', 30_000);
    await running.kill9();
    const [atKill] = jobsOfStudy(setup.workDir, studyInstanceUid);
    t.log(`job state when the kill landed: ${atKill?.state ?? 'none'}`);
    t.false(running.logs.some(isLog('EXPORT-6001', { studyInstanceUid })), 'the kill landed before the PACS delivery');

    const restarted = await restart();
    await restarted.waitForLog(isLog('EXPORT-6002', { studyInstanceUid }), 'the study reported after restart', 60_000);
    finished.push({ label: 'b', image, frontal: 2, resendAllowed: false });
    await assertDoneOnce(t, 'b', image, 2, false);
  },
);

test.serial(
  '(c) killed between the PACS delivery and the RIS ACK (RIS silent): after restart with the RIS answering, the ORU goes out under the same control ID and the PACS gets nothing twice',
  async (t) => {
    // The RIS stops answering: the ORU is received but never acknowledged, so the RIS delivery stays pending.
    await listeners[listeners.length - 1]?.stop();
    const silent = await startHl7Listener({ responses: ['silent'], port: risPort });
    listeners.push(silent);
    const running = gateway as GatewayUnderTest;
    const image = await writeImageFile(dir, { studyInstanceUid: newUid(), accessionNumber: 'ACC-c', seed: 44 });
    const sent = await storescu(running.port, [image.path]);
    t.is(sent.code, 0, sent.stderr);
    const { studyInstanceUid } = image;
    const controlId = resultControlId(studyInstanceUid, 0, RIS_NAME);
    await running.waitForLog(isLog('EXPORT-6001', { studyInstanceUid }), 'the PACS delivery', 60_000);
    await silent.waitForMessages(1, 30_000);
    t.is(silent.received[0]?.controlId, controlId);
    await running.kill9();
    const [atKill] = jobsOfStudy(setup.workDir, studyInstanceUid);
    t.is(atKill?.state, 'delivering', 'the job was between its PACS and RIS deliveries');
    t.deepEqual(
      deliveriesOfJob(setup.workDir, atKill?.id ?? -1).map((d) => [d.kind, d.state]),
      [
        ['pacs', 'delivered'],
        ['ris', 'pending'],
      ],
    );

    await silent.stop();
    listeners.push(await startHl7Listener({ responses: ['aa'], port: risPort }));
    const restarted = await restart();
    await restarted.waitForLog(isLog('EXPORT-6002', { studyInstanceUid }), 'the study reported after restart', 60_000);
    t.false(restarted.logs.some(isLog('EXPORT-6001', { studyInstanceUid })), 'the PACS delivery is not repeated');
    finished.push({ label: 'c', image, frontal: 1, resendAllowed: true });
    await assertDoneOnce(t, 'c', image, 1, true);
  },
);

test.serial(
  'after all the crashes and restarts, every study is done exactly once, and nothing was delivered again by a later restart',
  async (t) => {
    t.is(finished.length, 3, 'the three crash tests ran');
    const last = gateway as GatewayUnderTest;
    for (const { label, image, frontal, resendAllowed } of finished)
      await assertDoneOnce(t, label, image, frontal, resendAllowed);
    // The jobs listing says the same: one job per study, done, with both deliveries delivered.
    const listing = (await listJobs(setup.configPath)) as Awaited<ReturnType<typeof listJobs>> & {
      deliveries?: Array<{ jobId: number; kind: string; state: string }>;
    };
    for (const { label, image } of finished) {
      const jobs = listing.jobs.filter((j) => j.studyInstanceUid === image.studyInstanceUid);
      t.deepEqual(
        jobs.map((j) => j.state),
        ['done'],
        label,
      );
      t.deepEqual(
        (listing.deliveries ?? []).filter((d) => d.jobId === jobs[0]?.id).map((d) => [d.kind, d.state]),
        [
          ['pacs', 'delivered'],
          ['ris', 'delivered'],
        ],
        label,
      );
    }
    // No restart re-sent an earlier study: the last daemon delivered only the study it was started for.
    const reported = last.logs
      .filter((l) => l.event === 'EXPORT-6002' || l.event === 'EXPORT-6001')
      .map((l) => l.studyInstanceUid);
    t.deepEqual(reported, [finished[2]?.image.studyInstanceUid]);
  },
);
