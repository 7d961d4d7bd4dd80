import test from 'ava';
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

// The whole trip with real peers: storescu -> the daemon (a child process) -> routing -> the tiny model on one
// worker -> Orthanc over DICOM (PACS) and the python3-hl7 listener over MLLP (RIS). One daemon, one Orthanc and
// one listener for the file; the tests run one after the other because the urgent one needs the queue to itself.

const SR_SOP_CLASSES = ['1.2.840.10008.5.1.4.1.1.88.22', '1.2.840.10008.5.1.4.1.1.88.33', '1.2.840.10008.5.1.4.1.1.88.34'];

const RULES = [
  { name: 'er-urgent', match: { callingAe: 'ER_DX', attributes: { BodyPartExamined: 'CHEST' } }, action: processAction(['sc', 'sr'], 'urgent') },
  { name: 'chest', match: { attributes: { Modality: { oneOf: ['CR', 'DX'] }, BodyPartExamined: 'CHEST' } }, action: processAction(['sc', 'sr']) },
  { name: 'everything-else', match: {}, action: { ignore: true } },
];

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
});

test.serial('a CHEST PA study goes to Orthanc (SC + SR in its study) and to the RIS (one ORU with the accession, class and probabilities); lateral-only and HAND studies are ignored, as `rules explain` says', async (t) => {
  const dir = inputDir();
  const pa = await writeImageFile(dir, { studyInstanceUid: newUid(), viewPosition: 'PA', accessionNumber: 'ACC-PA-1', patientId: 'PID-PA-1', seed: 11 });
  const lateral = await writeImageFile(dir, { studyInstanceUid: newUid(), viewPosition: 'LL', accessionNumber: 'ACC-LAT-1', seed: 12 });
  const hand = await writeImageFile(dir, { studyInstanceUid: newUid(), viewPosition: 'PA', bodyPartExamined: 'HAND', accessionNumber: 'ACC-HAND-1', seed: 13 });
  const sent = await storescu(gateway.port, [pa.path, lateral.path, hand.path], { callingAe: 'DX_ROOM1' });
  t.is(sent.code, 0, sent.stderr);

  await gateway.waitForLog(isLog('EXPORT-6002', { studyInstanceUid: pa.studyInstanceUid }), 'the PA study reported to the RIS', 60_000);
  await gateway.waitForLog(isLog('PIPELINE-4006', { studyInstanceUid: lateral.studyInstanceUid }), 'the lateral-only study ignored', 30_000);
  await gateway.waitForLog(isLog('PIPELINE-4002', { studyInstanceUid: hand.studyInstanceUid }), 'the HAND study ignored', 30_000);

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
  t.like(listing.jobs.find((j) => j.studyInstanceUid === pa.studyInstanceUid), { state: 'done' });
  t.like(listing.jobs.find((j) => j.studyInstanceUid === lateral.studyInstanceUid), { state: 'ignored' });
  t.like(listing.jobs.find((j) => j.studyInstanceUid === hand.studyInstanceUid), { state: 'ignored' });

  // What the pipeline wrote for the PA image: one SC and one SR, from the tiny model's classification.
  const [result, ...more] = writtenResults(gateway.workDir, paJob?.id ?? -1);
  t.is(more.length, 0);
  if (result === undefined) return t.fail('no written result for the PA image');
  t.is(result.sopInstanceUid, pa.sopInstanceUid);
  const sc = result.outputs.find((o) => o.kind === 'sc');
  const sr = result.outputs.find((o) => o.kind === 'sr');
  if (sc === undefined || sr === undefined) return t.fail(`expected an SC and an SR, got ${JSON.stringify(result.outputs)}`);

  // Orthanc: exactly those two objects, in the source study (the source image itself is not sent to the PACS).
  const stored = await orthancStudyInstances(orthanc, pa.studyInstanceUid);
  t.deepEqual(stored.map((s) => s.sopInstanceUid).sort(), [sc.sopInstanceUid, sr.sopInstanceUid].sort());
  const storedSc = stored.find((s) => s.sopInstanceUid === sc.sopInstanceUid);
  t.like(storedSc, { studyInstanceUid: pa.studyInstanceUid, modality: 'OT', sopClassUid: SECONDARY_CAPTURE, seriesInstanceUid: sc.seriesInstanceUid });
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
    t.true(Math.abs((oru.probabilities[name] ?? Number.NaN) - (result.classification.probabilities[i] ?? Number.NaN)) <= 6e-5, `probability of ${name} (four decimals in OBX-5)`);
  });
  // The predicted class is the most probable one.
  const best = Object.entries(oru.probabilities).sort((a, b) => b[1] - a[1])[0]?.[0];
  t.is(best, oru.predicted);

  // `rules explain` (the same rule matcher, run by the CLI) agrees with what the daemon did.
  const explain = async (file: string, callingAe: string) => {
    const r = await runCli(['rules', 'explain', file, '--config', gateway.configPath, '--calling-ae', callingAe, '--ip', '127.0.0.1', '--json']);
    t.is(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as { rule: string | null; action: { ignore?: boolean; priority?: string } | null; eligibility: { eligible: boolean } | null };
  };
  t.like(await explain(pa.path, 'DX_ROOM1'), { rule: paJob?.rule, action: { priority: paJob?.priority }, eligibility: { eligible: true } });
  // The lateral is routed like the PA, then skipped by eligibility: the daemon ignored its job for that reason.
  t.like(await explain(lateral.path, 'DX_ROOM1'), { rule: latJob?.rule, eligibility: { eligible: false } });
  t.like(await explain(hand.path, 'DX_ROOM1'), { rule: 'everything-else', action: { ignore: true } });
  t.like(await explain(pa.path, 'ER_DX'), { rule: 'er-urgent', action: { priority: 'urgent' } });
});

test.serial('an urgent study (calling AE ER_DX) jumps the queue: with one inference worker it is classified before the normal studies waiting ahead of it', async (t) => {
  const dir = inputDir();
  // Normal studies large enough (1024 x 1024) that several are still waiting when the urgent one is ready.
  const normals = await Promise.all(
    Array.from({ length: 8 }, (_, i) => writeImageFile(dir, { studyInstanceUid: newUid(), rows: 1024, columns: 1024, accessionNumber: `ACC-N${i}`, seed: 20 + i })),
  );
  const urgent = await writeImageFile(dir, { studyInstanceUid: newUid(), accessionNumber: 'ACC-URGENT', seed: 30 });
  const sentNormals = await storescu(gateway.port, normals.map((n) => n.path), { callingAe: 'DX_ROOM1' });
  t.is(sentNormals.code, 0, sentNormals.stderr);
  // Every normal study is assembled, i.e. a job queued for routing and the inference worker; then the urgent one
  // comes in.
  for (const n of normals) await gateway.waitForLog(isLog('ASSEMBLY-3001', { studyInstanceUid: n.studyInstanceUid }), 'a normal study assembled', 30_000);
  const sentUrgent = await storescu(gateway.port, [urgent.path], { callingAe: 'ER_DX' });
  t.is(sentUrgent.code, 0, sentUrgent.stderr);

  for (const s of [urgent, ...normals]) {
    await gateway.waitForLog(isLog('EXPORT-6002', { studyInstanceUid: s.studyInstanceUid }), 'every study reported', 60_000);
  }
  const [urgentJob] = jobsOfStudy(gateway.workDir, urgent.studyInstanceUid);
  t.like(urgentJob, { state: 'done', rule: 'er-urgent', priority: 'urgent' });
  for (const n of normals) t.like(jobsOfStudy(gateway.workDir, n.studyInstanceUid)[0], { state: 'done', rule: 'chest', priority: 'normal' });

  // Log order is the order things happened in the daemon.
  const written = (uid: string) => logIndex(gateway.logs, isLog('PIPELINE-4007', { studyInstanceUid: uid }));
  const urgentReady = logIndex(gateway.logs, isLog('ASSEMBLY-3001', { studyInstanceUid: urgent.studyInstanceUid }));
  const urgentWritten = written(urgent.studyInstanceUid);
  const waiting = normals.filter((n) => written(n.studyInstanceUid) > urgentReady);
  t.log(`normal studies not yet classified when the urgent one was ready: ${waiting.length} of ${normals.length}`);
  if (waiting.length < 2) {
    const short = new Map([...normals.map((n, i) => [n.studyInstanceUid, `N${i}`] as const), [urgent.studyInstanceUid, 'U']]);
    for (const l of gateway.logs) if (short.has(String(l.studyInstanceUid))) t.log(`${String(l.timestamp)} ${l.message} ${short.get(String(l.studyInstanceUid))}`);
  }
  t.true(waiting.length >= 2, 'the test needs normal studies still waiting when the urgent study is ready (make them larger or more)');
  // One worker: at most the normal study in progress when the urgent one became ready may finish before it, in
  // inference (log order) and in the store (finished_at, after PACS and RIS).
  const overtaking = waiting.filter((n) => written(n.studyInstanceUid) < urgentWritten);
  const finishedAt = (uid: string) => jobsOfStudy(gateway.workDir, uid)[0]?.finished_at ?? Number.POSITIVE_INFINITY;
  const finishedFirst = waiting.filter((n) => finishedAt(n.studyInstanceUid) < finishedAt(urgent.studyInstanceUid));
  t.log(`of those, classified before the urgent one: ${overtaking.length}; finished (delivered) before it: ${finishedFirst.length}`);
  t.true(
    overtaking.length <= 1,
    `${overtaking.length} normal studies that were waiting when the urgent one was ready were classified before it (at most the one in progress may be)`,
  );
  t.true(finishedFirst.length <= 1, `${finishedFirst.length} waiting normal jobs finished before the urgent one`);
  // rules explain says the same about the urgent study, and that the normals' sender would not make it urgent.
  const explain = async (file: string, callingAe: string) =>
    JSON.parse((await runCli(['rules', 'explain', file, '--config', gateway.configPath, '--calling-ae', callingAe, '--json'])).stdout) as { rule: string; action: { priority: string } };
  t.like(await explain(urgent.path, 'ER_DX'), { rule: 'er-urgent', action: { priority: 'urgent' } });
  t.like(await explain(urgent.path, 'DX_ROOM1'), { rule: 'chest', action: { priority: 'normal' } });
});

test.serial('a classified study is delivered while the rest of the backlog is still being classified, not after it', async (t) => {
  const dir = inputDir();
  const studies = await Promise.all(
    Array.from({ length: 6 }, (_, i) => writeImageFile(dir, { studyInstanceUid: newUid(), rows: 1024, columns: 1024, accessionNumber: `ACC-B${i}`, seed: 70 + i })),
  );
  const sent = await storescu(gateway.port, studies.map((s) => s.path), { callingAe: 'DX_ROOM1' });
  t.is(sent.code, 0, sent.stderr);
  for (const s of studies) await gateway.waitForLog(isLog('EXPORT-6002', { studyInstanceUid: s.studyInstanceUid }), 'every study reported', 60_000);

  // In the order the one worker classified them: a study's objects reach the PACS before the study two places
  // after it is classified (storing one SC in Orthanc is quicker than classifying one 1024 x 1024 image; held
  // back until the whole backlog is classified, the first studies' results would wait for all the others).
  const written = (uid: string) => logIndex(gateway.logs, isLog('PIPELINE-4007', { studyInstanceUid: uid }));
  const stored = (uid: string) => logIndex(gateway.logs, isLog('EXPORT-6001', { studyInstanceUid: uid }));
  const order = [...studies].sort((a, b) => written(a.studyInstanceUid) - written(b.studyInstanceUid));
  const late = order.slice(0, -2).filter((s, k) => stored(s.studyInstanceUid) > written(order[k + 2]?.studyInstanceUid ?? ''));
  t.log(`log positions: ${order.map((s, k) => `#${k} written ${written(s.studyInstanceUid)}, stored ${stored(s.studyInstanceUid)}`).join('; ')}`);
  t.is(late.length, 0, `${late.length} studies waited for later studies' classification before going to the PACS`);
});
