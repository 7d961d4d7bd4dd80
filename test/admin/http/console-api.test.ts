// The JSON API: each route's answer and its refusals (a clear 4xx with the reason, nothing changed), roles, CSRF,
// and the OpenAPI document.

import test from 'ava';
import { TINY_PNG } from './fake-backends.js';
import { startConsole } from './console-harness.js';

interface ApiError {
  error: string;
  message: string;
}

test('reads: dashboard, health, config, rules, studies, one study, jobs, deliveries, audit, overlay', async (t) => {
  const c = await startConsole(t);
  const viewer = await c.login('victor', 'viewer pass');
  const json = async (url: string) => {
    const response = await viewer.get(url);
    t.is(response.status, 200, url);
    return response.json() as Promise<Record<string, unknown>>;
  };
  t.like(await json('/api/v1/dashboard'), { parked: 1, status: 'degraded' });
  const health = (await json('/api/v1/health')) as { destinations: Array<{ name: string; parked: number }> };
  t.deepEqual(
    health.destinations.map((d) => [d.name, d.parked]),
    [
      ['pacs-main', 0],
      ['ris-main', 1],
    ],
  );
  t.like(await json('/api/v1/config'), {
    source: '/etc/cxr-gateway/config.yaml',
    restartNeededKeys: ['dicom', 'storage', 'admin'],
  });
  t.is(((await json('/api/v1/rules')) as { rules: unknown[] }).rules.length, 1);

  const studies = (await json('/api/v1/studies?limit=1')) as {
    items: Array<{ studyInstanceUid: string }>;
    total: number;
  };
  t.is(studies.total, 2);
  t.deepEqual(
    studies.items.map((s) => s.studyInstanceUid),
    ['1.2.3.2'],
    'newest first, one per page',
  );
  const byAccession = (await json('/api/v1/studies?accession=ACC1')) as { items: Array<{ studyInstanceUid: string }> };
  t.deepEqual(
    byAccession.items.map((s) => s.studyInstanceUid),
    ['1.2.3.1'],
  );
  const since = (await json('/api/v1/studies?since=2026-12-01T08:30:00Z')) as { total: number };
  t.is(since.total, 1, 'since is an ISO time');

  const story = (await json('/api/v1/studies/1.2.3.2')) as {
    jobs: Array<{ id: number; deliveries: Array<{ history: unknown[] }>; hl7: unknown[] }>;
  };
  t.is(story.jobs[0]?.deliveries[1]?.history.length, 1);
  t.is(story.jobs[0]?.hl7.length, 1);

  const jobs = (await json('/api/v1/jobs?state=parked&destination=ris-main')) as {
    items: Array<{ studyInstanceUid: string }>;
  };
  t.deepEqual(
    jobs.items.map((j) => j.studyInstanceUid),
    ['1.2.3.2'],
  );
  const parked = (await json('/api/v1/deliveries?state=parked')) as { items: Array<{ destination: string }> };
  t.deepEqual(
    parked.items.map((d) => d.destination),
    ['ris-main'],
  );
  const audit = (await json('/api/v1/audit?action=user.login')) as { items: Array<{ user: string }> };
  t.deepEqual(
    audit.items.map((e) => e.user),
    ['victor'],
  );

  const jobId = story.jobs[0]?.id ?? 0;
  const png = await viewer.get(`/api/v1/jobs/${jobId}/images/1.2.3.2.1/overlay.png`);
  t.is(png.status, 200);
  t.is(png.headers.get('content-type'), 'image/png');
  t.deepEqual(Buffer.from(await png.arrayBuffer()), TINY_PNG);
});

test('reads refuse unknown ids with 404 and the reason, and bad queries with 400 naming the field', async (t) => {
  const c = await startConsole(t);
  const viewer = await c.login('victor', 'viewer pass');
  const expect = async (url: string, status: number, error: string, message: RegExp) => {
    const response = await viewer.get(url);
    t.is(response.status, status, url);
    const body = (await response.json()) as ApiError;
    t.is(body.error, error, url);
    t.regex(body.message, message, url);
  };
  await expect('/api/v1/studies/9.9.9', 404, 'STUDY_UNKNOWN', /No study 9\.9\.9/);
  await expect('/api/v1/jobs/1/images/9.9/overlay.png', 404, 'OVERLAY_UNKNOWN', /no overlay/);
  await expect('/api/v1/studies/not-a-uid', 400, 'BAD_REQUEST', /uid/);
  await expect('/api/v1/studies?limit=0', 400, 'BAD_REQUEST', /limit/);
  await expect('/api/v1/studies?limit=501', 400, 'BAD_REQUEST', /limit/);
  await expect('/api/v1/studies?state=lost', 400, 'BAD_REQUEST', /state/);
  await expect('/api/v1/studies?colour=red', 400, 'BAD_REQUEST', /additional properties/);
  await expect('/api/v1/deliveries?since=yesterday', 400, 'BAD_REQUEST', /since/);
  await expect('/api/v1/audit?since=2026-12-02&until=2026-12-01', 400, 'BAD_REQUEST', /until must be later than since/);
  await expect('/api/v1/jobs/x/images/1.2/overlay.png', 400, 'BAD_REQUEST', /jobId/);
  await expect('/api/v1/nothing-here', 404, 'NOT_FOUND', /No console page or API route/);
});

test('release one parked delivery: pending again, audited with before/after; a second release is 409, unknown id 404', async (t) => {
  const c = await startConsole(t);
  const admin = await c.login('alice', 'correct horse');
  const parkedId = [...c.backend.deliveriesById.values()].find((d) => d.state === 'parked')?.id ?? 0;
  const released = await admin.act(`/api/v1/deliveries/${parkedId}/release`);
  t.is(released.status, 200);
  t.like(((await released.json()) as { released: Array<{ id: number; state: string }> }).released[0], {
    id: parkedId,
    state: 'pending',
  });
  const entry = c.backend.auditTrail.at(-1);
  t.like(entry, {
    action: 'delivery.release',
    user: 'alice',
    role: 'admin',
    address: '127.0.0.1',
    target: `delivery ${parkedId}`,
  });
  t.like(entry?.before, { state: 'parked' });
  t.like(entry?.after, { state: 'pending' });

  const actions = c.backend.actions.length;
  const again = await admin.act(`/api/v1/deliveries/${parkedId}/release`);
  t.is(again.status, 409);
  t.like(await again.json(), { error: 'DELIVERY_NOT_PARKED' });
  const unknown = await admin.act('/api/v1/deliveries/999/release');
  t.is(unknown.status, 404);
  t.regex(((await unknown.json()) as ApiError).message, /No delivery 999/);
  t.is((await admin.act('/api/v1/deliveries/0/release')).status, 400);
  t.is(c.backend.actions.length, actions, 'refusals changed nothing');
});

test('release every parked delivery of a destination; an unknown destination is 404', async (t) => {
  const c = await startConsole(t);
  c.backend.addStudy({ uid: '1.2.3.3', accession: 'ACC3', deliveries: ['delivered', 'parked'] });
  const admin = await c.login('alice', 'correct horse');
  const response = await admin.act('/api/v1/destinations/ris-main/release');
  t.is(response.status, 200);
  t.is(((await response.json()) as { released: unknown[] }).released.length, 2);
  t.is([...c.backend.deliveriesById.values()].filter((d) => d.state === 'parked').length, 0);
  const unknown = await admin.act('/api/v1/destinations/nowhere/release');
  t.is(unknown.status, 404);
  t.like(await unknown.json(), { error: 'DESTINATION_UNKNOWN' });
});

test('drain a cluster node and let it claim again, audited; an unknown node is 404, a body without draining 400', async (t) => {
  const c = await startConsole(t);
  const admin = await c.login('alice', 'correct horse');
  const drained = await admin.act('/api/v1/cluster/nodes/gw-1/drain', { draining: true });
  t.is(drained.status, 200);
  t.deepEqual(await drained.json(), { node: 'gw-1', draining: true, holds: { jobs: 0, deliveries: 0 } });
  t.is(c.backend.nodes.get('gw-1'), true);
  t.like(c.backend.auditTrail.at(-1), { action: 'node.drain', user: 'alice', target: 'gw-1' });
  const undone = await admin.act('/api/v1/cluster/nodes/gw-1/drain', { draining: false });
  t.like(await undone.json(), { draining: false });
  t.is(c.backend.nodes.get('gw-1'), false);

  const actions = c.backend.actions.length;
  const unknown = await admin.act('/api/v1/cluster/nodes/gw-9/drain', { draining: true });
  t.is(unknown.status, 404);
  t.like(await unknown.json(), { error: 'NODE_UNKNOWN' });
  t.is((await admin.act('/api/v1/cluster/nodes/gw-1/drain', {})).status, 400);
  t.is((await admin.act('/api/v1/cluster/nodes/gw-1/drain', { draining: 'yes' })).status, 400);
  t.is(c.backend.actions.length, actions, 'refusals changed nothing');
});

test('discard needs a reason; discards a parked delivery with it; refuses a delivered one (409)', async (t) => {
  const c = await startConsole(t);
  const admin = await c.login('alice', 'correct horse');
  const parked = [...c.backend.deliveriesById.values()].find((d) => d.state === 'parked');
  const delivered = [...c.backend.deliveriesById.values()].find((d) => d.state === 'delivered');
  const noReason = await admin.act(`/api/v1/deliveries/${parked?.id}/discard`, {});
  t.is(noReason.status, 400);
  t.regex(((await noReason.json()) as ApiError).message, /reason/);
  t.is((await admin.act(`/api/v1/deliveries/${parked?.id}/discard`, { reason: '' })).status, 400);
  t.is(parked?.state, 'parked', 'unchanged');
  const done = await admin.act(`/api/v1/deliveries/${parked?.id}/discard`, { reason: 'duplicate order, RIS has it' });
  t.is(done.status, 200);
  t.like(await done.json(), { state: 'discarded', lastError: 'duplicate order, RIS has it' });
  t.like(c.backend.auditTrail.at(-1), { action: 'delivery.discard', detail: 'duplicate order, RIS has it' });
  const notParked = await admin.act(`/api/v1/deliveries/${delivered?.id}/discard`, { reason: 'x' });
  t.is(notParked.status, 409);
  t.is(delivered?.state, 'delivered');
});

test('reprocess makes a new revision; unknown study 404; a study with a job still running 409', async (t) => {
  const c = await startConsole(t);
  const admin = await c.login('alice', 'correct horse');
  const response = await admin.act('/api/v1/studies/1.2.3.1/reprocess');
  t.is(response.status, 200);
  t.like(await response.json(), { revision: 2 });
  t.like(c.backend.auditTrail.at(-1), { action: 'study.reprocess', target: 'study 1.2.3.1' });
  const busy = await admin.act('/api/v1/studies/1.2.3.1/reprocess');
  t.is(busy.status, 409);
  t.like(await busy.json(), { error: 'STUDY_BUSY' });
  t.is((await admin.act('/api/v1/studies/7.7.7/reprocess')).status, 404);
});

test('echo a destination; unknown destination 404', async (t) => {
  const c = await startConsole(t);
  const admin = await c.login('alice', 'correct horse');
  const echo = await admin.act('/api/v1/destinations/pacs-main/echo');
  t.is(echo.status, 200);
  t.like(await echo.json(), { destination: 'pacs-main', ok: true });
  t.is((await admin.act('/api/v1/destinations/nowhere/echo')).status, 404);
});

test('rules: validate lists the issues, dry run compares, apply writes; a rule set with an unknown destination is refused (422) and nothing changes', async (t) => {
  const c = await startConsole(t);
  const admin = await c.login('alice', 'correct horse');
  const good = [{ name: 'ignore-all', action: { ignore: true } }];
  const bad = [{ name: 'chest', action: { model: 'demo', pacs: ['nowhere'] } }];

  const valid = await admin.act('/api/v1/rules/validate', { rules: good });
  t.is(valid.status, 200);
  t.like(await valid.json(), { ok: true });
  const invalid = await admin.act('/api/v1/rules/validate', { rules: bad });
  t.is(invalid.status, 200);
  t.deepEqual(((await invalid.json()) as { issues: unknown[] }).issues, [
    { path: 'rules.0.action.pacs.0', message: "names destination 'nowhere', which is not configured" },
  ]);

  const dry = await admin.act('/api/v1/rules/dry-run', { rules: good, last: 1 });
  t.is(dry.status, 200);
  const run = (await dry.json()) as { studies: number; changed: number; rows: Array<{ changes: string[] }> };
  t.is(run.studies, 1);
  t.true(run.rows[0]?.changes.includes('ignored'));
  t.is((await admin.act('/api/v1/rules/dry-run', { rules: bad })).status, 422);
  t.is((await admin.act('/api/v1/rules/dry-run', { rules: good, last: 0 })).status, 400);

  const refused = await admin.act('/api/v1/rules/apply', { rules: bad });
  t.is(refused.status, 422);
  t.regex(((await refused.json()) as ApiError).message, /rules\.0\.action\.pacs\.0 names destination 'nowhere'/);
  t.is((c.backend.rules()[0] as { name: string }).name, 'chest', 'running rules unchanged');
  t.is((await admin.act('/api/v1/rules/apply', {})).status, 400, 'no rules in the body');

  const applied = await admin.act('/api/v1/rules/apply', { rules: good });
  t.is(applied.status, 200);
  t.like(await applied.json(), { rules: 1 });
  t.deepEqual(c.backend.rules(), good);
  t.like(c.backend.auditTrail.at(-1), { action: 'rules.apply', user: 'alice' });
});

const ACTIONS: Array<[string, unknown]> = [
  ['/api/v1/deliveries/4/release', {}],
  ['/api/v1/destinations/ris-main/release', {}],
  ['/api/v1/deliveries/4/discard', { reason: 'because' }],
  ['/api/v1/studies/1.2.3.1/reprocess', {}],
  ['/api/v1/destinations/pacs-main/echo', {}],
  ['/api/v1/rules/apply', { rules: [{ name: 'ignore-all', action: { ignore: true } }] }],
  ['/api/v1/cluster/nodes/gw-1/drain', { draining: true }],
];

test('a viewer is refused every action with 403 ROLE_FORBIDDEN, audited, and nothing changes', async (t) => {
  const c = await startConsole(t);
  const viewer = await c.login('victor', 'viewer pass');
  for (const [url, body] of ACTIONS) {
    const response = await viewer.act(url, body);
    t.is(response.status, 403, url);
    const error = (await response.json()) as ApiError;
    t.is(error.error, 'ROLE_FORBIDDEN', url);
    t.regex(error.message, /viewer role/, url);
  }
  t.deepEqual(c.backend.actions, [], 'no action reached the backend');
  t.is(c.backend.auditTrail.filter((e) => e.action === 'access.role-refused').length, ACTIONS.length);
  t.truthy(c.logs.find((l) => l.event === 'ADMIN-7106'));
  // Validation and dry runs change nothing: a viewer may try a rule set.
  t.is((await viewer.act('/api/v1/rules/validate', { rules: [] })).status, 200);
});

test("an action without a CSRF token, with a wrong one, or with another user's is refused 403 CSRF_INVALID and nothing changes", async (t) => {
  const c = await startConsole(t);
  const admin = await c.login('alice', 'correct horse');
  const viewer = await c.login('victor', 'viewer pass');
  const viewersToken = await viewer.csrf();
  await admin.csrf(); // the CSRF secret cookie exists: only the token is missing or wrong
  for (const [url, body] of ACTIONS) {
    for (const csrf of [undefined, 'forged-token', viewersToken]) {
      const response = await admin.request('POST', url, { json: body, csrf });
      t.is(response.status, 403, `${url} ${csrf}`);
      t.is(((await response.json()) as ApiError).error, 'CSRF_INVALID');
    }
  }
  t.deepEqual(c.backend.actions, []);
  t.like(c.backend.auditTrail.at(-1), { action: 'access.csrf-refused', user: 'alice', outcome: 'failure' });
  t.truthy(c.logs.find((l) => l.event === 'ADMIN-7105'));
  // Without the secret cookie too.
  admin.cookies.delete('cxr_csrf');
  const noSecret = await admin.request('POST', '/api/v1/deliveries/4/release', { json: {}, csrf: viewersToken });
  t.is(noSecret.status, 403);
  t.deepEqual(c.backend.actions, []);
});

test('/api/openapi.json is an OpenAPI 3 document listing every API route with a summary and its 200 and 4xx answers', async (t) => {
  const c = await startConsole(t);
  const response = await c.client().get('/api/openapi.json');
  t.is(response.status, 200);
  const doc = (await response.json()) as {
    openapi: string;
    paths: Record<
      string,
      Record<string, { summary?: string; responses?: Record<string, unknown>; parameters?: unknown[] }>
    >;
  };
  t.regex(doc.openapi, /^3\./);
  const routes = Object.entries(doc.paths).flatMap(([p, methods]) =>
    Object.keys(methods).map((m) => `${m.toUpperCase()} ${p}`),
  );
  const expected = [
    'GET /api/v1/session',
    'GET /api/v1/dashboard',
    'GET /api/v1/health',
    'GET /api/v1/config',
    'GET /api/v1/studies',
    'GET /api/v1/studies/{uid}',
    'GET /api/v1/jobs/{jobId}/images/{sop}/overlay.png',
    'GET /api/v1/jobs',
    'GET /api/v1/deliveries',
    'POST /api/v1/deliveries/{id}/release',
    'POST /api/v1/destinations/{name}/release',
    'POST /api/v1/deliveries/{id}/discard',
    'POST /api/v1/studies/{uid}/reprocess',
    'POST /api/v1/destinations/{name}/echo',
    'POST /api/v1/cluster/nodes/{name}/drain',
    'GET /api/v1/rules',
    'POST /api/v1/rules/validate',
    'POST /api/v1/rules/dry-run',
    'POST /api/v1/rules/apply',
    'GET /api/v1/audit',
    'POST /login',
    'POST /logout',
    'GET /healthz',
    'GET /metrics',
    'GET /readyz',
  ];
  t.deepEqual([...routes].sort(), [...expected].sort());
  for (const [p, methods] of Object.entries(doc.paths))
    for (const [m, op] of Object.entries(methods)) {
      t.truthy(op.summary, `${m} ${p} has a summary`);
      t.truthy(op.responses?.['200'], `${m} ${p} documents 200`);
      if (p.startsWith('/api/v1/')) t.truthy(op.responses?.['401'], `${m} ${p} documents 401`);
    }
  const studies = doc.paths['/api/v1/studies']?.get?.parameters as Array<{ name: string; in: string }>;
  t.deepEqual(
    studies
      .filter((x) => x.in === 'query')
      .map((x) => x.name)
      .sort(),
    ['accession', 'ae', 'limit', 'offset', 'since', 'state', 'until'],
  );
});
