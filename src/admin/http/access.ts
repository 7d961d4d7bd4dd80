import type { FastifyInstance, FastifyReply, FastifyRequest, preHandlerHookHandler } from 'fastify';
import type { ConsoleContext } from './context.js';
import { messagePage } from './pages/layout.js';
import { apiError } from './replies.js';
import { actorOf, loadSession } from './sessions.js';

export type Surface = 'api' | 'page';

/**
 * The preHandlers of a route: `read` needs a session (viewer or admin); `act` needs a session, a valid CSRF token
 * and the admin role, checked in that order before the handler runs, so that a refused request changes nothing.
 */
export function accessGuards(app: FastifyInstance, context: ConsoleContext) {
  const authenticate =
    (surface: Surface) =>
    async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
      if (loadSession(request, context.auth)) return undefined;
      if (surface === 'api') {
        return apiError(reply, 401, 'UNAUTHENTICATED', 'No valid session: log in with POST /login first.');
      }
      const next = request.method === 'GET' ? request.url : '/';
      return reply.redirect(`/login?next=${encodeURIComponent(next)}`, 303);
    };

  const requireAdmin =
    (surface: Surface) =>
    async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
      const actor = actorOf(request);
      if (actor.role === 'admin') return undefined;
      const target = `${request.method} ${request.url.split('?')[0]}`;
      context.logger.warn('console action refused: viewer role', {
        event: 'ADMIN-7106',
        user: actor.user,
        address: actor.address,
        target,
      });
      context.console.recordAudit({
        category: 'admin',
        action: 'access.role-refused',
        user: actor.user,
        role: actor.role,
        address: actor.address,
        target,
        outcome: 'failure',
        detail: 'the action needs the admin role',
      });
      const message = `${actor.user} has the viewer role; this action needs an admin. Nothing was changed.`;
      if (surface === 'api') return apiError(reply, 403, 'ROLE_FORBIDDEN', message);
      return reply.code(403).type('text/html; charset=utf-8').send(messagePage('Not allowed', message));
    };

  return {
    read: (surface: Surface): preHandlerHookHandler[] => [authenticate(surface)],
    /** A POST that changes nothing of the gateway (logout, rule validation, dry run): any role, with the CSRF token. */
    post: (surface: Surface): preHandlerHookHandler[] => [authenticate(surface), app.csrfProtection],
    act: (surface: Surface): preHandlerHookHandler[] => [
      authenticate(surface),
      app.csrfProtection,
      requireAdmin(surface),
    ],
  };
}

export type AccessGuards = ReturnType<typeof accessGuards>;
