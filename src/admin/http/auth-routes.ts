import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { accessGuards } from './access.js';
import type { ConsoleContext } from './context.js';
import { loginPage } from './pages/login.js';
import { apiError, safeLocalPath } from './replies.js';
import { clearSessionCookie, loadSession, SESSION_COOKIE, sessionOf, setSessionCookie } from './sessions.js';
import { errorShape, sessionInfo } from './api-schemas.js';

interface LoginBody {
  user: string;
  password: string;
  next?: string;
}

const loginBody = {
  type: 'object',
  properties: {
    user: { type: 'string', minLength: 1, maxLength: 200 },
    password: { type: 'string', minLength: 1, maxLength: 1000 },
    next: { type: 'string', maxLength: 2000 },
  },
  required: ['user', 'password'],
};

function wantsJson(request: FastifyRequest): boolean {
  return String(request.headers['content-type'] ?? '').startsWith('application/json');
}

/**
 * Login and logout. /login needs no CSRF token (there is no session to ride yet, and the session cookie is
 * SameSite=Strict); failed logins are limited per user name and per address, and every attempt is audited
 * without its password.
 */
export function registerAuthRoutes(app: FastifyInstance, context: ConsoleContext): void {
  const guards = accessGuards(app, context);
  const { auth, console: backend, logger } = context;

  app.get(
    '/login',
    { schema: { hide: true } },
    async (request: FastifyRequest<{ Querystring: Record<string, string> }>, reply) => {
      if (loadSession(request, auth)) return reply.redirect('/', 303);
      return sendLogin(reply, 200, { next: request.query.next, hasUsers: auth.hasUsers() });
    },
  );

  app.post<{ Body: LoginBody }>(
    '/login',
    {
      config: { rateLimit: { max: context.settings.loginAttemptsPerMinute * 10, timeWindow: 60_000 } },
      schema: {
        summary: 'Log in: sets the session cookie cxr_session and returns the CSRF token for later calls',
        tags: ['session'],
        security: [],
        body: loginBody,
        response: { 200: sessionInfo, 401: errorShape, 429: errorShape },
      },
    },
    async (request, reply) => {
      const json = wantsJson(request);
      const { user, password } = request.body;
      const address = request.ip;
      const key = user.trim().toLowerCase();
      const next = safeLocalPath(request.body.next);
      const audit = (outcome: 'success' | 'failure', action: string, detail: string | null, role: string | null) =>
        backend.recordAudit({ category: 'admin', action, user, role, address, target: null, outcome, detail });

      const wait = Math.max(
        context.byUser.retryAfterSeconds(key) ?? 0,
        context.byAddress.retryAfterSeconds(address) ?? 0,
      );
      if (wait > 0) {
        logger.warn('console login refused: too many failed attempts', {
          event: 'ADMIN-7103',
          user,
          address,
          retryAfterSeconds: wait,
        });
        audit('failure', 'user.login-failed', 'refused: too many failed logins', null);
        reply.header('retry-after', String(wait));
        const message = `Too many failed logins for this user name or address; try again in ${wait} s.`;
        return json
          ? apiError(reply, 429, 'LOGIN_RATE_LIMITED', message)
          : sendLogin(reply, 429, { next, error: message, hasUsers: true });
      }

      const who = await auth.verify(user, password);
      if (!who) {
        context.byUser.fail(key);
        context.byAddress.fail(address);
        logger.warn('console login failed', { event: 'ADMIN-7102', user, address });
        audit('failure', 'user.login-failed', 'wrong user name or password', null);
        const message = 'Wrong user name or password.';
        return json
          ? apiError(reply, 401, 'LOGIN_FAILED', message)
          : sendLogin(reply, 401, { next, error: message, hasUsers: auth.hasUsers() });
      }
      context.byUser.succeed(key);
      // A new token at every login; a session the browser still had ends (it may have been someone else's).
      const previous = request.cookies[SESSION_COOKIE];
      if (previous) auth.endSession(previous);
      const token = auth.createSession(who.user, who.role, address);
      setSessionCookie(request, reply, token, context.settings.sessionMaxHours * 3600);
      logger.info('console user logged in', { event: 'ADMIN-7101', user: who.user, role: who.role, address });
      backend.recordAudit({
        category: 'admin',
        action: 'user.login',
        user: who.user,
        role: who.role,
        address,
        target: null,
        outcome: 'success',
        detail: null,
      });
      if (!json) return reply.redirect(next, 303);
      const session = auth.session(token);
      return reply.send({
        user: who.user,
        role: who.role,
        createdAt: session?.createdAt ?? context.now(),
        expiresAt: session?.expiresAt ?? context.now(),
        csrfToken: reply.generateCsrf({ userInfo: who.user }),
      });
    },
  );

  app.post(
    '/logout',
    {
      preHandler: guards.post('page'),
      schema: {
        summary: 'Log out: ends the session (JSON: 200 {ok}; a form: 303 to /login)',
        tags: ['session'],
        response: {
          200: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] },
          303: { description: 'to /login', type: 'null' },
          403: errorShape,
        },
      },
    },
    async (request, reply) => {
      const session = sessionOf(request);
      if (session) {
        auth.endSession(session.token);
        logger.info('console user logged out', { event: 'ADMIN-7104', user: session.user, address: request.ip });
        backend.recordAudit({
          category: 'admin',
          action: 'user.logout',
          user: session.user,
          role: session.role,
          address: request.ip,
          target: null,
          outcome: 'success',
          detail: null,
        });
      }
      clearSessionCookie(request, reply);
      return wantsJson(request) ? reply.send({ ok: true }) : reply.redirect('/login', 303);
    },
  );
}

function sendLogin(
  reply: FastifyReply,
  status: number,
  options: { next?: string; error?: string; hasUsers: boolean },
): FastifyReply {
  return reply
    .code(status)
    .type('text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .send(loginPage({ next: safeLocalPath(options.next), error: options.error, hasUsers: options.hasUsers }).text);
}
