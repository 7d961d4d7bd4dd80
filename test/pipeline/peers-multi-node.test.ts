// Several gateway nodes on one PostgreSQL store and one shared spool (issue 20), with real peers: nodes a and b
// receive and analyse, node c delivers to a real Orthanc (PACS) and the python3-hl7 listener (RIS). 30 studies go
// to a and b alternately; a is kill -9'd while it holds a job mid-way (one image of two classified) and restarted
// once b has taken the job over. At the end every acknowledged study has its outputs in Orthanc exactly once and
// its ORU at the RIS exactly once, no job or delivery is stuck, and the takeover came within the lease timeout
// plus a heartbeat and a few seconds.
import test from 'ava';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resultControlId } from '../../src/reporting/hl7-control-id.js';
import { newUid, writeImageFile, type SyntheticImageFile } from '../helpers/dicom-factory.js';
import { storescu } from '../helpers/dcmtk.js';
import {
  listJobs,
  startGateway,
  writeGatewayConfig,
  type GatewayUnderTest,
  type JobsListing,
  type LogLine,
} from '../helpers/gateway-process.js';
import { startHl7Listener, type Hl7Listener } from '../helpers/hl7-listener.js';
import { startOrthanc, type OrthancUnderTest } from '../helpers/orthanc.js';
import {
  RIS_NAME,
  SECONDARY_CAPTURE,
  inputDir,
  isLog,
  orthancStudyInstances,
  peerConfig,
} from '../helpers/pipeline-peers.js';
import { startPostgres, type PostgresUnderTest } from '../helpers/postgres.js';

const LEASE_SECONDS = 6;
const HEARTBEAT_SECONDS = 2;
const STUDIES = 30;

let cluster: PostgresUnderTest | undefined;
let orthanc: OrthancUnderTest | undefined;
let ris: Hl7Listener | undefined;
const nodes: GatewayUnderTest[] = [];

test.before(async () => {
  [cluster, orthanc, ris] = await Promise.all([
    startPostgres(),
    startOrthanc(),
    startHl7Listener({ responses: ['aa'] }),
  ]);
});

test.after.always(async () => {
  await Promise.all(nodes.map((n) => n.kill9()));
  await Promise.all([orthanc?.dispose(), ris?.stop()]);
  await cluster?.stop();
});

interface Study {
  label: string;
  images: Array<SyntheticImageFile & { path: string }>;
  /** Images the model classifies (frontal): one SC each. */
  frontal: number;
  receiver: 'a' | 'b';
}

type Listing = JobsListing & {
  jobs: Array<JobsListing['jobs'][number] & { leaseOwner: string | null }>;
  deliveries: Array<{ jobId: number; kind: string; state: string }>;
};

/** 30 studies: one image each, a lateral-only one, and last (processed once every send is done) large two-image ones. */
async function makeStudies(): Promise<Study[]> {
  const dir = inputDir();
  const studies: Study[] = [];
  for (let i = 0; i < STUDIES; i += 1) {
    const studyInstanceUid = newUid();
    const label = `m${i}`;
    const common = { studyInstanceUid, accessionNumber: `ACC-${label}`, seed: 100 + i };
    const receiver = i % 2 === 0 ? 'a' : 'b';
    if (i === 5) {
      studies.push({
        label,
        receiver,
        frontal: 0,
        images: [await writeImageFile(dir, { ...common, viewPosition: 'LL' })],
      });
    } else if (i >= 20) {
      // Large, so that classifying one image takes long enough for the kill to land between the two.
      const big = { ...common, rows: 1024, columns: 1024 };
      studies.push({
        label,
        receiver,
        frontal: 2,
        images: [
          await writeImageFile(dir, big),
          await writeImageFile(dir, { ...big, instanceNumber: 2, seed: 200 + i }),
        ],
      });
    } else {
      studies.push({ label, receiver, frontal: 1, images: [await writeImageFile(dir, common)] });
    }
  }
  return studies;
}

test('three nodes on one PostgreSQL and one spool: a node killed mid-job is taken over, every study is delivered exactly once', async (t) => {
  const pg = cluster as PostgresUnderTest;
  const pacs = orthanc as OrthancUnderTest;
  const listener = ris as Hl7Listener;
  const database = await pg.createDatabase();
  const spool = mkdtempSync(path.join(os.tmpdir(), 'multi-node-spool-'));
  const base = peerConfig({ pacsPort: pacs.dicomPort, risPort: listener.port });
  const nodeConfig = (nodeName: string, roles: string[]) =>
    writeGatewayConfig({
      ...base,
      // One image per inference call: the job is half-way (one image's result recorded, one to go) for the whole
      // second inference, which is when the kill must land.
      inference: { ...base.inference, maxBatch: 1 },
      storage: { dataDir: spool, database, postgres: { statementTimeoutSeconds: 30, connectTimeoutSeconds: 5 } },
      cluster: { nodeName, roles, leaseSeconds: LEASE_SECONDS, heartbeatSeconds: HEARTBEAT_SECONDS },
    });
  const setupA = await nodeConfig('node-a', ['receive', 'analyze']);
  const setupB = await nodeConfig('node-b', ['receive', 'analyze']);
  const setupC = await nodeConfig('node-c', ['deliver']);
  // a first: it migrates the database and writes the spool marker that b and c then find.
  const a = await startGateway({}, setupA);
  nodes.push(a);
  const [b, c] = await Promise.all([startGateway({}, setupB), startGateway({}, setupC, 'GATEWAY-7010')]);
  nodes.push(b, c);

  const studies = await makeStudies();
  const portOf = { a: a.port, b: b.port };
  // Both receivers at once, each study in one association.
  await Promise.all(
    (['a', 'b'] as const).map(async (receiver) => {
      for (const study of studies.filter((s) => s.receiver === receiver)) {
        const sent = await storescu(
          portOf[receiver],
          study.images.map((i) => i.path),
        );
        t.is(sent.code, 0, `${study.label} to ${receiver}: ${sent.stderr}`);
      }
    }),
  );
  const byUid = new Map(studies.map((s) => [s.images[0]?.studyInstanceUid ?? '', s]));

  // The kill lands while a holds a job mid-way: one of its two images classified on a, the job not yet written.
  const midJob = (line: LogLine): boolean => {
    if (line.event !== 'ANALYSIS-5010') return false;
    const uid = String(line.studyInstanceUid);
    return (
      byUid.get(uid)?.frontal === 2 &&
      a.logs.filter(isLog('ANALYSIS-5010', { studyInstanceUid: uid })).length === 1 &&
      !a.logs.some(isLog('PIPELINE-4007', { studyInstanceUid: uid }))
    );
  };
  const trigger = await a.waitForLog(midJob, 'node a half-way through a two-image job', 60_000);
  await a.kill9();
  const killedAt = Date.now();
  const heldJobId = Number(trigger.jobId);
  const atKill = (await listJobs(setupB.configPath)) as Listing;
  t.like(
    atKill.jobs.find((j) => j.id === heldJobId),
    { state: 'processing', leaseOwner: 'node-a' },
    'the killed node held the job, unfinished',
  );

  const takeover = await b.waitForLog(
    isLog('PIPELINE-4015', { jobId: heldJobId, from: 'node-a', node: 'node-b' }),
    "node b taking node a's job over",
    (LEASE_SECONDS + HEARTBEAT_SECONDS + 20) * 1000,
  );
  const takeoverSeconds = Date.parse(String(takeover.timestamp)) - killedAt;
  t.log(
    `node b took job ${heldJobId} over ${(takeoverSeconds / 1000).toFixed(1)} s after the kill (lease ${LEASE_SECONDS} s)`,
  );
  t.true(
    takeoverSeconds <= (LEASE_SECONDS + HEARTBEAT_SECONDS + 4) * 1000,
    `takeover within the lease, a heartbeat and a few seconds (${takeoverSeconds} ms)`,
  );

  // a comes back (same name, same spool) and works on along with b.
  const restarted = await startGateway({}, setupA);
  nodes.push(restarted);

  // Polled through the CLI (the store is the only place that knows every node's work); each call takes a moment.
  const deadline = Date.now() + 90_000;
  let final = (await listJobs(setupB.configPath)) as Listing;
  while (!(
    final.jobs.length === STUDIES &&
    final.jobs.every((j) => j.state === 'done' || j.state === 'ignored') &&
    final.deliveries.every((d) => d.state === 'delivered')
  )) {
    if (Date.now() > deadline)
      throw new Error(`work left after 90 s: ${JSON.stringify(final.jobs.filter((j) => j.state !== 'done'))}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    final = (await listJobs(setupB.configPath)) as Listing;
  }
  t.is(final.jobs.length, STUDIES, 'one job per study');
  t.like(
    final.jobs.find((j) => j.id === heldJobId),
    { state: 'done' },
  );

  for (const study of studies) {
    const uid = study.images[0]?.studyInstanceUid ?? '';
    const jobs = final.jobs.filter((j) => j.studyInstanceUid === uid);
    t.deepEqual(
      jobs.map((j) => j.state),
      [study.frontal === 0 ? 'ignored' : 'done'],
      study.label,
    );
    const stored = await orthancStudyInstances(pacs, uid);
    const scs = stored.filter((s) => s.sopClassUid === SECONDARY_CAPTURE).map((s) => s.sopInstanceUid);
    t.is(scs.length, study.frontal, `${study.label}: one SC per frontal image in Orthanc`);
    t.is(new Set(scs).size, scs.length, `${study.label}: no SC twice`);
    t.is(stored.length, scs.length, `${study.label}: nothing else in Orthanc`);
    t.is(
      listener.countByControlId(resultControlId(uid, 0, RIS_NAME)),
      study.frontal === 0 ? 0 : 1,
      `${study.label}: its ORU reached the RIS once`,
    );
  }
  t.is(listener.received.length, STUDIES - 1, 'no other ORU');
  // Delivery is node c's alone.
  for (const node of [a, b, restarted])
    t.false(
      node.logs.some((l) => l.event === 'EXPORT-6001' || l.event === 'EXPORT-6002'),
      'an analysis node delivers nothing',
    );
});
