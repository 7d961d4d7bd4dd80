import { randomBytes } from 'node:crypto';
import fastifyCookie from '@fastify/cookie';
import fastifyCsrf from '@fastify/csrf-protection';
import fastifyFormbody from '@fastify/formbody';
import fastifyHelmet from '@fastify/helmet';
import fastifyRateLimit from '@fastify/rate-limit';
import fastifySwagger from '@fastify/swagger';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { describeError } from '../../errors.js';
import { ConsoleRefusal } from '../console-types.js';
import { registerApiRoutes } from './api-routes.js';
import { registerAssets } from './assets.js';
import { registerAuthRoutes } from './auth-routes.js';
import { apiError, isApi } from './replies.js';
import { registerPageRoutes } from './page-routes.js';
import { messagePage } from './pages/layout.js';
import { loginPage } from './pages/login.js';
import { actorOf, sessionOf } from './sessions.js';
import { LoginLimiter } from './login-limiter.js';
import { validationSentence } from './validation-message.js';
import type { ConsoleContext, ConsoleDeps } from './context.js';

/**
 * The operations console on a Fastify instance that already serves /healthz and /metrics: security headers,
 * cookies, CSRF, the login limiter, the OpenAPI document, the JSON API, the pages and their assets.
 */
export async function registerConsole(app: FastifyInstance, deps: ConsoleDeps): Promise<void> {
  const context: ConsoleContext = {
    ...deps,
    byUser: new LoginLimiter(deps.settings.loginAttemptsPerMinute, 60_000, deps.now),
    byAddress: new LoginLimiter(deps.settings.loginAttemptsPerMinute, 60_000, deps.now),
  };

  // Same-origin everything: no CDN, no inline script or style (the pages load /assets/console/*), no framing.
  await app.register(fastifyHelmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'"],
        connectSrc: ["'self'"],
        fontSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
  });
  await app.register(fastifyCookie);
  await app.register(fastifyFormbody);
  // The CSRF secret lives in a cookie of its own; tokens are bound to the session's user (HMAC with a key of this
  // process), so a token taken from one user's page is no use in another's request.
  await app.register(fastifyCsrf, {
    cookieKey: 'cxr_csrf',
    cookieOpts: { path: '/', sameSite: 'strict', httpOnly: true, secure: 'auto' },
    getToken: (request: FastifyRequest) => {
      const body = request.body as { _csrf?: unknown } | undefined;
      const header = request.headers['x-csrf-token'];
      return typeof body?._csrf === 'string' ? body._csrf : typeof header === 'string' ? header : '';
    },
    getUserInfo: (request: FastifyRequest) => sessionOf(request)?.user ?? '',
    csrfOpts: { hmacKey: randomBytes(32).toString('hex') },
  });
  // A flood guard on every login request per address; failed logins have tighter limits of their own (auth-routes.ts,
  // admin.loginAttemptsPerMinute per user name and per address).
  await app.register(fastifyRateLimit, { global: false });
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'cxr-gateway operations console API',
        version: '1',
        description:
          'Log in with POST /login (JSON {user, password}); the session cookie cxr_session authenticates every ' +
          'other call. State-changing calls need the admin role and the x-csrf-token header from GET /api/v1/session.',
      },
      components: {
        securitySchemes: { session: { type: 'apiKey', in: 'cookie', name: 'cxr_session' } },
      },
      security: [{ session: [] }],
    },
  });

  app.setErrorHandler((error: FastifyError, request, reply) => handleError(context, error, request, reply));
  app.setNotFoundHandler((request, reply) => {
    const message = `No console page or API route at ${request.method} ${request.url.split('?')[0]}.`;
    if (isApi(request)) return apiError(reply, 404, 'NOT_FOUND', message);
    return reply.code(404).type('text/html; charset=utf-8').send(messagePage('Not found', message));
  });

  app.get('/api/openapi.json', { schema: { hide: true } }, () => app.swagger());
  registerAssets(app);
  registerAuthRoutes(app, context);
  registerApiRoutes(app, context);
  registerPageRoutes(app, context);
}

function handleError(
  context: ConsoleContext,
  error: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  const api = isApi(request);
  const page = (status: number, title: string, message: string) =>
    reply.code(status).type('text/html; charset=utf-8').send(messagePage(title, message));
  if (error instanceof ConsoleRefusal) {
    return api
      ? apiError(reply, error.status, error.code, error.message)
      : page(error.status, 'Refused', error.message);
  }
  if (error.code === 'FST_CSRF_INVALID_TOKEN' || error.code === 'FST_CSRF_MISSING_SECRET') {
    const actor = actorOf(request);
    const target = `${request.method} ${request.url.split('?')[0]}`;
    context.logger.warn('console request refused: CSRF token missing or wrong', {
      event: 'ADMIN-7105',
      user: actor.user,
      address: actor.address,
      target,
    });
    context.console.recordAudit({
      category: 'admin',
      action: 'access.csrf-refused',
      user: actor.user,
      role: actor.role,
      address: actor.address,
      target,
      outcome: 'failure',
      detail: error.code === 'FST_CSRF_MISSING_SECRET' ? 'no CSRF cookie' : 'CSRF token missing or wrong',
    });
    const message = 'The request carried no valid CSRF token, so nothing was done; reload the page and try again.';
    return api ? apiError(reply, 403, 'CSRF_INVALID', message) : page(403, 'Refused', message);
  }
  if (error.validation && !api && request.url.split('?')[0] === '/login') {
    const message = 'Enter a user name and a password.';
    return reply
      .code(400)
      .type('text/html; charset=utf-8')
      .send(loginPage({ next: '/', error: message, hasUsers: context.auth.hasUsers() }).text);
  }
  if (error.validation) {
    const message = validationSentence(error);
    return api ? apiError(reply, 400, 'BAD_REQUEST', message) : page(400, 'Bad request', message);
  }
  if (error.statusCode === 429) {
    const message = 'Too many login attempts from this address; wait a minute and try again.';
    return api || request.url.startsWith('/login')
      ? apiError(reply, 429, 'LOGIN_RATE_LIMITED', message)
      : page(429, 'Too many requests', message);
  }
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) {
    return api
      ? apiError(reply, status, error.code ?? 'BAD_REQUEST', error.message)
      : page(status, 'Refused', error.message);
  }
  context.logger.error('admin request failed', {
    event: 'GATEWAY-7011',
    url: request.url.split('?')[0],
    error: describeError(error),
  });
  const message = `The console failed to answer: ${describeError(error)}. The log has the details (GATEWAY-7011).`;
  return api ? apiError(reply, 500, 'INTERNAL', message) : page(500, 'Error', message);
}
