import type { FastifyReply, FastifyRequest } from 'fastify';

/** API answers are JSON (errors as `{ error, message }`); everything else on the console is a page. */
export function isApi(request: FastifyRequest): boolean {
  return request.url.startsWith('/api/');
}

export function apiError(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return reply.code(status).header('cache-control', 'no-store').send({ error: code, message });
}

/**
 * Where a form goes back to: a path on this console only (a `back` field pointing elsewhere would make the
 * console an open redirect).
 */
export function safeLocalPath(value: unknown, fallback = '/'): string {
  return typeof value === 'string' && /^\/(?![/\\])[^\s\\]*$/.test(value) ? value : fallback;
}

/** `path` with a flash message in its query string, shown once by the page it leads to. */
export function withFlash(path: string, kind: 'ok' | 'error', text: string): string {
  const url = new URL(path, 'http://console.invalid');
  url.searchParams.set('flash', text.slice(0, 500));
  url.searchParams.set('flashKind', kind);
  return `${url.pathname}${url.search}`;
}
