// The response schemas (which /api/openapi.json publishes) describe what the API really answers: each answer of
// the API over the fakes is validated against its schema by Fastify's own validator.

import test from 'ava';
import Fastify from 'fastify';
import * as S from '../../../src/admin/http/api-schemas.js';
import { startConsole } from './console-harness.js';

test('every JSON answer matches the response schema its route documents', async (t) => {
  const checker = Fastify({ ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: true } } });
  const schemas: Record<string, unknown> = {
    session: S.sessionInfo,
    dashboard: S.dashboard,
    health: S.consoleHealth,
    config: S.runningConfig,
    studies: S.studiesPage,
    study: S.studyStory,
    jobs: S.jobsPage,
    deliveries: S.deliveriesPage,
    audit: S.auditPage,
    rules: S.rulesList,
    validation: S.rulesValidation,
    dryRun: S.dryRun,
    apply: S.applyResult,
    release: S.releaseResult,
    delivery: S.deliveryListItem,
    reprocess: S.reprocessResult,
    echo: S.echoResult,
    error: S.errorShape,
  };
  for (const [name, schema] of Object.entries(schemas)) {
    checker.post(`/${name}`, { schema: { body: schema as object } }, async () => ({ ok: true }));
  }
  await checker.ready();
  t.teardown(() => checker.close());
  const check = async (name: string, response: Response) => {
    const body: unknown = await response.json();
    const verdict = await checker.inject({ method: 'POST', url: `/${name}`, payload: body as object });
    t.is(verdict.statusCode, 200, `${name}: ${verdict.body}`);
  };

  // The checker does refuse a shape that differs.
  t.is((await checker.inject({ method: 'POST', url: '/dashboard', payload: { parked: 'none' } })).statusCode, 400);
  t.is(
    (await checker.inject({ method: 'POST', url: '/study', payload: { study: {}, images: [], jobs: [] } })).statusCode,
    400,
  );

  const c = await startConsole(t);
  const admin = await c.login('alice', 'correct horse');
  await check('session', await admin.get('/api/v1/session'));
  await check('dashboard', await admin.get('/api/v1/dashboard'));
  await check('health', await admin.get('/api/v1/health'));
  await check('config', await admin.get('/api/v1/config'));
  await check('studies', await admin.get('/api/v1/studies'));
  await check('study', await admin.get('/api/v1/studies/1.2.3.2'));
  await check('jobs', await admin.get('/api/v1/jobs'));
  await check('deliveries', await admin.get('/api/v1/deliveries'));
  await check('rules', await admin.get('/api/v1/rules'));
  await check('validation', await admin.act('/api/v1/rules/validate', { rules: [{ action: {} }] }));
  await check('validation', await admin.act('/api/v1/rules/validate', { rules: [] }));
  await check('dryRun', await admin.act('/api/v1/rules/dry-run', { rules: [{ name: 'x', action: { ignore: true } }] }));
  await check('echo', await admin.act('/api/v1/destinations/pacs-main/echo'));
  await check('reprocess', await admin.act('/api/v1/studies/1.2.3.1/reprocess'));
  await check('release', await admin.act('/api/v1/destinations/ris-main/release'));
  c.backend.addStudy({ uid: '1.2.3.5', accession: null, deliveries: ['parked', 'delivered'] });
  const parked = [...c.backend.deliveriesById.values()].find((d) => d.state === 'parked');
  await check('delivery', await admin.act(`/api/v1/deliveries/${parked?.id}/discard`, { reason: 'test' }));
  await check('apply', await admin.act('/api/v1/rules/apply', { rules: [] }));
  await check('audit', await admin.get('/api/v1/audit'));
  await check('error', await admin.get('/api/v1/studies/4.4'));
  await check('error', await admin.get('/api/v1/studies?limit=0'));
});
