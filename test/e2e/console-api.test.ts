// The console's JSON API on the REAL daemon (a child process), over real HTTP, logged in as a client would (POST
// /login, GET /api/v1/session for the CSRF token). Peers: a real Orthanc (PACS 'orthanc'), a python3-hl7 listener
// (RIS 'ris') that answers AR until a test switches it to AA, and a PACS 'nowhere' that nobody listens on (its
// deliveries retry, every 300 s, so a job routed there stays 'delivering' for the whole file: a running job made
// deterministically). One action per test, each with its bad input first: a clear 4xx with the reason, and the
// job store's rows (read-only SQLite beside the daemon) identical before and after the refused call.

import test, { type ExecutionContext } from 'ava';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { storescu } from '../helpers/dcmtk.js';
import { newUid, writeImageFile } from '../helpers/dicom-factory.js';
import { ConsoleClient, type ApiError } from '../helpers/console-client.js';
import { addConsoleUser, startGateway, writeGatewayConfig, type GatewayUnderTest } from '../helpers/gateway-process.js';
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
  peerConfig,
  processAction,
  withStore,
  type DeliveryRow,
} from '../helpers/pipeline-peers.js';
import { waitUntil } from '../helpers/wait-until.js';
import type {
  AuditEntry,
  Dashboard,
  ConsoleHealth,
  DeliveryListItem,
  DryRun,
  EchoResult,
  JobListItem,
  Page,
  RulesValidation,
  RunningConfig,
  StudyListItem,
  StudyStory,
} from '../../src/admin/console-types.js';

const ADMIN = { user: 'alice', password: 'correct horse battery staple' };
const VIEWER = { user: 'victor', password: 'viewer password 2026' };
const NOWHERE = 'nowhere';
const BUSY_ACCESSION = 'ACC-API-BUSY';

/** Three studies that park on the RIS (AR): A is released alone, B discarded, C released with its destination. */
interface Study {
  uid: string;
  accession: string;
}

interface World {
  orthanc: OrthancUnderTest;
  risPort: number;
  listeners: Hl7Listener[];
  gateway: GatewayUnderTest;
  api: ConsoleClient;
  viewer: ConsoleClient;
  a: Study;
  b: Study;
  c: Study;
}

const cleanups: Array<() => Promise<unknown>> = [];
test.after.always(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

/** The busy rule first (its accession to the dead PACS), then every CR/DX study to Orthanc and the RIS. */
function startingRules(): unknown[] {
  return [
    {
      name: 'busy',
      match: { attributes: { AccessionNumber: { equals: BUSY_ACCESSION } } },
      action: { model: 'tiny', outputs: ['sc'], pacs: [NOWHERE], ris: [], priority: 'normal' },
    },
    { name: 'chest', match: { attributes: { Modality: { oneOf: ['CR', 'DX'] } } }, action: processAction() },
  ];
}

let world: World | undefined;
test.before(async () => {
  const orthanc = await startOrthanc();
  cleanups.push(() => orthanc.dispose());
  const risPort = await freePort();
  const listener = await startHl7Listener({ responses: ['ar'], port: risPort });
  const listeners = [listener];
  cleanups.push(async () => {
    for (const l of listeners) await l.stop();
  });
  const overrides = peerConfig({
    pacsPort: orthanc.dicomPort,
    risPort,
    rules: startingRules(),
    // Long backoff: the dead PACS is tried once, then not for 5 minutes (AR parks at once whatever the policy).
    delivery: { initialBackoffSeconds: 300, maxBackoffSeconds: 300 },
  });
  const destinations = overrides.destinations as { pacs: Array<Record<string, unknown>> };
  destinations.pacs.push({
    type: 'dicom',
    name: NOWHERE,
    host: '127.0.0.1',
    port: await freePort(),
    aeTitle: 'NOWHERE',
    connectTimeoutSeconds: 2,
    responseTimeoutSeconds: 5,
  });
  const setup = await writeGatewayConfig(overrides);
  if ((await addConsoleUser(setup.configPath, ADMIN.user, 'admin', ADMIN.password)) !== 0)
    throw new Error('add-user admin');
  if ((await addConsoleUser(setup.configPath, VIEWER.user, 'viewer', VIEWER.password)) !== 0)
    throw new Error('add-user viewer');
  const gateway = await startGateway({}, setup);
  cleanups.push(() => gateway.stop());
  const ready = await gateway.waitForLog((l) => l.event === 'GATEWAY-7010', 'the admin port');
  const base = new URL(String(ready.url)).origin;

  const dir = inputDir();
  const studies = ['A', 'B', 'C'].map((k) => ({ uid: newUid(), accession: `ACC-API-${k}` }));
  const files = await Promise.all(
    studies.map((s, i) =>
      writeImageFile(dir, { studyInstanceUid: s.uid, accessionNumber: s.accession, seed: 160 + i }),
    ),
  );
  const sent = await storescu(
    gateway.port,
    files.map((f) => f.path),
  );
  if (sent.code !== 0) throw new Error(`storescu: ${sent.stderr}`);
  for (const s of studies) {
    await gateway.waitForLog(
      isLog('EXPORT-6004', { studyInstanceUid: s.uid, destination: RIS_NAME }),
      `study ${s.accession}: the RIS delivery parked after AR`,
      90_000,
    );
  }
  const api = new ConsoleClient(base);
  await api.logIn(ADMIN.user, ADMIN.password);
  const viewer = new ConsoleClient(base);
  await viewer.logIn(VIEWER.user, VIEWER.password);
  const [a, b, c] = studies as [Study, Study, Study];
  world = { orthanc, risPort, listeners, gateway, api, viewer, a, b, c };
});

function w(): World {
  if (world === undefined) throw new Error('set-up did not finish');
  return world;
}

/** Every row the console's actions could touch (not the audit trail: a refused apply is audited on purpose). */
function snapshot(): Record<string, unknown[]> {
  return withStore(w().gateway.workDir, (db) =>
    Object.fromEntries(
      ['instances', 'studies', 'jobs', 'job_images', 'deliveries', 'delivery_attempts'].map((table) => [
        table,
        db.prepare(`SELECT * FROM ${table} ORDER BY rowid`).all(),
      ]),
    ),
  );
}

/** Asserts a refusal: the status, the error code, a sentence that matches `why`, and no row changed. */
async function refused(
  t: ExecutionContext,
  call: () => Promise<{ status: number; json: unknown }>,
  status: number,
  why: RegExp,
  code?: string,
): Promise<ApiError> {
  const before = snapshot();
  const response = await call();
  t.is(response.status, status, JSON.stringify(response.json));
  const body = response.json as ApiError;
  t.log(`${response.status} ${body?.error}: ${body?.message}`);
  t.is(typeof body?.error, 'string');
  if (code !== undefined) t.is(body.error, code);
  t.regex(body.message, why);
  t.deepEqual(snapshot(), before, 'nothing changed in the job store');
  return body;
}

function risDelivery(study: Study): DeliveryRow {
  // The first job's (a reprocess adds another with deliveries of its own).
  const [job] = jobsOfStudy(w().gateway.workDir, study.uid);
  const ris = deliveriesOfJob(w().gateway.workDir, job?.id ?? -1).find((d) => d.kind === 'ris');
  if (ris === undefined) throw new Error(`study ${study.accession} has no RIS delivery`);
  return ris;
}

function pacsDelivery(study: Study): DeliveryRow {
  const [job] = jobsOfStudy(w().gateway.workDir, study.uid);
  const pacs = deliveriesOfJob(w().gateway.workDir, job?.id ?? -1).find((d) => d.kind === 'pacs');
  if (pacs === undefined) throw new Error(`study ${study.accession} has no PACS delivery`);
  return pacs;
}

async function healthz(): Promise<{ status: number; text: string }> {
  const response = await fetch(`${w().api.base}/healthz`);
  return { status: response.status, text: await response.text() };
}

test.serial('/healthz is 503 and names the parked deliveries while three are parked', async (t) => {
  const health = await healthz();
  t.is(health.status, 503);
  t.regex(health.text, /parked/);
  const dashboard = await w().api.get<Dashboard>('/api/v1/dashboard');
  t.is(dashboard.status, 200);
  t.is(dashboard.json.parked, 3);
  t.is(dashboard.json.status, 'degraded');
});

test.serial(
  'without a session a read is 401; an action without the CSRF token or with a forged one is 403',
  async (t) => {
    const { api, a } = w();
    const anonymous = new ConsoleClient(api.base);
    const read = await anonymous.get<ApiError>('/api/v1/deliveries', {}, 'state=parked');
    t.is(read.status, 401);
    t.is(typeof read.json.message, 'string');
    const id = risDelivery(a).id;
    await refused(t, () => anonymous.post('/api/v1/deliveries/{id}/release', { id }), 401, /log in|session/i);
    await refused(t, () => api.request('POST', '/api/v1/deliveries/{id}/release', { id }, {}, '', null), 403, /CSRF/i);
    await refused(
      t,
      () => api.request('POST', '/api/v1/deliveries/{id}/release', { id }, {}, '', 'forged-token'),
      403,
      /CSRF/i,
    );
    const wrongPassword = await anonymous.request<ApiError>(
      'POST',
      '/login',
      {},
      { user: ADMIN.user, password: 'nope' },
    );
    t.is(wrongPassword.status, 401);
    t.is(wrongPassword.json.error, 'LOGIN_FAILED');
  },
);

test.serial('lists filter by state, destination and accession, and page with limit/offset/total', async (t) => {
  const { api, a, b, c } = w();
  const parked = await api.get<Page<DeliveryListItem>>('/api/v1/deliveries', {}, 'state=parked');
  t.is(parked.status, 200);
  t.is(parked.json.total, 3);
  t.deepEqual(
    parked.json.items.map((d) => [d.kind, d.destination, d.state]),
    Array(3).fill(['ris', RIS_NAME, 'parked']),
  );
  t.deepEqual(parked.json.items.map((d) => d.studyInstanceUid).sort(), [a.uid, b.uid, c.uid].sort());
  t.is(
    (await api.get<Page<DeliveryListItem>>('/api/v1/deliveries', {}, `state=parked&destination=${PACS_NAME}`)).json
      .total,
    0,
  );
  const toOrthanc = await api.get<Page<DeliveryListItem>>('/api/v1/deliveries', {}, `destination=${PACS_NAME}`);
  t.deepEqual(
    toOrthanc.json.items.map((d) => d.state),
    ['delivered', 'delivered', 'delivered'],
  );

  // Pagination: two pages of the parked ones, together all three, each once.
  const first = await api.get<Page<DeliveryListItem>>('/api/v1/deliveries', {}, 'state=parked&limit=2&offset=0');
  const second = await api.get<Page<DeliveryListItem>>('/api/v1/deliveries', {}, 'state=parked&limit=2&offset=2');
  t.deepEqual([first.json.items.length, first.json.total, first.json.limit, first.json.offset], [2, 3, 2, 0]);
  t.deepEqual([second.json.items.length, second.json.total, second.json.offset], [1, 3, 2]);
  t.deepEqual(
    [...first.json.items, ...second.json.items].map((d) => d.id).sort(),
    parked.json.items.map((d) => d.id).sort(),
  );

  const parkedJobs = await api.get<Page<JobListItem>>('/api/v1/jobs', {}, `state=parked&destination=${RIS_NAME}`);
  t.is(parkedJobs.status, 200);
  t.is(parkedJobs.json.total, 3);
  t.true(parkedJobs.json.items.every((j) => j.state === 'parked' && j.deliveries.parked === 1));
  const jobA = await api.get<Page<JobListItem>>('/api/v1/jobs', {}, `accession=${a.accession}`);
  t.deepEqual(
    jobA.json.items.map((j) => [j.studyInstanceUid, j.accessionNumber]),
    [[a.uid, a.accession]],
  );
  t.is((await api.get<Page<JobListItem>>('/api/v1/jobs', {}, `destination=${NOWHERE}`)).json.total, 0);

  const studyB = await api.get<Page<StudyListItem>>('/api/v1/studies', {}, `accession=${b.accession}`);
  t.deepEqual(
    studyB.json.items.map((s) => s.studyInstanceUid),
    [b.uid],
  );
  const page = await api.get<Page<StudyListItem>>('/api/v1/studies', {}, 'limit=1&offset=1');
  t.deepEqual([page.json.items.length, page.json.total], [1, 3]);

  t.is((await api.get<Page<StudyListItem>>('/api/v1/studies', {}, 'ae=MODALITY')).json.total, 3);
  t.is((await api.get<Page<StudyListItem>>('/api/v1/studies', {}, 'ae=OTHER_AE')).json.total, 0);
  const today = new Date().toISOString().slice(0, 10);
  const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
  t.is((await api.get<Page<StudyListItem>>('/api/v1/studies', {}, `since=${today}`)).json.total, 3);
  t.is((await api.get<Page<StudyListItem>>('/api/v1/studies', {}, `since=${tomorrow}`)).json.total, 0);
  t.is((await api.get<Page<JobListItem>>('/api/v1/jobs', {}, `until=${today}`)).json.total, 0);
  const badDate = await api.get<ApiError>('/api/v1/deliveries', {}, 'since=yesterday-ish');
  t.is(badDate.status, 400);
  // Said as a sentence an admin can act on, not as the schema's regular expression.
  t.regex(badDate.json.message, /since must be an ISO 8601 date or date-time.*or epoch milliseconds/);
  t.notRegex(badDate.json.message, /\\d|\^/);
  const badState = await api.get<ApiError>('/api/v1/jobs', {}, 'state=stuck');
  t.is(badState.status, 400);
  t.regex(badState.json.message, /state must be one of: .*parked/);
  const badUid = await api.get<ApiError>('/api/v1/studies/{uid}', { uid: 'not-a-uid' });
  t.is(badUid.status, 400);
  t.regex(badUid.json.message, /uid must be a DICOM UID/);

  const badOffset = await api.get<ApiError>('/api/v1/deliveries', {}, 'offset=-1');
  t.is(badOffset.status, 400);
  t.regex(badOffset.json.message, /offset/);
  const badLimit = await api.get<ApiError>('/api/v1/studies', {}, 'limit=0');
  t.is(badLimit.status, 400);
  t.regex(badLimit.json.message, /limit/);
});

test.serial('a viewer is refused a release (403 ROLE_FORBIDDEN); nothing changes', async (t) => {
  const { viewer, a } = w();
  await refused(
    t,
    () => viewer.post('/api/v1/deliveries/{id}/release', { id: risDelivery(a).id }),
    403,
    /viewer role.*admin/,
    'ROLE_FORBIDDEN',
  );
});

test.serial('release of an unknown delivery is 404 and of a delivered one 409; nothing changes', async (t) => {
  const { api, a } = w();
  await refused(
    t,
    () => api.post('/api/v1/deliveries/{id}/release', { id: 999_999 }),
    404,
    /999999/,
    'DELIVERY_NOT_FOUND',
  );
  const delivered = pacsDelivery(a);
  t.is(delivered.state, 'delivered');
  await refused(
    t,
    () => api.post('/api/v1/deliveries/{id}/release', { id: delivered.id }),
    409,
    /is delivered, not parked/,
    'DELIVERY_NOT_PARKED',
  );
});

test.serial('release all for an unknown destination is 404 naming it; nothing changes', async (t) => {
  const { api } = w();
  await refused(
    t,
    () => api.post('/api/v1/destinations/{name}/release', { name: 'no-such-ris' }),
    404,
    /no-such-ris/,
    'DESTINATION_NOT_FOUND',
  );
});

test.serial('discard: no reason 400, unknown 404, not parked 409, then a good discard of B', async (t) => {
  const { api, a, b } = w();
  const target = risDelivery(b);
  const route = '/api/v1/deliveries/{id}/discard';
  await refused(t, () => api.post(route, { id: target.id }, {}), 400, /reason/);
  await refused(t, () => api.post(route, { id: target.id }, { reason: '   ' }), 400, /reason/, 'REASON_REQUIRED');
  await refused(t, () => api.post(route, { id: 999_999 }, { reason: 'test' }), 404, /999999/, 'DELIVERY_NOT_FOUND');
  await refused(
    t,
    () => api.post(route, { id: pacsDelivery(a).id }, { reason: 'test' }),
    409,
    /is delivered, not parked/,
    'DELIVERY_NOT_PARKED',
  );

  const reason = 'duplicate order: the RIS already has this result';
  const good = await api.post<DeliveryListItem>(route, { id: target.id }, { reason });
  t.is(good.status, 200);
  t.is(good.json.state, 'discarded');
  const row = risDelivery(b);
  t.is(row.state, 'discarded');
  t.regex(row.last_error ?? '', /duplicate order/);
  t.is((await healthz()).status, 503, 'A and C are still parked');
  // Discarded is final: neither a second discard nor a release takes it back.
  await refused(t, () => api.post(route, { id: target.id }, { reason: 'again' }), 409, /is discarded, not parked/);
  await refused(
    t,
    () => api.post('/api/v1/deliveries/{id}/release', { id: target.id }),
    409,
    /is discarded, not parked/,
    'DELIVERY_NOT_PARKED',
  );
  // Releasing a destination with nothing parked is no error: nothing to do, nothing done.
  const before = snapshot();
  const none = await api.post<{ released: DeliveryListItem[] }>('/api/v1/destinations/{name}/release', {
    name: PACS_NAME,
  });
  t.deepEqual([none.status, none.json.released], [200, []]);
  t.deepEqual(snapshot(), before);
});

test.serial('release one: once the RIS answers AA, A is delivered', async (t) => {
  const world = w();
  const { api, a } = world;
  // The RIS is fixed: the AR listener goes, an AA one takes its port.
  await world.listeners[0]?.stop();
  world.listeners.push(await startHl7Listener({ responses: ['aa'], port: world.risPort }));
  const target = risDelivery(a);
  const released = await api.post<{ released: DeliveryListItem[] }>('/api/v1/deliveries/{id}/release', {
    id: target.id,
  });
  t.is(released.status, 200);
  t.deepEqual(
    released.json.released.map((d) => d.id),
    [target.id],
  );
  await world.gateway.waitForLog(
    isLog('EXPORT-6002', { studyInstanceUid: a.uid, destination: RIS_NAME }),
    'A reported to the RIS after the release',
  );
  t.is(risDelivery(a).state, 'delivered');
  t.is(jobsOfStudy(world.gateway.workDir, a.uid)[0]?.state, 'done');
});

test.serial('release all parked for the RIS: C is delivered and /healthz is 200 again', async (t) => {
  const world = w();
  const { api, c } = world;
  const released = await api.post<{ released: DeliveryListItem[] }>('/api/v1/destinations/{name}/release', {
    name: RIS_NAME,
  });
  t.is(released.status, 200);
  t.deepEqual(
    released.json.released.map((d) => d.studyInstanceUid),
    [c.uid],
  );
  await world.gateway.waitForLog(
    isLog('EXPORT-6002', { studyInstanceUid: c.uid, destination: RIS_NAME }),
    'C reported to the RIS after the release',
  );
  t.is(risDelivery(c).state, 'delivered');
  await waitUntil(() => jobsOfStudy(world.gateway.workDir, c.uid)[0]?.state === 'done', 'job of C done');
  const health = await healthz();
  t.is(health.status, 200, health.text);
  t.is((await api.get<Dashboard>('/api/v1/dashboard')).json.parked, 0);
  t.is((await api.get<Page<DeliveryListItem>>('/api/v1/deliveries', {}, 'state=parked')).json.total, 0);
});

test.serial('reprocess: unknown study 404; A as a new revision that is processed and delivered', async (t) => {
  const world = w();
  const { api, a } = world;
  await refused(
    t,
    () => api.post('/api/v1/studies/{uid}/reprocess', { uid: '1.2.3.999' }),
    404,
    /1\.2\.3\.999/,
    'STUDY_NOT_FOUND',
  );
  const first = jobsOfStudy(world.gateway.workDir, a.uid)[0];
  if (first === undefined) return t.fail('A has no job');
  const done = await api.post<{ jobId: number; revision: number }>('/api/v1/studies/{uid}/reprocess', { uid: a.uid });
  t.is(done.status, 200);
  t.is(done.json.revision, first.revision + 1);
  await world.gateway.waitForLog(
    isLog('EXPORT-6002', { jobId: done.json.jobId, destination: RIS_NAME }),
    'the new revision reported to the RIS',
    90_000,
  );
  await waitUntil(
    () => jobsOfStudy(world.gateway.workDir, a.uid).find((j) => j.id === done.json.jobId)?.state === 'done',
    'the new revision done',
  );
  const jobs = jobsOfStudy(world.gateway.workDir, a.uid);
  t.deepEqual(
    jobs.map((j) => [j.id, j.revision, j.state]),
    [
      [first.id, first.revision, 'done'],
      [done.json.jobId, first.revision + 1, 'done'],
    ],
  );
  t.deepEqual(
    deliveriesOfJob(world.gateway.workDir, done.json.jobId).map((d) => [d.kind, d.destination, d.state]),
    [
      ['pacs', PACS_NAME, 'delivered'],
      ['ris', RIS_NAME, 'delivered'],
    ],
  );
});

test.serial('reprocess of a study whose job is still delivering is 409; nothing changes', async (t) => {
  const world = w();
  const uid = newUid();
  const file = await writeImageFile(inputDir(), { studyInstanceUid: uid, accessionNumber: BUSY_ACCESSION, seed: 169 });
  const sent = await storescu(world.gateway.port, [file.path]);
  t.is(sent.code, 0, sent.stderr);
  // Its PACS ('nowhere') refuses the connection: a retry in 300 s, the job 'delivering' until then.
  await world.gateway.waitForLog(
    isLog('EXPORT-6003', { studyInstanceUid: uid, destination: NOWHERE }),
    'the busy study failing at the dead PACS',
    90_000,
  );
  t.is(jobsOfStudy(world.gateway.workDir, uid)[0]?.state, 'delivering');
  await refused(
    t,
    () => world.api.post('/api/v1/studies/{uid}/reprocess', { uid }),
    409,
    /still delivering/,
    'STUDY_BUSY',
  );
});

test.serial('echo: Orthanc answers; the dead PACS is reported not ok; an unknown destination is 404', async (t) => {
  const { api } = w();
  // Without admin.trustProxy a client's own x-forwarded-for is not believed: the audit keeps the real address.
  api.headers = { 'x-forwarded-for': '10.9.9.9' };
  const echo = await api
    .post<EchoResult>('/api/v1/destinations/{name}/echo', { name: PACS_NAME })
    .finally(() => (api.headers = {}));
  t.is(echo.status, 200);
  t.true(echo.json.ok, echo.json.detail);
  t.is(echo.json.destination, PACS_NAME);
  const dead = await api.post<EchoResult>('/api/v1/destinations/{name}/echo', { name: NOWHERE });
  t.is(dead.status, 200);
  t.false(dead.json.ok);
  await refused(
    t,
    () => api.post('/api/v1/destinations/{name}/echo', { name: 'no-such-pacs' }),
    404,
    /no-such-pacs/,
    'DESTINATION_NOT_FOUND',
  );
});

const UNKNOWN_DESTINATION_RULES = [
  { name: 'lost', match: {}, action: { model: 'tiny', outputs: ['sc'], pacs: ['no-such-pacs'], ris: [] } },
];

test.serial('rules validate: an unknown destination is named with its key path rules.0.action.pacs.0', async (t) => {
  const { api } = w();
  const before = snapshot();
  const bad = await api.post<RulesValidation>('/api/v1/rules/validate', {}, { rules: UNKNOWN_DESTINATION_RULES });
  // validate answers the question "is this valid?" (200 with the issues), the UI shows them one by one; the
  // actions that take rules (dry run, apply) refuse the same set with 422 below.
  t.is(bad.status, 200);
  t.false(bad.json.ok);
  const issues = bad.json.ok ? [] : bad.json.issues;
  const issue = issues.find((i) => i.path === 'rules.0.action.pacs.0');
  t.truthy(issue, JSON.stringify(issues));
  t.regex(issue?.message ?? '', /no-such-pacs/);
  const good = await api.post<RulesValidation>('/api/v1/rules/validate', {}, { rules: startingRules() });
  t.deepEqual([good.status, good.json.ok], [200, true]);
  t.deepEqual(snapshot(), before);
});

test.serial('rules dry run: bad last 400, invalid rules 422; a good one lists what would change', async (t) => {
  const { api, a } = w();
  for (const last of [0, 1001, 'ten']) {
    await refused(t, () => api.post('/api/v1/rules/dry-run', {}, { rules: startingRules(), last }), 400, /last/);
  }
  await refused(
    t,
    () => api.post('/api/v1/rules/dry-run', {}, { rules: UNKNOWN_DESTINATION_RULES, last: 10 }),
    422,
    /rules\.0\.action\.pacs\.0/,
    'RULES_INVALID',
  );
  const configBefore = readFileSync(w().gateway.configPath);
  const ignoreAll = [{ name: 'ignore-all', match: {}, action: { ignore: true } }];
  const before = snapshot();
  const dry = await api.post<DryRun>('/api/v1/rules/dry-run', {}, { rules: ignoreAll, last: 10 });
  t.is(dry.status, 200);
  t.is(dry.json.studies, 4);
  t.is(dry.json.changed, 4);
  const rowA = dry.json.rows.find((r) => r.studyInstanceUid === a.uid);
  t.is(rowA?.happened?.rule, 'chest');
  t.deepEqual([rowA?.would.rule, rowA?.would.ignored], ['ignore-all', true]);
  t.true(rowA?.changes.includes('ignored'));
  t.deepEqual(snapshot(), before, 'a dry run changes nothing');
  t.true(readFileSync(w().gateway.configPath).equals(configBefore), 'nor the config file');
});

test.serial(
  'rules apply: invalid is 422 with the file byte-identical; valid is written, backed up, reloaded',
  async (t) => {
    const { api, gateway } = w();
    const dir = path.dirname(gateway.configPath);
    const original = readFileSync(gateway.configPath);
    const filesBefore = readdirSync(dir).sort();
    await refused(
      t,
      () => api.post('/api/v1/rules/apply', {}, { rules: UNKNOWN_DESTINATION_RULES }),
      422,
      /rules\.0\.action\.pacs\.0.*no-such-pacs|no-such-pacs.*rules\.0\.action\.pacs\.0/,
      'RULES_INVALID',
    );
    await refused(
      t,
      () => api.post('/api/v1/rules/apply', {}, { rules: 'chest: all' }),
      422,
      /rules: the rule set must be a list/,
      'RULES_INVALID',
    );
    await refused(t, () => api.post('/api/v1/rules/apply', {}, {}), 400, /rules/, 'BAD_REQUEST');
    t.true(readFileSync(gateway.configPath).equals(original), 'the config file is byte-identical');
    t.deepEqual(readdirSync(dir).sort(), filesBefore, 'no backup or temp file left');
    t.deepEqual(
      (await api.get<{ rules: Array<{ name: string }> }>('/api/v1/rules')).json.rules.map((r) => r.name),
      ['busy', 'chest'],
    );

    const reloadsBefore = gateway.logs.filter((l) => l.event === 'CONFIG-9004').length;
    const next = [
      ...startingRules(),
      { name: 'lateral-ignored', match: { attributes: { ViewPosition: { equals: 'LL' } } }, action: { ignore: true } },
    ];
    const applied = await api.post<{ backup: string; rules: number }>('/api/v1/rules/apply', {}, { rules: next });
    t.is(applied.status, 200, JSON.stringify(applied.json));
    t.is(applied.json.rules, 3);
    t.true(readFileSync(applied.json.backup).equals(original), 'the previous file is kept as the backup');
    t.is(path.dirname(applied.json.backup), dir);
    const written = parse(readFileSync(gateway.configPath, 'utf8')) as {
      rules: Array<{ name: string }>;
      dicom: unknown;
    };
    t.deepEqual(
      written.rules.map((r) => r.name),
      ['busy', 'chest', 'lateral-ignored'],
    );
    t.deepEqual(written.dicom, (parse(original.toString('utf8')) as { dicom: unknown }).dicom, 'the rest is kept');
    await waitUntil(
      () => gateway.logs.filter((l) => l.event === 'CONFIG-9004').length > reloadsBefore,
      'the reload (CONFIG-9004)',
      10_000,
    );
    t.deepEqual(
      (await api.get<{ rules: Array<{ name: string }> }>('/api/v1/rules')).json.rules.map((r) => r.name),
      ['busy', 'chest', 'lateral-ignored'],
    );
  },
);

test.serial('GET config: the running config, its file and the keys that need a restart', async (t) => {
  const { api, gateway } = w();
  const config = await api.get<RunningConfig>('/api/v1/config');
  t.is(config.status, 200);
  t.is(config.json.source, gateway.configPath);
  for (const key of ['dicom', 'storage', 'models', 'inference', 'admin', 'logging'])
    t.true(config.json.restartNeededKeys.includes(key), key);
  t.deepEqual(config.json.pendingRestart, []);
  t.truthy(config.json.config.destinations);
  t.is(config.json.lastReload?.ok, true);
});

test.serial('health lists every destination with its last success and last failure', async (t) => {
  const { api } = w();
  const health = await api.get<ConsoleHealth>('/api/v1/health');
  t.is(health.status, 200);
  const byName = new Map(health.json.destinations.map((d) => [d.name, d]));
  t.deepEqual([...byName.keys()].sort(), [NOWHERE, PACS_NAME, RIS_NAME].sort());
  const ris = byName.get(RIS_NAME);
  t.truthy(ris?.lastSuccessAt, 'the RIS took the released results');
  t.truthy(ris?.lastFailureAt, 'the RIS answered AR before');
  t.regex(ris?.lastFailure ?? '', /reject|AR/i);
  t.truthy(byName.get(PACS_NAME)?.lastSuccessAt);
  t.is(byName.get(NOWHERE)?.lastSuccessAt, null);
  t.truthy(byName.get(NOWHERE)?.lastFailureAt);
  t.is(byName.get(NOWHERE)?.pending, 1);
  t.is(ris?.parked, 0);
});

test.serial('overlay.png: the SC overlay of A as a PNG; an unknown image or job is 404', async (t) => {
  const { api, a } = w();
  const story = await api.get<StudyStory>('/api/v1/studies/{uid}', { uid: a.uid });
  t.is(story.status, 200);
  t.deepEqual(
    story.json.images.map((i) => i.callingAe),
    ['MODALITY'],
  );
  // Newest revision first: the reprocessed job, then the first one with the AR, the release and the delivery.
  const firstJob = story.json.jobs[story.json.jobs.length - 1];
  t.is(story.json.jobs.length, 2);
  t.like(firstJob?.routing, { rule: 'chest', model: 'tiny', pacs: [PACS_NAME], ris: [RIS_NAME] });
  t.truthy(firstJob?.images[0]?.classification?.predicted);
  t.regex(firstJob?.hl7[0]?.text ?? '', /^MSH\|.*ORU\^R01/);
  const risStory = firstJob?.deliveries.find((d) => d.kind === 'ris');
  t.deepEqual(
    risStory?.history.map((h) => h.outcome),
    ['parked', 'released', 'delivered'],
  );
  t.regex(risStory?.history[0]?.detail ?? '', /reject/i, 'the reason it was parked');
  t.regex(risStory?.history[1]?.detail ?? '', new RegExp(ADMIN.user), 'who released it');
  const job = story.json.jobs.find((j) => j.images.some((i) => i.overlayAvailable));
  const image = job?.images.find((i) => i.overlayAvailable);
  if (job === undefined || image === undefined) return t.fail('no overlay available in the story of A');
  const png = await api.get('/api/v1/jobs/{jobId}/images/{sop}/overlay.png', {
    jobId: job.id,
    sop: image.sopInstanceUid,
  });
  t.is(png.status, 200);
  t.is(png.contentType, 'image/png');
  t.true(png.bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])));
  const unknownImage = await api.get<ApiError>('/api/v1/jobs/{jobId}/images/{sop}/overlay.png', {
    jobId: job.id,
    sop: '1.2.3.4.5',
  });
  t.is(unknownImage.status, 404);
  t.regex(unknownImage.json.message, /1\.2\.3\.4\.5/);
  const unknownJob = await api.get<ApiError>('/api/v1/jobs/{jobId}/images/{sop}/overlay.png', {
    jobId: 999_999,
    sop: image.sopInstanceUid,
  });
  t.is(unknownJob.status, 404);
  t.is(unknownJob.json.error, 'JOB_NOT_FOUND');
  const unknownStudy = await api.get<ApiError>('/api/v1/studies/{uid}', { uid: '1.2.3.999' });
  t.is(unknownStudy.status, 404);
});

test.serial('audit: each action made here, with who, from where and before/after', async (t) => {
  const { api, a, b, c } = w();
  const audit = await api.get<Page<AuditEntry>>('/api/v1/audit', {}, `user=${ADMIN.user}&limit=500`);
  t.is(audit.status, 200);
  const entries = audit.json.items;
  t.true(entries.every((e) => e.user === ADMIN.user && e.address === '127.0.0.1'));
  const of = (action: string, outcome: 'success' | 'failure' = 'success') =>
    entries.filter((e) => e.action === action && e.outcome === outcome);

  const releases = [...of('delivery.release'), ...of('delivery.release-destination')];
  t.deepEqual(
    releases.map((e) => e.target).sort(),
    [`delivery ${risDelivery(a).id}`, `destination ${RIS_NAME}`].sort(),
    'one release of A, one of the RIS destination',
  );
  t.true(releases.every((e) => e.role === 'admin'));
  const one = releases.find((e) => e.action === 'delivery.release');
  t.regex(JSON.stringify(one?.before), /parked/);
  t.like(one?.after, { state: 'pending', released: [risDelivery(a).id] });
  const all = releases.find((e) => e.action === 'delivery.release-destination');
  t.deepEqual(all?.before, { parked: [risDelivery(c).id] });
  t.deepEqual(all?.after, { released: [risDelivery(c).id] });

  const [discard] = of('delivery.discard');
  t.is(discard?.target, `delivery ${risDelivery(b).id}`);
  t.regex(JSON.stringify(discard?.before), /parked/);
  t.regex(JSON.stringify(discard?.after), /discarded/);

  const [reprocess] = of('study.reprocess');
  t.is(reprocess?.target, `study ${a.uid}`);
  const [first, second] = jobsOfStudy(w().gateway.workDir, a.uid);
  t.deepEqual(reprocess?.before, { revision: first?.revision });
  t.deepEqual(reprocess?.after, { revision: second?.revision, jobId: second?.id });

  const echoes = of('destination.echo').concat(of('destination.echo', 'failure'));
  t.is(echoes.find((e) => e.target === `destination ${PACS_NAME}`)?.address, '127.0.0.1', 'not the forged 10.9.9.9');
  t.deepEqual(echoes.map((e) => e.target).sort(), [`destination ${NOWHERE}`, `destination ${PACS_NAME}`].sort());

  const [applied] = of('rules.apply');
  t.regex(JSON.stringify(applied?.before), /"chest"/);
  t.regex(JSON.stringify(applied?.after), /lateral-ignored/);
  t.is(of('rules.apply', 'failure').length, 2, 'the refused applies are on record too (the 400 never reached it)');
  t.true(of('user.login').length >= 1);

  const viewer = await api.get<Page<AuditEntry>>('/api/v1/audit', {}, `user=${VIEWER.user}`);
  t.false(viewer.json.items.some((e) => e.outcome === 'success' && e.action.startsWith('delivery.')));
});

test.serial('/api/openapi.json lists every route this file called', async (t) => {
  const { api, viewer } = w();
  const doc = await fetch(`${api.base}/api/openapi.json`);
  t.is(doc.status, 200);
  const paths = ((await doc.json()) as { paths: Record<string, Record<string, unknown>> }).paths;
  const called = new Set([...api.called, ...viewer.called]);
  t.true(called.size >= 15, [...called].join(', '));
  for (const route of called) {
    const [method = '', template = ''] = route.split(' ');
    t.truthy(paths[template]?.[method.toLowerCase()], `${route} is in the OpenAPI document`);
  }
});
