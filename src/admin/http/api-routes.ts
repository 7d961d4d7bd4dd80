import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuditFilter, DeliveryFilter, JobFilter, StudyFilter, TimeRange } from '../console-types.js';
import { accessGuards } from './access.js';
import type { ConsoleContext } from './context.js';
import * as S from './api-schemas.js';
import { actorOf, sessionOf } from './sessions.js';
import { ConsoleRefusal } from '../console-types.js';

type Query = Record<string, string | number | undefined>;

/** An ISO 8601 date/date-time (UTC unless it names a zone) or epoch ms, as epoch ms; a 400 naming the field if not. */
export function parseInstant(field: string, value: string | number | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const text = String(value);
  if (/^\d{10,15}$/.test(text)) return Number(text);
  const iso = /^\d{4}-\d{2}-\d{2}$/.test(text)
    ? `${text}T00:00:00Z`
    : /(Z|[+-]\d{2}:?\d{2})$/.test(text)
      ? text
      : `${text}Z`;
  const ms = Date.parse(iso.replace(' ', 'T'));
  if (Number.isNaN(ms)) throw new ConsoleRefusal(400, 'BAD_REQUEST', `${field} '${text}' is not a date or time.`);
  return ms;
}

function str(value: string | number | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : String(value);
}

/** The page and time window every list shares. */
export function pageAndRange(query: Query): { offset: number; limit: number } & TimeRange {
  const since = parseInstant('since', query.since);
  const until = parseInstant('until', query.until);
  if (since !== undefined && until !== undefined && until <= since) {
    throw new ConsoleRefusal(400, 'BAD_REQUEST', 'until must be later than since.');
  }
  return { offset: Number(query.offset ?? 0), limit: Number(query.limit ?? 50), since, until };
}

export function studyFilter(query: Query): StudyFilter {
  return {
    ...pageAndRange(query),
    state: str(query.state) as StudyFilter['state'],
    ae: str(query.ae),
    accession: str(query.accession),
  };
}

export function jobFilter(query: Query): JobFilter {
  return {
    ...pageAndRange(query),
    state: str(query.state) as JobFilter['state'],
    destination: str(query.destination),
    ae: str(query.ae),
    accession: str(query.accession),
    studyInstanceUid: str(query.study),
  };
}

export function deliveryFilter(query: Query): DeliveryFilter {
  return {
    ...pageAndRange(query),
    state: str(query.state) as DeliveryFilter['state'],
    destination: str(query.destination),
    kind: str(query.kind) as DeliveryFilter['kind'],
    studyInstanceUid: str(query.study),
  };
}

export function auditFilter(query: Query): AuditFilter {
  return { ...pageAndRange(query), category: str(query.category), action: str(query.action), user: str(query.user) };
}

const e4 = { 400: S.errorShape, 401: S.errorShape, 403: S.errorShape, 404: S.errorShape };
const e4act = { ...e4, 409: S.errorShape, 422: S.errorShape };

/**
 * The JSON API under /api/v1: reads need a session, actions the admin role and the CSRF token (x-csrf-token).
 * Refusals of the backend (ConsoleRefusal) become `{ error, message }` with their status (console-app.ts).
 */
export function registerApiRoutes(app: FastifyInstance, context: ConsoleContext): void {
  const guards = accessGuards(app, context);
  const read = guards.read('api');
  const act = guards.act('api');
  const post = guards.post('api');
  const backend = context.console;
  const v1 = '/api/v1';

  app.get(
    `${v1}/session`,
    {
      preHandler: read,
      schema: {
        summary: 'Who is logged in, the role, and the CSRF token for state-changing calls',
        tags: ['session'],
        response: { 200: S.sessionInfo, 401: S.errorShape },
      },
    },
    async (request, reply) => {
      const session = sessionOf(request);
      if (!session) throw new Error('session guard let a request through without a session');
      return {
        user: session.user,
        role: session.role,
        createdAt: session.createdAt,
        expiresAt: session.expiresAt,
        csrfToken: reply.generateCsrf({ userInfo: session.user }),
      };
    },
  );

  app.get(
    `${v1}/dashboard`,
    {
      preHandler: read,
      schema: {
        summary: 'Throughput, queues, parked count, models, disk, health',
        tags: ['status'],
        response: { 200: S.dashboard, ...e4 },
      },
    },
    async () => backend.dashboard(),
  );

  app.get(
    `${v1}/health`,
    {
      preHandler: read,
      schema: {
        summary: 'Health of every stage and destination (last success, last failure)',
        tags: ['status'],
        response: { 200: S.consoleHealth, ...e4 },
      },
    },
    async () => backend.health(),
  );

  app.get(
    `${v1}/config`,
    {
      preHandler: read,
      schema: {
        summary: 'The running configuration and the keys that need a restart',
        tags: ['status'],
        response: { 200: S.runningConfig, ...e4 },
      },
    },
    async () => backend.runningConfig(),
  );

  app.get<{ Querystring: Query }>(
    `${v1}/studies`,
    {
      preHandler: read,
      schema: {
        summary: 'Studies, newest first, filtered by state, calling AE, accession and time received',
        tags: ['studies'],
        querystring: S.studiesQuery,
        response: { 200: S.studiesPage, ...e4 },
      },
    },
    async (request) => backend.studies(studyFilter(request.query)),
  );

  app.get<{ Params: { uid: string } }>(
    `${v1}/studies/:uid`,
    {
      preHandler: read,
      schema: {
        summary: "A study's whole story: images, routing, classification, outputs, HL7, deliveries and attempts",
        tags: ['studies'],
        params: S.studyParams,
        response: { 200: S.studyStory, ...e4 },
      },
    },
    async (request) => backend.study(request.params.uid),
  );

  app.get<{ Params: { jobId: number; sop: string } }>(
    `${v1}/jobs/:jobId/images/:sop/overlay.png`,
    {
      preHandler: read,
      schema: {
        summary: 'The heatmap overlay (the SC image) of one written image, as PNG',
        tags: ['studies'],
        params: S.overlayParams,
        produces: ['image/png'],
        response: { 200: { type: 'string', format: 'binary', description: 'PNG' }, ...e4 },
      },
    },
    async (request, reply) => {
      const png = await backend.overlayPng(request.params.jobId, request.params.sop);
      return reply.type('image/png').header('cache-control', 'private, max-age=300').send(png);
    },
  );

  app.get<{ Querystring: Query }>(
    `${v1}/jobs`,
    {
      preHandler: read,
      schema: {
        summary: 'Jobs, filtered by state, destination, calling AE, accession, study and time',
        tags: ['jobs'],
        querystring: S.jobsQuery,
        response: { 200: S.jobsPage, ...e4 },
      },
    },
    async (request) => backend.jobs(jobFilter(request.query)),
  );

  app.get<{ Querystring: Query }>(
    `${v1}/deliveries`,
    {
      preHandler: read,
      schema: {
        summary: 'Deliveries, filtered by state (e.g. parked), destination, kind, study and time',
        tags: ['deliveries'],
        querystring: S.deliveriesQuery,
        response: { 200: S.deliveriesPage, ...e4 },
      },
    },
    async (request) => backend.deliveries(deliveryFilter(request.query)),
  );

  app.post<{ Params: { id: number } }>(
    `${v1}/deliveries/:id/release`,
    {
      preHandler: act,
      schema: {
        summary: 'Release a parked delivery: it is tried again now (with the RIS deliveries held back with it)',
        tags: ['deliveries'],
        params: S.deliveryParams,
        response: { 200: S.releaseResult, ...e4act },
      },
    },
    async (request) => ({ released: backend.releaseDelivery(request.params.id, actorOf(request)) }),
  );

  app.post<{ Params: { name: string } }>(
    `${v1}/destinations/:name/release`,
    {
      preHandler: act,
      schema: {
        summary: 'Release every parked delivery of one destination',
        tags: ['deliveries'],
        params: S.destinationParams,
        response: { 200: S.releaseResult, ...e4act },
      },
    },
    async (request) => ({ released: backend.releaseDestination(request.params.name, actorOf(request)) }),
  );

  app.post<{ Params: { id: number }; Body: { reason: string } }>(
    `${v1}/deliveries/:id/discard`,
    {
      preHandler: act,
      schema: {
        summary: 'Discard a parked delivery with a reason (it will not be sent)',
        tags: ['deliveries'],
        params: S.deliveryParams,
        body: S.discardBody,
        response: { 200: S.deliveryListItem, ...e4act },
      },
    },
    async (request) => backend.discardDelivery(request.params.id, request.body.reason, actorOf(request)),
  );

  app.post<{ Params: { name: string }; Body: { draining: boolean } }>(
    `${v1}/cluster/nodes/:name/drain`,
    {
      preHandler: act,
      schema: {
        summary: 'Drain a cluster node before maintenance (draining: false lets it claim work again)',
        tags: ['cluster'],
        params: S.nodeParams,
        body: S.drainBody,
        response: { 200: S.drainResult, ...e4act },
      },
    },
    async (request) => backend.drainNode(request.params.name, request.body.draining, actorOf(request)),
  );

  app.post<{ Params: { uid: string } }>(
    `${v1}/studies/:uid/reprocess`,
    {
      preHandler: act,
      schema: {
        summary: 'Process a study again as a new revision with the running rules and models',
        tags: ['studies'],
        params: S.studyParams,
        response: { 200: S.reprocessResult, ...e4act },
      },
    },
    async (request) => backend.reprocessStudy(request.params.uid, actorOf(request)),
  );

  app.post<{ Params: { name: string } }>(
    `${v1}/destinations/:name/echo`,
    {
      preHandler: act,
      schema: {
        summary: 'Check a destination: C-ECHO (DICOM), MLLP connect (RIS) or a write check (folder)',
        tags: ['destinations'],
        params: S.destinationParams,
        response: { 200: S.echoResult, ...e4act },
      },
    },
    async (request) => backend.echoDestination(request.params.name, actorOf(request)),
  );

  app.get(
    `${v1}/rules`,
    {
      preHandler: read,
      schema: { summary: 'The running routing rules', tags: ['rules'], response: { 200: S.rulesList, ...e4 } },
    },
    async () => ({ rules: backend.rules() }),
  );

  app.post<{ Body: { rules: unknown } }>(
    `${v1}/rules/validate`,
    {
      preHandler: post,
      schema: {
        summary: 'Validate a candidate rule set (nothing is changed): ok, or the issues with their key and reason',
        tags: ['rules'],
        body: S.rulesBody,
        response: { 200: S.rulesValidation, ...e4act },
      },
    },
    async (request) => backend.validateRules(request.body.rules),
  );

  app.post<{ Body: { rules: unknown; last?: number } }>(
    `${v1}/rules/dry-run`,
    {
      preHandler: post,
      schema: {
        summary: 'What a candidate rule set would decide for the last N stored studies, beside what happened',
        tags: ['rules'],
        body: S.dryRunBody,
        response: { 200: S.dryRun, ...e4act },
      },
    },
    async (request) => backend.dryRunRules(request.body.rules, request.body.last ?? 50),
  );

  app.post<{ Body: { rules: unknown } }>(
    `${v1}/rules/apply`,
    {
      preHandler: act,
      schema: {
        summary:
          'Write a rule set to the config file (the previous one kept) and reload; refused with the issues if invalid',
        tags: ['rules'],
        body: S.rulesBody,
        response: { 200: S.applyResult, ...e4act, 503: S.errorShape },
      },
    },
    async (request) => backend.applyRules(request.body.rules, actorOf(request)),
  );

  app.get<{ Querystring: Query }>(
    `${v1}/audit`,
    {
      preHandler: read,
      schema: {
        summary: 'The audit trail of admin actions and logins, newest first',
        tags: ['audit'],
        querystring: S.auditQuery,
        response: { 200: S.auditPage, ...e4 },
      },
    },
    async (request: FastifyRequest<{ Querystring: Query }>) => backend.audit(auditFilter(request.query)),
  );
}
