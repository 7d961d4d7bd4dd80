import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Actor, AuthBackend, Role } from '../console-types.js';

/** The console's session cookie: an opaque token that AuthBackend maps to a user (stored hashed there). */
export const SESSION_COOKIE = 'cxr_session';

export interface SessionUser {
  user: string;
  role: Role;
  token: string;
  createdAt: number;
  expiresAt: number;
}

// The session found for a request, kept beside it rather than as a decoration so that nothing else can set it.
const sessions = new WeakMap<FastifyRequest, SessionUser>();

/** Reads the cookie and asks the backend (which slides the expiry); remembers the answer for the request. */
export function loadSession(request: FastifyRequest, auth: AuthBackend): SessionUser | undefined {
  const known = sessions.get(request);
  if (known) return known;
  const token = request.cookies[SESSION_COOKIE];
  if (!token) return undefined;
  const info = auth.session(token);
  if (!info) return undefined;
  const user = { user: info.user, role: info.role, token, createdAt: info.createdAt, expiresAt: info.expiresAt };
  sessions.set(request, user);
  return user;
}

export function sessionOf(request: FastifyRequest): SessionUser | undefined {
  return sessions.get(request);
}

/** Who acts, for the audit trail: the session's user and the client's address (X-Forwarded-For behind a trusted proxy). */
export function actorOf(request: FastifyRequest): Actor {
  const session = sessions.get(request);
  return { user: session?.user ?? 'anonymous', role: session?.role ?? 'viewer', address: request.ip };
}

/**
 * HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it: the login form's CSRF defence),
 * Secure when the browser came over https (directly or, with admin.trustProxy, through the reverse proxy).
 */
export function setSessionCookie(
  request: FastifyRequest,
  reply: FastifyReply,
  token: string,
  maxAgeSeconds: number,
): void {
  reply.setCookie(SESSION_COOKIE, token, {
    httpOnly: true,
    sameSite: 'strict',
    path: '/',
    secure: request.protocol === 'https',
    maxAge: maxAgeSeconds,
  });
}

export function clearSessionCookie(request: FastifyRequest, reply: FastifyReply): void {
  reply.clearCookie(SESSION_COOKIE, {
    httpOnly: true,
    sameSite: 'strict',
    path: '/',
    secure: request.protocol === 'https',
  });
}
