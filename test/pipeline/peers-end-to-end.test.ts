import test, { type ExecutionContext } from 'ava';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resultControlId } from '../../src/reporting/hl7-control-id.js';
import { newUid, writeImageFile } from '../helpers/dicom-factory.js';
import { storescu } from '../helpers/dcmtk.js';
import { listJobs, runCli, startGateway, type GatewayUnderTest } from '../helpers/gateway-process.js';
import { startHl7Listener, type Hl7Listener } from '../helpers/hl7-listener.js';
import { startOrthanc, type OrthancUnderTest } from '../helpers/orthanc.js';
import {
  RIS_NAME,
  SECONDARY_CAPTURE,
  inputDir,
  isLog,
  jobsOfStudy,
  logIndex,
  orthancStudyInstances,
  oruFields,
  peerConfig,
  processAction,
  writtenResults,
} from '../helpers/pipeline-peers.js';
import { waitUntil } from '../helpers/wait-until.js';

// The whole trip with real peers: storescu -> the daemon (a child process) -> routing -> the tiny model on one
// worker -> Orthanc over DICOM (PACS) and the python3-hl7 listener over MLLP (RIS). One daemon, one Orthanc and
// one listener for the file; the tests run one after the other because the urgent one needs the queue to itself.

const SR_SOP_CLASSES = [
  '1.2.840.10008.5.1.4.1.1.88.22',
  '1.2.840.10008.5.1.4.1.1.88.33',
  '1.2.840.10008.5.1.4.1.1.88.34',
];

const RULES = [
  {
    name: 'er-urgent',
    match: { callingAe: 'ER_DX', attributes: { BodyPartExamined: 'CHEST' } },
    action: processAction(['sc', 'sr'], 'urgent'),
  },
  {
    name: 'chest',
    match: { attributes: { Modality: { oneOf: ['CR', 'DX'] }, BodyPartExamined: 'CHEST' } },
    action: processAction(['sc', 'sr']),
  },
  { name: 'everything-else', match: {}, action: { ignore: true } },
];

// The daemon's inference worker holds an image whose SOP Instance UID names a file here until the file is removed
// (a test-only hook, see src/analysis/inference-worker.ts); only the last test makes such files.
const holdDir = mkdtempSync(path.join(os.tmpdir(), 'worker-hold-'));
process.env.CXR_GATEWAY_TEST_HOLD_DIR = holdDir;

/**
 * Holds each of these images in the worker until the test lets it go, so that "still being classified" or "still
 * waiting" is a fact the test sets up, not a bet on how long classification takes. Every hold is let go when
 * the test ends, whatever happens (a held worker would keep the daemon from stopping).
 */
function holdInWorker<T extends { sopInstanceUid: string }>(t: ExecutionContext, images: readonly T[]) {
  const gate = (i: { sopInstanceUid: string }) => path.join(holdDir, i.sopInstanceUid);
  for (const i of images) writeFileSync(gate(i), '');
  t.teardown(() => {
    for (const i of images) rmSync(gate(i), { force: true });
  });
  return {
    /** The images the worker holds now (it took them and waits). */
    holding: () => images.filter((i) => existsSync(`${gate(i)}.held`) && existsSync(gate(i))),
    release: (i: T) => rmSync(gate(i), { force: true }),
  };
}

let orthanc: OrthancUnderTest;
let listener: Hl7Listener;
let gateway: GatewayUnderTest;

test.before(async () => {
  [orthanc, listener] = await Promise.all([startOrthanc(), startHl7Listener({ responses: ['aa'] })]);
  gateway = await startGateway(peerConfig({ pacsPort: orthanc.dicomPort, risPort: listener.port, rules: RULES }));
});

test.after.always(async () => {
  await gateway?.stop();
  await Promise.all([orthanc?.dispose(), listener?.stop()]);
  rmSync(holdDir, { recursive: true, force: true });
});

test.serial(
  'a CHEST PA study goes to Orthanc (SC + SR in its study) and to the RIS (one ORU with the accession, class and probabilities); lateral-only and HAND studies are ignored, as `rules explain` says',
  async (t) => {
    const dir = inputDir();
    const pa = await writeImageFile(dir, {
      studyInstanceUid: newUid(),
      viewPosition: 'PA',
      accessionNumber: 'ACC-PA-1',
      patientId: 'PID-PA-1',
      seed: 11,
    });
    const lateral = await writeImageFile(dir, {
      studyInstanceUid: newUid(),
      viewPosition: 'LL',
      accessionNumber: 'ACC-LAT-1',
      seed: 12,
    });
    const hand = await writeImageFile(dir, {
      studyInstanceUid: newUid(),
      viewPosition: 'PA',
      bodyPartExamined: 'HAND',
      accessionNumber: 'ACC-HAND-1',
      seed: 13,
    });
    const sent = await storescu(gateway.port, [pa.path, lateral.path, hand.path], { callingAe: 'DX_ROOM1' });
    t.is(sent.code, 0, sent.stderr);

    await gateway.waitForLog(
      isLog('EXPORT-6002', { studyInstanceUid: pa.studyInstanceUid }),
      'the PA study reported to the RIS',
      60_000,
    );
    await gateway.waitForLog(
      isLog('PIPELINE-4006', { studyInstanceUid: lateral.studyInstanceUid }),
      'the lateral-only study ignored',
      30_000,
    );
    await gateway.waitForLog(
      isLog('PIPELINE-4002', { studyInstanceUid: hand.studyInstanceUid }),
      'the HAND study ignored',
      30_000,
    );

    // The store: one job per study, in the state routing and eligibility gave it.
    const [paJob] = jobsOfStudy(gateway.workDir, pa.studyInstanceUid);
    const [latJob] = jobsOfStudy(gateway.workDir, lateral.studyInstanceUid);
    const [handJob] = jobsOfStudy(gateway.workDir, hand.studyInstanceUid);
    t.like(paJob, { state: 'done', rule: 'chest', priority: 'normal', revision: 0 });
    t.like(latJob, { state: 'ignored', rule: 'chest' });
    t.regex(latJob?.last_error ?? '', /no eligible image/);
    t.like(handJob, { state: 'ignored', rule: null });
    t.regex(handJob?.last_error ?? '', /rule 'everything-else' ignores it/);
    const listing = await listJobs(gateway.configPath);
    t.like(
      listing.jobs.find((j) => j.studyInstanceUid === pa.studyInstanceUid),
      { state: 'done' },
    );
    t.like(
      listing.jobs.find((j) => j.studyInstanceUid === lateral.studyInstanceUid),
      { state: 'ignored' },
    );
    t.like(
      listing.jobs.find((j) => j.studyInstanceUid === hand.studyInstanceUid),
      { state: 'ignored' },
    );

    // What the pipeline wrote for the PA image: its SC (the worker's), and the study's one SR (written once per
    // study revision by the pipeline, named in its log line), from the tiny model's classification.
    const [result, ...more] = writtenResults(gateway.workDir, paJob?.id ?? -1);
    t.is(more.length, 0);
    if (result === undefined) return t.fail('no written result for the PA image');
    t.is(result.sopInstanceUid, pa.sopInstanceUid);
    const sc = result.outputs.find((o) => o.kind === 'sc');
    const srUid = gateway.logs.find(isLog('PIPELINE-4007', { studyInstanceUid: pa.studyInstanceUid }))?.sr;
    if (sc === undefined || typeof srUid !== 'string')
      return t.fail(`expected an SC and an SR, got ${JSON.stringify(result.outputs)} and ${String(srUid)}`);
    const sr = { sopInstanceUid: srUid };

    // Orthanc: exactly those two objects, in the source study (the source image itself is not sent to the PACS).
    const stored = await orthancStudyInstances(orthanc, pa.studyInstanceUid);
    t.deepEqual(stored.map((s) => s.sopInstanceUid).sort(), [sc.sopInstanceUid, sr.sopInstanceUid].sort());
    const storedSc = stored.find((s) => s.sopInstanceUid === sc.sopInstanceUid);
    t.like(storedSc, {
      studyInstanceUid: pa.studyInstanceUid,
      modality: 'OT',
      sopClassUid: SECONDARY_CAPTURE,
      seriesInstanceUid: sc.seriesInstanceUid,
    });
    const storedSr = stored.find((s) => s.sopInstanceUid === sr.sopInstanceUid);
    t.like(storedSr, { studyInstanceUid: pa.studyInstanceUid, modality: 'SR' });
    t.true(SR_SOP_CLASSES.includes(storedSr?.sopClassUid ?? ''), storedSr?.sopClassUid);
    // Nothing of the ignored studies reached the PACS.
    t.deepEqual(await orthancStudyInstances(orthanc, lateral.studyInstanceUid), []);
    t.deepEqual(await orthancStudyInstances(orthanc, hand.studyInstanceUid), []);

    // The RIS: one message for the PA study, none for the others.
    const controlId = resultControlId(pa.studyInstanceUid, 0, RIS_NAME);
    t.is(listener.countByControlId(controlId), 1);
    t.is(listener.countByControlId(resultControlId(lateral.studyInstanceUid, 0, RIS_NAME)), 0);
    t.is(listener.countByControlId(resultControlId(hand.studyInstanceUid, 0, RIS_NAME)), 0);
    const message = listener.received.find((m) => m.controlId === controlId);
    if (message === undefined) return t.fail('the ORU did not reach the listener');
    const oru = oruFields(message);
    t.is(oru.accession, 'ACC-PA-1');
    t.is(oru.resultStatus, 'P');
    t.is(oru.studyInstanceUid, pa.studyInstanceUid);
    t.is(oru.predicted, result.classification.predicted);
    t.is(oru.heatmapSeries, sc.seriesInstanceUid);
    t.deepEqual(Object.keys(oru.probabilities).sort(), [...result.classification.classes].sort());
    result.classification.classes.forEach((name, i) => {
      t.true(
        Math.abs((oru.probabilities[name] ?? Number.NaN) - (result.classification.probabilities[i] ?? Number.NaN)) <=
          6e-5,
        `probability of ${name} (four decimals in OBX-5)`,
      );
    });
    // The predicted class is the most probable one.
    const best = Object.entries(oru.probabilities).sort((a, b) => b[1] - a[1])[0]?.[0];
    t.is(best, oru.predicted);

    // `rules explain` (the same rule matcher, run by the CLI) agrees with what the daemon did.
    const explain = async (file: string, callingAe: string) => {
      const r = await runCli([
        'rules',
        'explain',
        file,
        '--config',
        gateway.configPath,
        '--calling-ae',
        callingAe,
        '--ip',
        '127.0.0.1',
        '--json',
      ]);
      t.is(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as {
        rule: string | null;
        action: { ignore?: boolean; priority?: string } | null;
        eligibility: { eligible: boolean } | null;
      };
    };
    t.like(await explain(pa.path, 'DX_ROOM1'), {
      rule: paJob?.rule,
      action: { priority: paJob?.priority },
      eligibility: { eligible: true },
    });
    // The lateral is routed like the PA, then skipped by eligibility: the daemon ignored its job for that reason.
    t.like(await explain(lateral.path, 'DX_ROOM1'), { rule: latJob?.rule, eligibility: { eligible: false } });
    t.like(await explain(hand.path, 'DX_ROOM1'), { rule: 'everything-else', action: { ignore: true } });
    t.like(await explain(pa.path, 'ER_DX'), { rule: 'er-urgent', action: { priority: 'urgent' } });
  },
);

test.serial(
  'an urgent study (calling AE ER_DX) jumps the queue: with one inference worker it is classified before the normal studies waiting ahead of it',
  async (t) => {
    const dir = inputDir();
    const normals = await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        writeImageFile(dir, { studyInstanceUid: newUid(), accessionNumber: `ACC-N${i}`, seed: 20 + i }),
      ),
    );
    const urgent = await writeImageFile(dir, { studyInstanceUid: newUid(), accessionNumber: 'ACC-URGENT', seed: 30 });
    // The worker holds the first normal study it takes until the urgent one is ready: the other normal studies
    // are then provably still waiting, however quick classification is.
    const { holding, release } = holdInWorker(t, normals);
    const sentNormals = await storescu(
      gateway.port,
      normals.map((n) => n.path),
      { callingAe: 'DX_ROOM1' },
    );
    t.is(sentNormals.code, 0, sentNormals.stderr);
    for (const n of normals)
      await gateway.waitForLog(
        isLog('ASSEMBLY-3001', { studyInstanceUid: n.studyInstanceUid }),
        'a normal study assembled',
        30_000,
      );
    await waitUntil(() => holding().length === 1, 'the worker holding the first normal study', 60_000);
    const [inProgress] = holding();
    const sentUrgent = await storescu(gateway.port, [urgent.path], { callingAe: 'ER_DX' });
    t.is(sentUrgent.code, 0, sentUrgent.stderr);
    await gateway.waitForLog(
      isLog('ASSEMBLY-3001', { studyInstanceUid: urgent.studyInstanceUid }),
      'the urgent study assembled',
      30_000,
    );
    for (const n of normals) release(n);

    for (const s of [urgent, ...normals]) {
      await gateway.waitForLog(
        isLog('EXPORT-6002', { studyInstanceUid: s.studyInstanceUid }),
        'every study reported',
        60_000,
      );
    }
    const [urgentJob] = jobsOfStudy(gateway.workDir, urgent.studyInstanceUid);
    t.like(urgentJob, { state: 'done', rule: 'er-urgent', priority: 'urgent' });
    for (const n of normals)
      t.like(jobsOfStudy(gateway.workDir, n.studyInstanceUid)[0], { state: 'done', rule: 'chest', priority: 'normal' });
    // The rule's priority reaches the RIS too (TQ1-9): S for the urgent study, R for a normal one.
    const oruPriority = (uid: string) => {
      const message = listener.received.find((m) => m.controlId === resultControlId(uid, 0, RIS_NAME));
      return message && oruFields(message).priority;
    };
    t.is(oruPriority(urgent.studyInstanceUid), 'S');
    t.is(oruPriority(normals[0]?.studyInstanceUid ?? ''), 'R');

    // Log order is the order things happened in the daemon. One worker: only the normal study in progress when the
    // urgent one became ready is classified before it, in inference (log order) and in the store (finished_at,
    // after PACS and RIS).
    const written = (uid: string) => logIndex(gateway.logs, isLog('PIPELINE-4007', { studyInstanceUid: uid }));
    const urgentWritten = written(urgent.studyInstanceUid);
    const waiting = normals.filter((n) => n !== inProgress);
    t.is(waiting.length, normals.length - 1);
    t.true(
      written(inProgress?.studyInstanceUid ?? '') < urgentWritten,
      'the study in progress finishes its classification first',
    );
    const overtaking = waiting.filter((n) => written(n.studyInstanceUid) < urgentWritten);
    t.deepEqual(
      overtaking,
      [],
      `${overtaking.length} normal studies that were waiting when the urgent one was ready were classified before it`,
    );
    const finishedAt = (uid: string) => jobsOfStudy(gateway.workDir, uid)[0]?.finished_at ?? Number.POSITIVE_INFINITY;
    const finishedFirst = waiting.filter((n) => finishedAt(n.studyInstanceUid) < finishedAt(urgent.studyInstanceUid));
    t.deepEqual(
      finishedFirst,
      [],
      `${finishedFirst.length} waiting normal jobs finished (delivered) before the urgent one`,
    );
    // rules explain says the same about the urgent study, and that the normals' sender would not make it urgent.
    const explain = async (file: string, callingAe: string) =>
      JSON.parse(
        (await runCli(['rules', 'explain', file, '--config', gateway.configPath, '--calling-ae', callingAe, '--json']))
          .stdout,
      ) as { rule: string; action: { priority: string } };
    t.like(await explain(urgent.path, 'ER_DX'), { rule: 'er-urgent', action: { priority: 'urgent' } });
    t.like(await explain(urgent.path, 'DX_ROOM1'), { rule: 'chest', action: { priority: 'normal' } });
  },
);

test.serial(
  'a classified study is delivered while the next study is still being classified, not after it',
  async (t) => {
    const dir = inputDir();
    const studies = await Promise.all(
      Array.from({ length: 3 }, (_, i) =>
        writeImageFile(dir, { studyInstanceUid: newUid(), accessionNumber: `ACC-B${i}`, seed: 70 + i }),
      ),
    );
    // Every image holds the one worker until the test lets it go: the next study is provably still in classification.
    const { holding, release } = holdInWorker(t, studies);
    const sent = await storescu(
      gateway.port,
      studies.map((s) => s.path),
      { callingAe: 'DX_ROOM1' },
    );
    t.is(sent.code, 0, sent.stderr);

    let previous: (typeof studies)[number] | undefined;
    for (let k = 0; k < studies.length; k += 1) {
      await waitUntil(() => holding().length === 1, `the worker holding its study #${k}`, 60_000);
      const current = holding()[0]!;
      if (previous !== undefined) {
        // The study classified before is delivered to the PACS and the RIS while the worker still holds this one.
        await gateway.waitForLog(
          isLog('EXPORT-6001', { studyInstanceUid: previous.studyInstanceUid }),
          `study #${k - 1} stored in the PACS while #${k} is classified`,
          60_000,
        );
        await gateway.waitForLog(
          isLog('EXPORT-6002', { studyInstanceUid: previous.studyInstanceUid }),
          `study #${k - 1} reported to the RIS while #${k} is classified`,
          60_000,
        );
        t.deepEqual(holding(), [current], `study #${k} is still held in the worker`);
        t.is(logIndex(gateway.logs, isLog('PIPELINE-4007', { studyInstanceUid: current.studyInstanceUid })), -1);
        t.true(
          (await orthancStudyInstances(orthanc, previous.studyInstanceUid)).length > 0,
          `study #${k - 1}'s objects are in Orthanc`,
        );
      }
      release(current);
      previous = current;
    }
    for (const s of studies)
      await gateway.waitForLog(
        isLog('EXPORT-6002', { studyInstanceUid: s.studyInstanceUid }),
        'every study reported',
        60_000,
      );
    for (const s of studies)
      t.like(jobsOfStudy(gateway.workDir, s.studyInstanceUid)[0], { state: 'done', rule: 'chest' });
  },
);
