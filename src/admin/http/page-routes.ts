import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { ConsoleRefusal, type RulesValidation } from '../console-types.js';
import { accessGuards } from './access.js';
import { auditFilter, deliveryFilter, studyFilter } from './api-routes.js';
import * as S from './api-schemas.js';
import type { ConsoleContext } from './context.js';
import type { SafeHtml } from './html.js';
import { auditBody } from './pages/audit.js';
import { configBody } from './pages/config.js';
import { dashboardBody } from './pages/dashboard.js';
import { destinationsBody } from './pages/destinations.js';
import { type Frame, layout } from './pages/layout.js';
import { parkedBody } from './pages/parked.js';
import { rulesBody, type RulesView } from './pages/rules.js';
import { studiesBody, type ListQuery } from './pages/studies.js';
import { studyBody } from './pages/study.js';
import { safeLocalPath, withFlash } from './replies.js';
import { actorOf, sessionOf } from './sessions.js';

const flashQuery = { flash: { type: 'string', maxLength: 500 }, flashKind: { type: 'string', enum: ['ok', 'error'] } };

/** A page's query: its API filters plus the flash message a form's redirect leaves. */
function pageQuery(schema: Record<string, unknown>): Record<string, unknown> {
  const properties = (schema.properties ?? {}) as Record<string, unknown>;
  return { ...schema, properties: { ...properties, ...flashQuery } };
}

const plainQuery = { type: 'object', properties: flashQuery, additionalProperties: false };

function frameOf(request: FastifyRequest, reply: FastifyReply): Frame {
  const session = sessionOf(request);
  if (!session) throw new Error('page guard let a request through without a session');
  const url = new URL(request.url, 'http://console.invalid');
  const query = url.searchParams;
  const flash = query.get('flash');
  query.delete('flash');
  query.delete('flashKind');
  return {
    user: session.user,
    role: session.role,
    csrf: reply.generateCsrf({ userInfo: session.user }),
    here: `${url.pathname}${query.size > 0 ? `?${query.toString()}` : ''}`,
    flash: flash ? { kind: query.get('flashKind') === 'error' ? 'error' : 'ok', text: flash } : undefined,
  };
}

function sendPage(reply: FastifyReply, status: number, frame: Frame, title: string, body: SafeHtml): FastifyReply {
  return reply
    .code(status)
    .type('text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .send(layout(frame, title, body).text);
}

function listQuery(request: FastifyRequest): ListQuery {
  const out: ListQuery = {};
  for (const [k, v] of Object.entries(request.query as Record<string, unknown>)) {
    if (k !== 'flash' && k !== 'flashKind' && v !== undefined) out[k] = String(v);
  }
  return out;
}

interface FormBody {
  back?: string;
  reason?: string;
  rules?: string;
  last?: string;
}

/** The rule set in the editor: a YAML list of rules, or a mapping with `rules:` (as in the config file). */
function candidateOf(text: string): unknown {
  const value: unknown = parseYaml(text);
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && 'rules' in value) {
    return (value as { rules: unknown }).rules;
  }
  return value;
}

/**
 * The server-rendered pages and the form actions behind their buttons. Every page works without script: a form
 * POSTs with the CSRF token and comes back (303) with a flash message; console.js only adds confirmations.
 */
export function registerPageRoutes(app: FastifyInstance, context: ConsoleContext): void {
  const guards = accessGuards(app, context);
  const read = guards.read('page');
  const act = guards.act('page');
  const post = guards.post('page');
  const backend = context.console;

  app.get('/', { preHandler: read, schema: { hide: true, querystring: plainQuery } }, async (request, reply) => {
    const frame = frameOf(request, reply);
    return sendPage(reply, 200, frame, 'Dashboard', dashboardBody(backend.dashboard(), backend.health()));
  });

  app.get(
    '/studies',
    { preHandler: read, schema: { hide: true, querystring: pageQuery(S.studiesQuery) } },
    async (request, reply) => {
      const query = listQuery(request);
      const page = backend.studies(studyFilter(query));
      return sendPage(reply, 200, frameOf(request, reply), 'Studies', studiesBody(query, page));
    },
  );

  app.get<{ Params: { uid: string } }>(
    '/studies/:uid',
    { preHandler: read, schema: { hide: true, params: S.studyParams, querystring: plainQuery } },
    async (request, reply) => {
      const frame = frameOf(request, reply);
      const story = backend.study(request.params.uid);
      return sendPage(reply, 200, frame, `Study ${story.study.accessionNumber ?? ''}`.trim(), studyBody(frame, story));
    },
  );

  app.get(
    '/parked',
    { preHandler: read, schema: { hide: true, querystring: pageQuery(S.deliveriesQuery) } },
    async (request, reply) => {
      const query = listQuery(request);
      const page = backend.deliveries(deliveryFilter({ ...query, state: 'parked' }));
      const frame = frameOf(request, reply);
      return sendPage(
        reply,
        200,
        frame,
        'Parked deliveries',
        parkedBody(frame, query, page, backend.health().destinations),
      );
    },
  );

  app.get(
    '/destinations',
    { preHandler: read, schema: { hide: true, querystring: plainQuery } },
    async (request, reply) => {
      const frame = frameOf(request, reply);
      return sendPage(reply, 200, frame, 'Destinations', destinationsBody(frame, backend.health().destinations));
    },
  );

  app.get(
    '/audit',
    { preHandler: read, schema: { hide: true, querystring: pageQuery(S.auditQuery) } },
    async (request, reply) => {
      const query = listQuery(request);
      return sendPage(
        reply,
        200,
        frameOf(request, reply),
        'Audit trail',
        auditBody(query, backend.audit(auditFilter(query))),
      );
    },
  );

  app.get('/config', { preHandler: read, schema: { hide: true, querystring: plainQuery } }, async (request, reply) => {
    return sendPage(reply, 200, frameOf(request, reply), 'Configuration', configBody(backend.runningConfig()));
  });

  app.get('/rules', { preHandler: read, schema: { hide: true, querystring: plainQuery } }, async (request, reply) => {
    const view: RulesView = { text: toYaml(backend.rules()), last: 50 };
    return sendPage(reply, 200, frameOf(request, reply), 'Routing rules', rulesBody(frameOf(request, reply), view));
  });

  // The rules editor's three buttons. Validate and dry run change nothing (any role); apply needs an admin. The
  // page comes back with the admin's text kept, so a refused rule set is corrected rather than typed again.
  const rulesPost = (op: 'validate' | 'dry-run' | 'apply') => async (request: FastifyRequest, reply: FastifyReply) => {
    const body = (request.body ?? {}) as FormBody;
    const text = typeof body.rules === 'string' ? body.rules : '';
    const last = Math.min(1000, Math.max(1, Number.parseInt(body.last ?? '50', 10) || 50));
    const view: RulesView = { text, last };
    const frame = frameOf(request, reply);
    let candidate: unknown;
    try {
      candidate = candidateOf(text);
    } catch (error) {
      view.error = `The text is not YAML: ${error instanceof Error ? error.message : String(error)}`;
      return sendPage(reply, 422, frame, 'Routing rules', rulesBody(frame, view));
    }
    try {
      if (op === 'validate') view.validation = backend.validateRules(candidate);
      else if (op === 'dry-run') view.dryRun = backend.dryRunRules(candidate, last);
      else {
        const applied = await backend.applyRules(candidate, actorOf(request));
        const message = `Applied ${applied.rules} rule(s); the previous configuration is kept as ${applied.backup}.`;
        return reply.redirect(withFlash('/rules', 'ok', message), 303);
      }
    } catch (error) {
      if (!(error instanceof ConsoleRefusal)) throw error;
      view.error = error.message;
      const validation: RulesValidation = backend.validateRules(candidate);
      if (!validation.ok) view.validation = validation;
      return sendPage(reply, error.status, frame, 'Routing rules', rulesBody(frame, view));
    }
    return sendPage(reply, 200, frame, 'Routing rules', rulesBody(frame, view));
  };
  app.post('/rules/validate', { preHandler: post, schema: { hide: true } }, rulesPost('validate'));
  app.post('/rules/dry-run', { preHandler: post, schema: { hide: true } }, rulesPost('dry-run'));
  app.post('/rules/apply', { preHandler: act, schema: { hide: true } }, rulesPost('apply'));

  // The buttons' actions: do it, then back to the page the button was on with what happened (or why not).
  const action =
    (run: (request: FastifyRequest, body: FormBody) => Promise<string> | string) =>
    async (request: FastifyRequest, reply: FastifyReply) => {
      const body = (request.body ?? {}) as FormBody;
      const back = safeLocalPath(body.back);
      try {
        return reply.redirect(withFlash(back, 'ok', await run(request, body)), 303);
      } catch (error) {
        if (!(error instanceof ConsoleRefusal)) throw error;
        return reply.redirect(withFlash(back, 'error', error.message), 303);
      }
    };

  app.post<{ Params: { id: number } }>(
    '/actions/deliveries/:id/release',
    { preHandler: act, schema: { hide: true, params: S.deliveryParams } },
    action((request) => {
      const { id } = request.params as { id: number };
      const released = backend.releaseDelivery(id, actorOf(request));
      return `Released delivery ${id}${released.length > 1 ? ` and ${released.length - 1} held back with it` : ''}: it goes out now.`;
    }),
  );
  app.post<{ Params: { name: string } }>(
    '/actions/destinations/:name/release',
    { preHandler: act, schema: { hide: true, params: S.destinationParams } },
    action((request) => {
      const { name } = request.params as { name: string };
      const released = backend.releaseDestination(name, actorOf(request));
      return `Released ${released.length} parked deliver${released.length === 1 ? 'y' : 'ies'} to ${name}.`;
    }),
  );
  app.post<{ Params: { id: number } }>(
    '/actions/deliveries/:id/discard',
    { preHandler: act, schema: { hide: true, params: S.deliveryParams } },
    action((request, body) => {
      const { id } = request.params as { id: number };
      const reason = (body.reason ?? '').trim();
      if (reason === '') throw new ConsoleRefusal(400, 'BAD_REQUEST', 'Give a reason to discard a delivery.');
      backend.discardDelivery(id, reason, actorOf(request));
      return `Discarded delivery ${id}.`;
    }),
  );
  app.post<{ Params: { uid: string } }>(
    '/actions/studies/:uid/reprocess',
    { preHandler: act, schema: { hide: true, params: S.studyParams } },
    action((request) => {
      const { uid } = request.params as { uid: string };
      const job = backend.reprocessStudy(uid, actorOf(request));
      return `Reprocessing as revision ${job.revision} (job #${job.jobId}).`;
    }),
  );
  app.post<{ Params: { name: string } }>(
    '/actions/destinations/:name/echo',
    { preHandler: act, schema: { hide: true, params: S.destinationParams } },
    action(async (request) => {
      const { name } = request.params as { name: string };
      const echo = await backend.echoDestination(name, actorOf(request));
      if (!echo.ok)
        throw new ConsoleRefusal(503, 'ECHO_FAILED', `Echo to ${name} failed after ${echo.ms} ms: ${echo.detail}`);
      return `Echo to ${name} answered in ${echo.ms} ms: ${echo.detail}`;
    }),
  );
}
